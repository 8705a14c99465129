"""``khabar deploy``: Dataflow deployment helpers, all offline.

* ``metadata``: the Flex Template ``metadata.json``, generated from
  :class:`khabar.pipeline.job.options.KhabarOptions` (names, help texts, validation
  regexes per option kind), so the template cannot drift from the options.
  ``python -m khabar.pipeline.commands.deploy metadata > deploy/metadata.json``
  regenerates the file kept in the repository.
* ``check``: validates ``khabar run`` options for the DataflowRunner without talking to
  any service (project, region, ``--temp_location``, well-formed ``gs://`` paths, the
  worker image, ...); every problem is one line.
* ``launch``: the Flex Template entry (``deploy/main.py``). Builds exactly the graph that
  ``khabar run`` builds and submits it to Dataflow without waiting for it (a Flex Template
  launcher must return once the job exists). With ``--template_location`` (set by a Flex
  Template launcher, or by hand) Beam writes the job description there instead of
  submitting it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from collections.abc import Callable, Sequence
from typing import Any

from apache_beam.options.pipeline_options import (
    DebugOptions,
    GoogleCloudOptions,
    SetupOptions,
    StandardOptions,
    WorkerOptions,
)

from khabar.pipeline.errors import CliError
from khabar.pipeline.job.options import (
    KhabarOptions,
    all_options_parser,
    fraction,
    positive_int,
)
from khabar.pipeline.job.run import make_pipeline

# --------------------------------------------------------------------------- patterns

# Cloud Storage bucket names: 3-63 characters, lowercase letters, digits, '-', '_', '.',
# starting and ending with a letter or digit (names with dots may be longer; rare).
BUCKET = r"[a-z0-9][-_.a-z0-9]{1,61}[a-z0-9]"
#: A gs:// file, folder or glob; the bucket alone is allowed (``gs://bucket/``).
GCS_PATH = rf"^gs://{BUCKET}(/[^\r\n]*)?$"
#: A gs:// location with an object part (what Beam requires for temp and staging).
GCS_OBJECT_PATH = rf"^gs://{BUCKET}/[^\r\n]+$"
# Project ids: 6-30 characters, lowercase letters, digits and hyphens, starting with a
# letter; domain-scoped ids (example.com:project) add ':' and '.'.
PROJECT = r"[a-z][-a-z0-9:.]{4,61}[a-z0-9]"
#: projects/P/subscriptions/S; S starts with a letter, 3-255 characters.
SUBSCRIPTION = rf"^projects/{PROJECT}/subscriptions/[A-Za-z][-A-Za-z0-9._~+%]{{2,254}}$"
REGION = r"^[a-z]+-[a-z]+[0-9]+$"
JOB_NAME = r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$"

#: The environment variable the launcher image sets to the worker image it was built
#: with (deploy/Dockerfile.launcher), used when ``--sdk_container_image`` is not given.
WORKER_IMAGE_ENV = "KHABAR_WORKER_IMAGE"

DATAFLOW_NAMES = {"dataflowrunner", "dataflow", "testdataflowrunner"}

#: Bundles one SDK worker process runs at a time on Dataflow (``--number_of_worker_harness_
#: threads``) unless the job gives its own number. Dataflow starts one Python SDK process
#: per vCPU (Beam asks for ``use_multiple_sdk_containers``; khabar keeps that), and each
#: process runs one Python interpreter: its CPU-bound stages (entities, normalization,
#: language) hold the GIL, so a second thread overlaps a bundle's Cloud Storage reads and
#: writes with another's compute, and more only contend for the GIL. Every thread also
#: keeps its own entity tagger with a per-word projection table of up to 64 MB
#: (``transforms/entities_nn.py``) besides its bundle's articles; the models themselves are
#: shared by the process. 0 leaves the number to Dataflow.
HARNESS_THREADS = 2

# --------------------------------------------------------------------------- metadata

TEMPLATE_NAME = "khabar"
TEMPLATE_DESCRIPTION = (
    "khabar: raw, mostly Persian news (text, JSON Lines, HTML, RSS/Atom) to clean, "
    "language-tagged, deduplicated Avro. Batch reads --input from Cloud Storage; with "
    "streaming=true it reads a Pub/Sub subscription (fed by `khabar poll`) and writes "
    "event-time windowed files."
)

#: str options whose values have a meaning the generator cannot see from argparse.
STRING_KINDS = {
    "entities_model": "model_dir",
    "input": "gcs_read",
    "output": "gcs_write",
    "subscription": "pubsub_subscription",
}

#: KhabarOptions that are not template parameters, and why (the test checks that every
#: option is either a parameter or listed here).
NOT_PARAMETERS = {
    "max_runtime": "local streaming only: a Dataflow streaming job runs until drained",
    "drain_seconds": "local streaming only: Dataflow drains with `gcloud dataflow jobs drain`",
    "quiet": "the live progress line is only drawn on a local terminal",
    "progress_seconds": "progress lines are written by a local khabar run",
    "log_format": "the format of a local khabar run's progress and log lines",
    "max_dead_letter_rate": "checked by a local khabar run when its job has finished",
    "limit": "for trying a local run on the first N records",
}
#: Of those, the ones refused with the DataflowRunner (they would silently do nothing).
REFUSED_ON_DATAFLOW = ("max_runtime", "drain_seconds")

#: Beam's own options that are template parameters too: one template serves both modes.
BEAM_PARAMETERS = {
    "streaming": "true for the streaming job (reads --subscription, writes windowed files); "
    "false or unset for a batch job (reads --input).",
    "number_of_worker_harness_threads": f"Bundles each SDK worker process (one per vCPU) "
    f"runs at a time. Unset: {HARNESS_THREADS} (khabar's stages are CPU-bound Python under "
    "one GIL, and each thread keeps its own entity projection table of up to 64 MB). "
    "0 leaves it to Dataflow.",
}

#: Each parameter kind: its Flex Template paramType and the regex a value must match
#: (an enum's regex is made from its choices).
_KINDS: dict[str, tuple[str, str]] = {
    "gcs_read": ("GCS_READ_FOLDER", GCS_PATH),
    "gcs_write": ("GCS_WRITE_FOLDER", GCS_PATH),
    "pubsub_subscription": ("PUBSUB_SUBSCRIPTION", SUBSCRIPTION),
    "positive_int": ("NUMBER", r"^[1-9][0-9]*$"),
    "non_negative_int": ("NUMBER", r"^[0-9]+$"),
    "non_negative_number": ("NUMBER", r"^[0-9]+([.][0-9]+)?$"),
    "fraction": ("NUMBER", r"^(0?[.][0-9]*[1-9][0-9]*|1([.]0+)?)$"),
    "model_dir": ("TEXT", r"^(gs://[a-z0-9][-_.a-z0-9]*[a-z0-9](/.*)?|/.+)$"),
    "boolean": ("BOOLEAN", r"^(true|false)$"),
    "enum": ("ENUM", ""),
}

#: Parameters a template user must give (the others have defaults or depend on the mode).
REQUIRED = {"output"}


class MetadataError(Exception):
    """An option the metadata generator does not know how to describe."""


def _flag(action: argparse.Action) -> str:
    for option in action.option_strings:
        if option.startswith("--"):
            return option[2:]
    raise MetadataError(f"option {action.dest!r} has no --long name")


def _kind(name: str, action: argparse.Action) -> str:
    if action.nargs == 0 and isinstance(action.default, bool):
        return "boolean"
    if action.choices:
        return "enum"
    if action.type is positive_int:
        return "positive_int"
    if action.type is int:
        return "non_negative_int"
    if action.type is float:
        return "non_negative_number"
    if action.type is fraction:
        return "fraction"
    if name in STRING_KINDS:
        return STRING_KINDS[name]
    raise MetadataError(
        f"--{name}: no Flex Template parameter kind; add it to STRING_KINDS or "
        "NOT_PARAMETERS in pipeline/job/dataflow.py"
    )


def _label(name: str) -> str:
    return name.replace("_", " ").capitalize()


def _parameter(action: argparse.Action, group: str, help_text: str | None = None) -> dict:
    name = _flag(action)
    kind = _kind(name, action)
    text = help_text or action.help or ""
    if not text.strip():
        raise MetadataError(f"--{name} has no help text")
    parameter: dict[str, Any] = {
        "name": name,
        "label": _label(name),
        "helpText": text % {"default": action.default} if "%(" in text else text,
        "isOptional": name not in REQUIRED,
        "paramType": _KINDS[kind][0],
    }
    if kind == "enum":
        choices = [str(choice) for choice in action.choices or ()]
        parameter["regexes"] = ["^(" + "|".join(re.escape(c) for c in choices) + ")$"]
        parameter["enumOptions"] = [{"value": choice, "label": choice} for choice in choices]
    else:
        parameter["regexes"] = [_KINDS[kind][1]]
    if action.default is not None and action.default is not False:
        parameter["defaultValue"] = str(action.default)
    parameter["groupName"] = group
    return parameter


def _grouped_actions(register: Callable[[argparse.ArgumentParser], None]):
    """(group title, action) for every option a PipelineOptions class registers."""
    parser = argparse.ArgumentParser(add_help=False)
    register(parser)
    for group in parser._action_groups:
        for action in group._group_actions:
            yield group.title or "", action


def template_parameters() -> list[dict[str, Any]]:
    parameters = []
    for group, action in _grouped_actions(KhabarOptions._add_argparse_args):
        if _flag(action) in NOT_PARAMETERS:
            continue
        parameters.append(_parameter(action, group))
    beam_actions = [
        action
        for options in (StandardOptions, DebugOptions)
        for _, action in _grouped_actions(options._add_argparse_args)
    ]
    for action in beam_actions:
        if action.option_strings and _flag(action) in BEAM_PARAMETERS:
            name = _flag(action)
            parameters.append(_parameter(action, "Beam", BEAM_PARAMETERS[name]))
    return parameters


def template_metadata() -> dict[str, Any]:
    """The Flex Template metadata (``gcloud dataflow flex-template build --metadata-file``)."""
    return {
        "name": TEMPLATE_NAME,
        "description": TEMPLATE_DESCRIPTION,
        "parameters": template_parameters(),
    }


def metadata_json() -> str:
    return json.dumps(template_metadata(), ensure_ascii=False, indent=2) + "\n"


# --------------------------------------------------------------------------- checks


def is_dataflow(options: Any) -> bool:
    runner = options.view_as(StandardOptions).runner or ""
    return runner.rsplit(".", 1)[-1].lower() in DATAFLOW_NAMES


def check_gcs_path(flag: str, value: str, need_object: bool = False) -> None:
    """Refuse a malformed ``gs://`` path (anything starting ``gs:``) with one line."""
    if not re.match(r"(?i)gs:", value):
        return
    pattern = GCS_OBJECT_PATH if need_object else GCS_PATH
    if not re.fullmatch(pattern.strip("^$"), value):
        shape = "gs://BUCKET/PATH" if need_object else "gs://BUCKET[/PATH]"
        raise CliError(
            f"{flag} {value!r} is not a valid Cloud Storage path: expected {shape} (bucket: "
            "3-63 lowercase letters, digits, '-', '_' or '.')"
        )


