"""Fault bench rows for undo by attribution: the scenarios of tests/harness_undo.py, each checked as
tests/test_undo_attribution.py checks it (in-process sessions on a real SQLite file, real local tools)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from fault_rows import Row  # noqa: E402  (bench/ is on sys.path)

from ml_intern.session.undo_report import shown  # noqa: E402
from tests import harness_undo as lab  # noqa: E402
from tests import harness_undo_trash as mid  # noqa: E402
from tests.harness import Sandbox  # noqa: E402

CATEGORY = "undo attribution"


def between_calls(seen: dict[str, Any]) -> tuple[str, bool]:
    kept = (seen["mine"], seen["new"], seen["agent1"]) == ("mine v2\n", "user's new file\n", "user\n")
    return f"user's edit, new file and edit of an agent file kept: {kept}", kept


def two_threads(seen: dict[str, Any]) -> tuple[str, bool]:
    return f"files left: {', '.join(seen['left'])}", seen["left"] == ["b.txt", "bdir", "bdir/x", "c.txt"]


def renames(seen: dict[str, Any]) -> tuple[str, bool]:
    kept = [name for name, text in seen["copies"].items() if text is not None]
    listed = {".env", "server.key", "envcopy", "k2", "moved_x.py"} <= set(lab.why(seen["report"]))
    ok = len(kept) == 3 and listed and lab.TOKEN.encode() not in seen["stored"]
    return f"kept {', '.join(kept) or 'none'}; originals and copies listed: {listed}", ok


def symlinks(seen: dict[str, Any]) -> tuple[str, bool]:
    outside_intact = seen["outside"] == [("f.txt", "outside original\n"), ("n.txt", "outside note\n")]
    listed = "notes/n.txt" in lab.why(seen["report"])
    ok = outside_intact and seen["data_is_dir"] and listed
    return f"outside untouched: {outside_intact}; user's link listed, not followed: {listed}", ok


def secrets(seen: dict[str, Any]) -> tuple[str, bool]:
    leaked = lab.TOKEN.encode() in seen["stored"] or lab.TOKEN.encode() in seen["trash"]
    left = seen["envdump_left"]
    return f"token in the snapshot store or trash: {leaked}; envdump.txt left: {left}", not leaked


def credentials(seen: dict[str, Any]) -> tuple[str, bool]:
    listed = set(lab.CREDENTIALS) <= set(lab.why(seen["report"]))
    ok = not seen["copied"] and listed
    return f"copied: {', '.join(seen['copied']) or 'none'}; all listed: {listed}", ok


def own_changes(seen: dict[str, Any]) -> tuple[str, bool]:
    ok = seen["same"] and seen["mode"] == 0o644 and seen["dirs"] == ["a.txt", "gone.txt", "sub"]
    return f"workdir byte for byte as before: {ok}", ok


def during_a_call(seen: dict[str, Any]) -> tuple[str, bool]:
    kept = seen["kept"]
    users = kept.get("notes.md") == mid.NOTES.encode() and kept.get("thesis.md") == mid.THESIS_NEW.encode()
    report = seen["report"]
    named = bool(report.kept_aside) and any(shown(report.kept_aside) in line for line in report.lines())
    env_left = ".env" in seen["left"] and ".env" not in seen["all_trash"]
    observed = f"user's notes.md, thesis.md in trash: {users}; trash named: {named}; .env left: {env_left}"
    return observed, users and named and env_left and kept.get("model.ckpt") == b"ckpt\n"


CASES: list[tuple[str, str, Callable[..., Any], Callable[[dict[str, Any]], tuple[str, bool]]]] = [
    (
        "user edits files between two agent calls",
        "user's files kept; agent's calls reverted",
        lab.user_edits_between_calls,
        between_calls,
    ),
    (
        "two threads at once in one workdir, undo one",
        "other threads' files kept",
        lab.two_threads_one_workdir,
        two_threads,
    ),
    (
        "agent renames .env, server.key, venv/lib/x.py",
        "nothing holding the only copy deleted; all listed",
        lab.renames_of_uncopyable_files,
        renames,
    ),
    (
        "directory swapped for a symlink out of the workdir",
        "nothing written outside; swaps listed",
        lab.symlink_swapped_for_a_directory,
        symlinks,
    ),
    (
        "agent runs env > envdump.txt (token set)",
        "token bytes never in the snapshot store",
        lab.secrets_written_by_the_agent,
        secrets,
    ),
    (
        "agent edits .ssh/id_rsa, .aws/credentials, .netrc, ...",
        "never copied; listed",
        lab.credential_files_edited,
        credentials,
    ),
    (
        "agent creates, edits, deletes, chmods files",
        "put back byte for byte",
        lab.agent_create_edit_delete,
        own_changes,
    ),
    (
        "user writes notes.md, rewrites thesis.md during a long bash call",
        "nothing destroyed: replaced bytes moved to the trash, report names it",
        mid.user_writes_during_a_long_call,
        during_a_call,
    ),
]


def scenarios(root: Path) -> list[Row]:
    """Run every undo-attribution case under `root`; one Row each."""
    rows = []
    for n, (fault, expected, run, check) in enumerate(CASES):
        try:
            observed, ok = check(asyncio.run(run(Sandbox.under(root / f"undo-{n}"))))
        except Exception as exc:  # a crash is a failed row, not a failed bench
            observed, ok = f"crashed: {type(exc).__name__}: {exc}", False
        rows.append(Row(fault, expected, observed, ok, CATEGORY))
    return rows


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as temporary:
        for row in scenarios(Path(temporary)):
            print(f"{'ok  ' if row.ok else 'FAIL'} {row.fault}: {row.observed}")
