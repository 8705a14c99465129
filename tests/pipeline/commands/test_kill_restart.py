"""kill -9 of `khabar stream` at random moments, restarted on the same output: no item
lost, none written twice, no child left behind (a small version of
``python -m tests.kill_restart --runs 20``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from khabar.pipeline.commands.emulator import find_emulator
from tests.kill_restart import run_trial

pytestmark = pytest.mark.skipif(
    find_emulator() is None, reason="Pub/Sub emulator (google-cloud-cli-pubsub-emulator) absent"
)


@pytest.mark.slow
def test_kill_9_and_restart_lose_nothing_and_write_nothing_twice(tmp_path: Path) -> None:
    lines: list[str] = []
    # each kill 3-8 s after the run's first poll: every killed run has published, so the
    # last run must resume (the killed runs' spool) and leave nothing pending
    trial = run_trial(
        tmp_path,
        runs=2,
        seed=7,
        kill_after=(3.0, 8.0),
        final_runtime=8.0,
        log=lines.append,
        from_first_poll=True,
    )
    print("\n".join(lines), trial.runs)
    assert trial.orphans == 0, lines
    # items appeared while the killed runs were up (the trial is not empty)
    assert sum(r["items"] for r in trial.runs[:2]) >= 5, trial.runs
    assert (trial.lost, trial.doubled) == (0, 0), trial.runs
    summary = json.loads((tmp_path / "out" / "_SUMMARY.json").read_text())
    stream = summary["stream"]
    assert stream["resumed"] and stream["spool_pending"] == 0, stream