def validate_run_options(options: Any) -> None:
    """Refuse bad options before any job is built, each problem one line (CliError).

    For every runner: ``gs://`` paths must be well formed. For the DataflowRunner also:
    --project, --region, --temp_location (gs://), a worker image with khabar on it,
    gs:// input and output (workers cannot read the launching machine's disk), and no
    local-only streaming options. Nothing here talks to a service.
    """
    khabar = options.view_as(KhabarOptions)
    cloud = options.view_as(GoogleCloudOptions)
    streaming = bool(options.view_as(StandardOptions).streaming)
    for path in khabar.input or []:
        check_gcs_path("--input", path)
    if khabar.output:
        check_gcs_path("--output", khabar.output)
    for flag, value in (
        ("--temp_location", cloud.temp_location),
        ("--staging_location", cloud.staging_location),
    ):
        if value:
            check_gcs_path(flag, value, need_object=True)
    if not is_dataflow(options):
        return

    runner = "--runner DataflowRunner"
    if not cloud.project:
        raise CliError(f"{runner} needs --project (the Google Cloud project id)")
    if not re.fullmatch(PROJECT, cloud.project):
        raise CliError(
            f"--project {cloud.project!r} is not a project id (lowercase letters, digits "
            "and hyphens, starting with a letter; not the project number)"
        )
    if not cloud.region:
        raise CliError(f"{runner} needs --region (for example europe-west1)")
    if not re.fullmatch(REGION.strip("^$"), cloud.region):
        raise CliError(f"--region {cloud.region!r} is not a region (for example europe-west1)")
    if not cloud.temp_location:
        raise CliError(
            f"{runner} needs --temp_location gs://BUCKET/tmp (Dataflow's temporary and "
            "staging files)"
        )
    for flag, value in (
        ("--temp_location", cloud.temp_location),
        ("--staging_location", cloud.staging_location),
    ):
        if value and not value.startswith("gs://"):
            raise CliError(f"{runner} needs {flag} on Cloud Storage (gs://...), got {value!r}")
    worker = options.view_as(WorkerOptions)
    setup = options.view_as(SetupOptions)
    for flag, given in (
        ("--setup_file", setup.setup_file),
        ("--extra_package", setup.extra_packages),
        ("--requirements_file", setup.requirements_file),
    ):
        if given:
            # That route builds an sdist on the launching machine (it needs `build` and
            # setuptools there) and installs khabar, hazm and the models on every worker
            # at start-up; the worker image has them all, built once.
            raise CliError(
                f"{runner} runs khabar from its worker image (--sdk_container_image, "
                f"deploy/Dockerfile.worker); {flag} is not supported (deploy/README.md)"
            )
    if not worker.sdk_container_image:
        raise CliError(
            f"{runner} needs --sdk_container_image (the khabar worker image, "
            "deploy/Dockerfile.worker): the default Beam image has no khabar on it"
        )
    if streaming and not re.fullmatch(SUBSCRIPTION.strip("^$"), khabar.subscription or ""):
        raise CliError(
            f"--subscription {khabar.subscription!r} is not a Pub/Sub subscription name "
            "(projects/PROJECT/subscriptions/NAME, NAME starting with a letter)"
        )
    if not streaming:
        for path in khabar.input or []:
            if not path.startswith("gs://"):
                raise CliError(
                    f"--input {path!r} is not on Cloud Storage: Dataflow workers cannot read "
                    "local files (copy them to gs:// first)"
                )
    if khabar.output and not khabar.output.startswith("gs://"):
        raise CliError(
            f"--output {khabar.output!r} is not on Cloud Storage: Dataflow workers write to "
            "gs:// only"
        )
    if cloud.job_name and not re.fullmatch(JOB_NAME.strip("^$"), cloud.job_name):
        raise CliError(
            f"--job_name {cloud.job_name!r}: use lowercase letters, digits and hyphens, "
            "starting with a letter"
        )
    if cloud.update and not cloud.job_name:
        raise CliError("--update needs --job_name (the name of the running job to replace)")
    if cloud.template_location and options.view_as(DebugOptions).dataflow_job_file:
        raise CliError("--template_location and --dataflow_job_file exclude each other")
    if worker.num_workers and worker.max_num_workers:
        if worker.num_workers > worker.max_num_workers:
            raise CliError(
                f"--num_workers {worker.num_workers} is more than --max_num_workers "
                f"{worker.max_num_workers}"
            )
    for name in REFUSED_ON_DATAFLOW:
        if getattr(khabar, name, None) is not None:
            raise CliError(f"--{name} does not apply on Dataflow ({NOT_PARAMETERS[name]})")


