"""What recording for undo costs a loop of bash calls: one user turn of N `bash` calls by a scripted model,
in-process on a real SQLite file, with the undo record on and off; prints the median time per call.

    python bench/undo_loop.py                 # 100 calls in a workdir of 200 files, then of 2,000 files
    PYTHONPATH=/tmp/old python bench/undo_loop.py   # the same against another checkout (e.g. `git archive`)
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.append(str(ROOT))  # appended: a checkout on PYTHONPATH comes first
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from langchain_core.messages import AIMessage  # noqa: E402

from ml_intern.graph.context import RunContext  # noqa: E402
from ml_intern.model.ids import ModelSpec  # noqa: E402
from ml_intern.services import Services  # noqa: E402
from ml_intern.session.runner import new_turn  # noqa: E402
from ml_intern.session.session import open_session  # noqa: E402
from ml_intern.tools.base import ToolEnv  # noqa: E402
from ml_intern.tools.registry import build_tools  # noqa: E402
from tests.fakes.chat_model import ScriptedChatModel  # noqa: E402

_ids = itertools.count(1)


class Timed(ScriptedChatModel):
    """Notes when each answer is asked for: the gaps are the time a call (and its recording) took."""

    def _next_answer(self, messages, kwargs):  # type: ignore[no-untyped-def]
        self.call_kwargs.append({"at": time.perf_counter()})
        return super()._next_answer(messages, kwargs)


def script(calls: int) -> list:
    command = "echo {n} >> log{m}.txt"
    replies = [
        AIMessage(
            content="",
            tool_calls=[
                {
                    "name": "bash",
                    "args": {"command": command.format(n=n, m=n % 10)},
                    "id": f"b{next(_ids)}",
                    "type": "tool_call",
                }
            ],
        )
        for n in range(calls)
    ]
    return [*replies, "done"]


async def one_turn(root: Path, calls: int, files: int, record: bool) -> list[float]:
    workdir, home = root / "work", root / "home"
    for n in range(files):
        path = workdir / f"pkg{n % 20}" / f"m{n}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"VALUE = {n}\n" * 20)
    home.mkdir(parents=True, exist_ok=True)
    model = Timed(script(calls))
    env = ToolEnv(workdir=workdir, home=home)
    services = Services(
        model=ModelSpec(model_id="test/scripted", litellm_model="test/scripted"),
        chat_model=model,
        tools=build_tools(env, ["bash"]),
        config={},
        prompt="bench",
    )
    ctx = RunContext(
        model="test/scripted",
        workdir=str(workdir),
        approval="auto",
        services=services,
        max_iterations=calls + 5,
    )
    async with open_session(home / "checkpoints.sqlite") as session:
        if not record:
            session.snapshots = None
        await session.turn("bench", new_turn("loop"), ctx, lambda event: None, title="loop")
    stamps = [kw["at"] for kw in model.call_kwargs if "at" in kw]
    return [b - a for a, b in itertools.pairwise(stamps)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=100)
    args = parser.parse_args()
    for files in (200, 2000):
        medians = {}
        for record in (False, True):
            with tempfile.TemporaryDirectory() as temporary:
                gaps = asyncio.run(one_turn(Path(temporary), args.calls, files, record))
            medians[record] = statistics.median(gaps) * 1000
        print(
            f"{args.calls} bash calls, {files}-file workdir: median per call {medians[False]:.1f} ms without "
            f"the undo record, {medians[True]:.1f} ms with it (+{medians[True] - medians[False]:.1f} ms)"
        )


if __name__ == "__main__":
    main()
