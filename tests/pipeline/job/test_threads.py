"""Numeric libraries run single-threaded in every khabar process unless asked (#20)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from khabar.pipeline.job.threads import (
    THREAD_VARIABLES,
    THREADS_ENV,
    ThreadsError,
    numeric_threads,
)
from tests.conftest import run_khabar

# What a process started by `khabar` sees once numpy and numba have loaded: the
# dispatcher's own imports must not load numpy (the variables would come too late).
PROBE = """
import json, os, sys
from khabar.pipeline import cli
assert "numpy" not in sys.modules, "the dispatcher loaded numpy"
cli.pin_numeric_threads()
import numba, numpy
from khabar.pipeline.job.threads import THREAD_VARIABLES
print(json.dumps({"env": {k: os.environ.get(k) for k in THREAD_VARIABLES},
                  "numba": numba.config.NUMBA_NUM_THREADS}))
"""


def _probe(env: dict[str, str]) -> dict:
    import json
    import os

    clean = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
    clean.pop(THREADS_ENV, None)
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env={**clean, **env}, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_one_thread_per_library_by_default() -> None:
    seen = _probe({})
    assert set(seen["env"].values()) == {"1"}
    assert seen["numba"] == 1


def test_more_threads_when_asked_and_a_users_own_setting_is_kept() -> None:
    seen = _probe({THREADS_ENV: "2", "OPENBLAS_NUM_THREADS": "3"})
    assert seen["env"]["OPENBLAS_NUM_THREADS"] == "3"
    assert seen["env"]["OMP_NUM_THREADS"] == "2"
    assert seen["numba"] == 2


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5"])
def test_a_bad_thread_count_is_refused(value: str) -> None:
    with pytest.raises(ThreadsError):
        numeric_threads({THREADS_ENV: value})
    result = run_khabar("inspect", "nowhere", env={THREADS_ENV: value})
    assert result.returncode == 2
    assert f"{THREADS_ENV} must be a positive whole number" in result.stderr
