"""How long the chat takes to show its prompt, and to show the first answer, on a pseudo-terminal against the
scripted local model server; prints the medians.

python bench/chat_start.py             # 5 runs
python bench/chat_start.py --runs 9
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pexpect

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fakes.llm_server import ScriptedLLMServer, text  # noqa: E402
from tests.harness import installed_cli  # noqa: E402

PROMPT_SHOWN = "\x1b[?2004h"  # prompt_toolkit turns on bracketed paste each time it shows a prompt
ANSWER = "Hello from the scripted model."


def chat_env(server_url: str, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_TOKEN", "_BASE_URL"))}
    env.update(
        HOME=str(home),
        ML_INTERN_HOME=str(home / "data"),
        XDG_CONFIG_HOME=str(home / ".config"),
        VLLM_BASE_URL=server_url,
        LITELLM_LOCAL_MODEL_COST_MAP="True",
        TERM="xterm",
        PROMPT_TOOLKIT_NO_CPR="1",
    )
    return env


def one_run(server: ScriptedLLMServer, home: Path, pause: float = 0.0) -> tuple[float, float]:
    """(seconds until the prompt, seconds until the first answer is on screen); the line is typed at once,
    or `pause` seconds after the prompt (the answer's time is then counted from the moment it was sent)."""
    server.push(text(ANSWER))
    workdir = home / "work"
    workdir.mkdir(exist_ok=True)
    started = time.perf_counter()
    child = pexpect.spawn(
        str(installed_cli()), ["-m", "vllm/bench"], env=chat_env(server.url, home), cwd=str(workdir),
        dimensions=(50, 120), encoding="utf-8", timeout=60,
    )  # fmt: skip
    child.expect_exact(PROMPT_SHOWN)
    to_prompt = time.perf_counter() - started
    if pause:
        time.sleep(pause)
        started = time.perf_counter()
    child.sendline("hi")
    child.expect_exact(ANSWER)
    to_answer = time.perf_counter() - started
    child.expect_exact(PROMPT_SHOWN)
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    return to_prompt, to_answer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    prompts, answers = [], []
    with ScriptedLLMServer() as server, tempfile.TemporaryDirectory() as home:
        for run in range(args.runs):
            to_prompt, to_answer = one_run(server, Path(home))
            prompts.append(to_prompt)
            answers.append(to_answer)
            print(f"  run {run + 1}: prompt after {to_prompt:.2f} s, first answer after {to_answer:.2f} s")
        _, later = one_run(server, Path(home), pause=8.0)
    print(
        f"chat start: median {statistics.median(prompts):.2f} s to the prompt (target <= 0.5 s), "
        f"{statistics.median(answers):.2f} s to the first answer (typed at once), over {args.runs} runs; "
        f"{later:.2f} s from sending to the first answer when typed 8 s after the prompt (litellm loaded)"
    )


if __name__ == "__main__":
    main()
