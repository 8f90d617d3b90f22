"""Undo's trash scenarios, shared by tests/test_undo_attribution.py and bench/faults_undo.py: the user writes
files while a long bash call runs, so per-call attribution blames them on the call; undo must move what it
removes or replaces to ML_INTERN_HOME/undo-trash and say where, never destroy it."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from tests import harness_undo as lab
from tests.harness import Sandbox

NOTES, THESIS_OLD, THESIS_NEW = "user's notes\n", "thesis v1\n", "thesis v2 (user, mid-call)\n"


def tree(root: Path) -> dict[str, bytes | str]:
    """Every file (bytes) and symlink ("-> target") under `root`, by relative path."""
    found: dict[str, bytes | str] = {}
    for path in sorted(root.rglob("*")) if root.is_dir() else []:
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            found[rel] = f"-> {path.readlink()}"
        elif path.is_file():
            found[rel] = path.read_bytes()
    return found


async def appears(path: Path, timeout: float = 10.0) -> None:
    """Wait until `path` exists (the call under test has started)."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} never appeared")
        await asyncio.sleep(0.02)


async def user_writes_during_a_long_call(lab_dir: Sandbox, seconds: float = 1.5) -> dict[str, Any]:
    """The reviewer's t10: while `touch started; sleep; echo ckpt > model.ckpt` runs, the user creates
    notes.md and .env and rewrites their older thesis.md; then the turn is undone."""
    w = lab_dir.workdir
    lab.put(w, {"thesis.md": THESIS_OLD})
    lab.age(w / "thesis.md")
    script = [lab.bash(f"touch started; sleep {seconds}; echo ckpt > model.ckpt"), "trained"]
    async with lab.open_agent(lab_dir, script) as agent:
        turn = asyncio.ensure_future(agent.send("train"))
        await appears(w / "started")
        lab.put(w, {"notes.md": NOTES, "thesis.md": THESIS_NEW, ".env": f"HF_TOKEN={lab.TOKEN}\n"})
        await turn
        report = await agent.undo()
    trash = Path(report.kept_aside) if report.kept_aside else None
    return {
        "report": report,
        "trash": trash,
        "kept": tree(trash) if trash else {},
        "all_trash": tree(lab_dir.ml_intern_home / "undo-trash"),
        "left": tree(w),
    }