def apply_dataflow_defaults(options: Any) -> None:
    """khabar's worker settings for a Dataflow job, each only where the job's own options
    say nothing: :data:`HARNESS_THREADS` bundles at a time per SDK process. A value the
    user gives (``--number_of_worker_harness_threads N``; 0 for Dataflow's own choice)
    passes to Beam unchanged. Other runners are left alone."""
    if not is_dataflow(options):
        return
    debug = options.view_as(DebugOptions)
    if debug.number_of_worker_harness_threads is None:
        debug.number_of_worker_harness_threads = HARNESS_THREADS


# --------------------------------------------------------------------------- launch


def normalize_flex_args(argv: Sequence[str]) -> list[str]:
    """A Flex Template launcher passes every parameter as ``--name=value``; Beam's and
    khabar's switches (``--streaming``, ``--emit_duplicates``, ...) take no value, so
    ``--name=true`` becomes ``--name`` and ``--name=false`` is dropped."""
    switches: set[str] = set()
    for action in all_options_parser()._actions:
        if action.nargs == 0:
            switches.update(action.option_strings)
    out: list[str] = []
    for arg in argv:
        flag, sep, value = arg.partition("=")
        if sep and flag in switches and value.lower() in ("true", "false"):
            if value.lower() == "true":
                out.append(flag)
            continue
        out.append(arg)
    return out


def _given(argv: Sequence[str], flag: str) -> bool:
    return any(arg == flag or arg.startswith(flag + "=") for arg in argv)


def launch_args(argv: Sequence[str]) -> list[str]:
    """``argv`` as a Flex Template passes it, completed with the Dataflow defaults:
    --runner DataflowRunner, the worker image the launcher was built with
    (``$KHABAR_WORKER_IMAGE``), and no pickled main session (every DoFn lives in an
    installed module; the launcher's ``__main__`` has nothing the workers need)."""
    args = normalize_flex_args(argv)
    if not _given(args, "--runner"):
        args.append("--runner=DataflowRunner")
    image = os.environ.get(WORKER_IMAGE_ENV, "").strip()
    if image and not _given(args, "--sdk_container_image"):
        args.append(f"--sdk_container_image={image}")
    if not (_given(args, "--save_main_session") or _given(args, "--no_save_main_session")):
        args.append("--no_save_main_session")
    return args


def construct(options: Any, files: list[str]):
    """The ``beam.Pipeline`` of a run: ``khabar.pipeline.job.run.make_pipeline``, the builder
    ``khabar run`` uses too (tests/test_deploy.py compares the two graphs)."""
    return make_pipeline(options, files)
