"""A command that prints a lot: progress coalesced, memory bounded, the whole output spilled and redacted even
where a pipe read or a long line cuts a token."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TypedDict

import pytest
from langgraph.graph import END, START, StateGraph

import ml_intern.tools.local.shell as shell
from ml_intern.tools.base import MAX_RESULT_CHARS, ToolEnv
from ml_intern.tools.local.output import OutputCollector
from ml_intern.tools.local.stream import BURST, READ_CHUNK

TOKEN = "hf_" + "Ab3" * 10  # a Hugging Face token shape: hf_ and 30 characters


@pytest.fixture
def env(tmp_path: Path) -> ToolEnv:
    workdir = tmp_path / "work"
    workdir.mkdir()
    return ToolEnv(workdir=workdir, home=tmp_path / "home")


def spilled(env: ToolEnv) -> str:
    (path,) = (env.home / "outputs").iterdir()
    return path.read_text()


async def run_bash(env: ToolEnv, command: str) -> tuple[str, list[str], float]:
    """The bash tool's result, the progress lines it streamed and how long it took."""

    class State(TypedDict):
        result: str

    (bash,) = [tool for tool in shell.make_tools(env) if tool.name == "bash"]

    async def run(state: State) -> State:
        return {"result": await bash.ainvoke({"command": command, "timeout": 120})}

    graph = StateGraph(State).add_node("run", run).add_edge(START, "run").add_edge("run", END).compile()
    started, lines, result = time.monotonic(), [], ""
    async for mode, chunk in graph.astream({"result": ""}, stream_mode=["custom", "values"]):
        if mode == "custom" and chunk["type"] == "tool_log":
            lines.append(chunk["text"])
        elif mode == "values":
            result = chunk["result"]
    return result, lines, time.monotonic() - started


def line_with_token_across(boundary: int) -> str:
    """A long line (no newline) whose token straddles character `boundary`."""
    start = boundary - len(TOKEN) // 2
    return "a" * (start - 1) + " " + TOKEN + " " + "b" * 5000


def feed_in_chunks(output: OutputCollector, text: str, size: int) -> None:
    for at in range(0, len(text), size):
        output.feed(text[at : at + size])


# ---- the collector, fed as the reader thread feeds it ------------------------------------------------------


@pytest.mark.parametrize("boundary", [8_192, READ_CHUNK, 3 * READ_CHUNK])
def test_a_token_cut_by_a_read_is_redacted_in_the_spill_and_the_result(tmp_path, boundary):
    output = OutputCollector(tmp_path)
    line = line_with_token_across(boundary) + "\n"
    feed_in_chunks(output, line * 2, boundary)  # every read ends inside a token
    output.end_of_output()
    result = output.finish()
    saved = output.spill_path.read_text()
    assert TOKEN[:8] not in saved and TOKEN[-8:] not in saved
    assert saved.count("[redacted]") == 2
    assert len(saved) == 2 * len(line.replace(TOKEN, "[redacted]"))
    assert TOKEN[-8:] not in result and "[redacted]" in result


def test_the_collector_keeps_head_and_tail_in_bounded_memory(tmp_path):
    output = OutputCollector(tmp_path)
    text = "".join(f"step {i} loss 0.5\n" for i in range(1_000_000))  # ~20 MB
    largest = 0
    for at in range(0, len(text), READ_CHUNK):
        output.feed(text[at : at + READ_CHUNK])
        largest = max(largest, output.held_chars)
    output.end_of_output()
    result = output.finish()
    assert largest <= MAX_RESULT_CHARS + 2 * READ_CHUNK  # not the 20 MB
    assert output.spill_path.read_text() == text
    assert result.startswith("step 0 loss 0.5\n") and result.endswith("step 999999 loss 0.5\n")
    assert len(result) < MAX_RESULT_CHARS + 500


def test_terminal_escapes_cut_by_a_read_are_stripped(tmp_path):
    output = OutputCollector(tmp_path)
    feed_in_chunks(output, "\x1b[31mred\x1b[0m plain\n", 2)
    assert output.finish() == "red plain\n"


def test_a_detached_collector_keeps_what_arrived_and_drops_the_rest(tmp_path):
    output = OutputCollector(tmp_path)
    output.feed("12345\n")  # held back by the redactor until more arrives
    output.detach("[note]\n")
    output.feed("later\n")
    assert output.finish() == "12345\n[note]\n"


# ---- the bash tool -----------------------------------------------------------------------------------------


@pytest.mark.e2e
async def test_a_command_printing_20_mb_streams_few_progress_events(env):
    command = "yes 'step 000123 loss 0.43210' | head -c 20000000; echo finished"  # 25-byte lines
    result, lines, seconds = await run_bash(env, command)
    assert len(lines) <= 10 * seconds + BURST + 2  # not one per line (700,000 lines)
    assert lines[-1] == "finished"  # the final line is always shown
    assert set(lines) == {"step 000123 loss 0.43210", "finished"}  # whole lines only
    full = spilled(env)
    assert len(full) == 20_000_000 + len("finished\n")
    assert result.startswith("step 000123 loss 0.43210\n") and result.endswith("finished")
    assert "characters omitted. Full output saved to" in result and len(result) < MAX_RESULT_CHARS + 500


@pytest.mark.e2e
async def test_a_token_across_a_pipe_read_is_redacted_in_the_spill_file(env):
    line = line_with_token_across(READ_CHUNK)
    script = env.workdir / "long.txt"
    script.write_text((line + "\n") * 3)
    result, lines, _ = await run_bash(env, f"cat {script.name}; echo {TOKEN}")
    full = spilled(env)
    for text in (full, result, *lines):
        assert TOKEN[:8] not in text and TOKEN[-8:] not in text
    assert full.count("[redacted]") == 4


@pytest.mark.e2e
async def test_progress_shows_a_progress_bar_frame_before_the_line_ends(env):
    _, lines, _ = await run_bash(env, r"printf '10%%\r50%%\r'; sleep 0.5; printf '100%%\ndone\n'")
    assert lines == ["10%", "50%", "100%", "done"]
