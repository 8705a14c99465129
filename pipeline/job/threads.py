"""How many threads the numeric libraries may use in a khabar process.

The entity network's matrix products run on BLAS threads and the language detector's
kernels are numba-compiled. On a 2-core machine one local worker already kept both cores
busy (170% CPU) for the same milliseconds per article as with one BLAS thread (#20), and
two worker processes, each with its own threads, oversubscribed the cores. khabar runs
each process's numeric libraries single-threaded and gets its parallelism from Beam's
workers instead.

The libraries read these variables once, when they load, so the ``khabar`` dispatcher
sets them before any command imports numpy; worker processes the runner starts inherit
them. A variable the user has set is kept, and ``KHABAR_NUMERIC_THREADS=N`` gives every
library N threads. On Dataflow the worker image sets them (deploy/Dockerfile.worker).
"""

from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping

from khabar.pipeline.errors import CliError

#: Read by OpenBLAS, OpenMP, MKL, BLIS, Accelerate, numexpr and numba at load time.
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "NUMBA_NUM_THREADS",
)
#: Threads for every numeric library of a khabar process (default 1).
THREADS_ENV = "KHABAR_NUMERIC_THREADS"


class ThreadsError(CliError):
    """``KHABAR_NUMERIC_THREADS`` is not a positive whole number."""


def numeric_threads(environ: MutableMapping[str, str] = os.environ) -> int:
    value = environ.get(THREADS_ENV, "1").strip() or "1"
    if not value.isdigit() or int(value) < 1:
        raise ThreadsError(f"{THREADS_ENV} must be a positive whole number, got {value!r}")
    return int(value)


def pin_numeric_threads(environ: MutableMapping[str, str] = os.environ) -> dict[str, str]:
    """Give each numeric library :func:`numeric_threads` threads unless its variable is
    set already; returns the variables as they now are. Too late once numpy has loaded
    (its BLAS has started its threads): then nothing is changed and {} is returned."""
    if "numpy" in sys.modules:
        return {}
    threads = str(numeric_threads(environ))
    for name in THREAD_VARIABLES:
        environ.setdefault(name, threads)
    return {name: environ[name] for name in THREAD_VARIABLES}
