"""khabar's pipeline options: every knob defined once, for the CLI and for Dataflow.

``KhabarOptions`` is a Beam ``PipelineOptions`` subclass, so ``khabar run`` accepts any
Beam option beside these (``--runner``, ``--direct_num_workers``, ``--project``, ...) and a
Dataflow template can read the same names.
"""

from __future__ import annotations

import argparse

from apache_beam.options.pipeline_options import PipelineOptions

from transforms.parse import DEFAULT_MAX_RECORD_BYTES

FORMAT_CHOICES = ("auto", "text", "jsonl", "html", "feed", "rss", "atom")


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
    if number <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value}")
    return number


class KhabarOptions(PipelineOptions):
    """Options of the khabar pipeline (shown by ``khabar run --help``)."""

    @classmethod
    def _add_argparse_args(cls, parser: argparse.ArgumentParser) -> None:
        group = parser.add_argument_group("khabar")
        group.add_argument(
            "--input",
            action="append",
            default=None,
            help="Input file, directory or glob, local or gs:// (repeatable). Directories are "
            "walked for .txt .jsonl .json .ndjson .html .htm .rss .atom .xml (and .gz of them).",
        )
        group.add_argument(
            "--output",
            default=None,
            help="Output directory, local or gs://: gets articles/, dead_letter/, "
            "duplicates/ (with --emit_duplicates) and _SUMMARY.json.",
        )
        group.add_argument(
            "--format",
            dest="input_format",
            default="auto",
            choices=FORMAT_CHOICES,
            help="Input format; 'auto' goes by extension, then by sniffing the content.",
        )
        group.add_argument(
            "--emit_duplicates",
            "--emit-duplicates",
            dest="emit_duplicates",
            action="store_true",
            default=False,
            help="Also write duplicates (linked to their survivor) to DIR/duplicates/.",
        )
        group.add_argument(
            "--max_article_bytes",
            "--max-article-bytes",
            dest="max_article_bytes",
            type=_positive_int,
            default=DEFAULT_MAX_RECORD_BYTES,
            help="Largest raw record (article, JSON line, feed file) accepted; larger ones "
            f"become dead letters (TooLarge). Default {DEFAULT_MAX_RECORD_BYTES}.",
        )
        group.add_argument(
            "--overwrite",
            action="store_true",
            default=False,
            help="Replace the outputs of an earlier run in --output (otherwise khabar refuses "
            "to write into a directory that already holds output).",
        )
        group.add_argument(
            "--num_shards",
            "--num-shards",
            dest="num_shards",
            type=int,
            default=0,
            help="Avro files per output kind in batch (0: let the runner decide).",
        )
