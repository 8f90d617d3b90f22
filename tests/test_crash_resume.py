"""`kill -9` at a random moment of a multi-step headless run, then `ml-intern resume THREAD --continue`:
the run finishes, every tool result saved before the kill is kept, and at most the step in flight is redone.

`bench/faults.py` runs the same check with 20 random kill points; the suite runs 3 (seeded).
"""

from __future__ import annotations

import signal

import pytest

from tests.fakes.counting_server import STEPS
from tests.harness_crashes import CrashReport, kill_many, kill_points

pytestmark = pytest.mark.e2e  # kill -9 of real `ml-intern` processes


@pytest.fixture(scope="module")
def crash_reports(tmp_path_factory: pytest.TempPathFactory) -> list[CrashReport]:
    return kill_many(tmp_path_factory.mktemp("crashes"), kill_points(3))


@pytest.mark.parametrize("index", range(3))
def test_kill_9_then_resume_continue_finishes_and_keeps_saved_results(
    crash_reports: list[CrashReport], index: int
) -> None:
    report = crash_reports[index]
    assert report.killed_code == -signal.SIGKILL, f"not killed: {report.summary()}"
    assert report.problems() == [], report.summary()


def test_kill_points_spread_over_the_run(crash_reports: list[CrashReport]) -> None:
    """The seeded kills hit different moments: not all before the first result, not all after the last."""
    saved = {len(report.saved_at_kill) for report in crash_reports}
    assert len(saved) > 1 and max(saved) < STEPS, [r.summary() for r in crash_reports]
