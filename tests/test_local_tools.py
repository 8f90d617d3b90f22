"""The local tools: bash, read, write, edit."""

from __future__ import annotations

import asyncio
import os
import stat
import time
from pathlib import Path
from typing import TypedDict

import pytest
from langgraph.graph import END, START, StateGraph

from ml_intern.tools.base import MAX_RESULT_CHARS, ToolError


def marked_pids(marker: str) -> list[int]:
    """Live processes (as this process sees them) whose command line holds `marker`: a confined command's
    `$!` is a PID of its own namespace, so tests find its children by a unique argument instead."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            marked = proc.name.isdigit() and marker.encode() in (proc / "cmdline").read_bytes()
            if marked and (proc / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def wait_until_gone(marker: str, seconds: float = 3.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not marked_pids(marker):
            return True
        time.sleep(0.05)
    return False


# ── bash ────────────────────────────────────────────────────────────────


async def test_bash_returns_output_without_exit_code_on_success(tools):
    result = await tools["bash"].ainvoke({"command": "echo hello"})
    assert result == "hello"


async def test_bash_reports_nonzero_exit_code(tools):
    result = await tools["bash"].ainvoke({"command": "echo partial; exit 3"})
    assert result.startswith("partial")
    assert result.endswith("exit code 3")


async def test_bash_combines_stdout_and_stderr(tools):
    result = await tools["bash"].ainvoke({"command": "echo out; echo err >&2"})
    assert result.splitlines() == ["out", "err"]


async def test_bash_says_when_there_is_no_output(tools):
    assert await tools["bash"].ainvoke({"command": "true"}) == "(no output)"


async def test_bash_runs_in_workdir_not_process_cwd(tools, env, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert await tools["bash"].ainvoke({"command": "pwd"}) == str(env.workdir)


async def test_bash_work_dir_is_relative_to_workdir(tools, env):
    (env.workdir / "sub").mkdir()
    assert await tools["bash"].ainvoke({"command": "pwd", "work_dir": "sub"}) == str(env.workdir / "sub")


async def test_bash_rejects_missing_work_dir(tools):
    with pytest.raises(ToolError, match="work_dir is not an existing directory"):
        await tools["bash"].ainvoke({"command": "pwd", "work_dir": "nope"})


async def test_bash_stdin_is_dev_null(tools):
    result = await tools["bash"].ainvoke({"command": "cat; readlink /proc/self/fd/0", "timeout": 5})
    assert result == "/dev/null"


async def test_bash_strips_terminal_colours(tools):
    result = await tools["bash"].ainvoke({"command": r"printf '\033[31mred\033[0m\n'"})
    assert result == "red"


async def test_bash_timeout_reports_partial_output(tools):
    started = time.monotonic()
    with pytest.raises(ToolError) as caught:
        await tools["bash"].ainvoke({"command": "echo before; sleep 30", "timeout": 1})
    assert time.monotonic() - started < 5
    assert "before" in str(caught.value)
    assert "timed out after 1s" in str(caught.value)


async def test_bash_timeout_kills_the_process_group(tools):
    with pytest.raises(ToolError, match="timed out"):
        await tools["bash"].ainvoke({"command": "sleep 61.731 & wait", "timeout": 1})
    assert wait_until_gone("61.731")


async def test_bash_cancellation_kills_the_process_group(tools):
    task = asyncio.create_task(tools["bash"].ainvoke({"command": "sleep 62.417 & wait"}))
    for _ in range(100):
        if marked_pids("62.417"):
            break
        await asyncio.sleep(0.05)
    assert marked_pids("62.417")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert wait_until_gone("62.417")


async def test_bash_does_not_wait_for_background_jobs_holding_the_pipe(tools):
    started = time.monotonic()
    result = await tools["bash"].ainvoke({"command": "sleep 30.853 & echo started"})
    try:
        assert time.monotonic() - started < 5
        assert marked_pids("30.853")  # a finished command leaves its background jobs running
        assert "background processes still hold the output open" in result
    finally:
        for pid in marked_pids("30.853"):
            os.kill(pid, 9)


async def test_bash_runs_concurrent_calls_in_parallel(tools):
    started = time.monotonic()
    results = await asyncio.gather(
        *(tools["bash"].ainvoke({"command": "sleep 1; echo done"}) for _ in range(2))
    )
    assert results == ["done", "done"]
    assert time.monotonic() - started < 1.8


async def test_bash_spills_long_output_to_a_file_under_home(tools, env):
    command = "for i in $(seq 1 20000); do echo line-$i; done"
    result = await tools["bash"].ainvoke({"command": command})
    spilled = list((env.home / "outputs").iterdir())
    assert len(spilled) == 1
    full = spilled[0].read_text()
    assert full.splitlines() == [f"line-{i}" for i in range(1, 20001)]
    assert str(spilled[0]) in result
    assert len(result) < MAX_RESULT_CHARS + 500
    assert result.startswith("line-1\n")
    assert result.endswith("line-20000")


async def test_bash_spill_files_are_unique_per_call(tools, env):
    command = "head -c 40000 /dev/zero | tr '\\0' x"
    await asyncio.gather(*(tools["bash"].ainvoke({"command": command}) for _ in range(2)))
    spilled = list((env.home / "outputs").iterdir())
    assert len(spilled) == 2
    assert all(len(path.read_text()) == 40000 for path in spilled)


async def test_bash_streams_lines_as_tool_log_events(tools):
    class State(TypedDict):
        result: str

    async def run_bash(state: State) -> State:
        return {"result": await tools["bash"].ainvoke({"command": "echo one; echo two"})}

    graph = StateGraph(State).add_node("run", run_bash).add_edge(START, "run").add_edge("run", END).compile()
    events = [event async for event in graph.astream({"result": ""}, stream_mode="custom")]
    assert events == [
        {"type": "tool_log", "tool": "bash", "text": "one"},
        {"type": "tool_log", "tool": "bash", "text": "two"},
    ]


# ── read ────────────────────────────────────────────────────────────────


async def test_read_numbers_lines_like_cat_n(tools, env):
    (env.workdir / "a.txt").write_text("alpha\nbeta\n")
    assert await tools["read"].ainvoke({"path": "a.txt"}) == "     1\talpha\n     2\tbeta"


async def test_read_resolves_relative_paths_against_workdir(tools, env, tmp_path, monkeypatch):
    (env.workdir / "a.txt").write_text("inside\n")
    (tmp_path / "a.txt").write_text("outside\n")
    monkeypatch.chdir(tmp_path)
    assert "inside" in await tools["read"].ainvoke({"path": "a.txt"})


async def test_read_records_the_resolved_absolute_path(tools, env):
    (env.workdir / "sub").mkdir()
    (env.workdir / "a.txt").write_text("x\n")
    await tools["read"].ainvoke({"path": "sub/../a.txt"})
    assert env.read_files == {str((env.workdir / "a.txt").resolve())}


async def test_read_offset_and_limit_say_how_to_continue(tools, env):
    (env.workdir / "a.txt").write_text("".join(f"l{i}\n" for i in range(1, 11)))
    result = await tools["read"].ainvoke({"path": "a.txt", "offset": 3, "limit": 2})
    assert result.splitlines()[:2] == ["     3\tl3", "     4\tl4"]
    assert "Lines 3-4 of 10. Continue with offset=5." in result


async def test_read_default_limit_is_2000_lines(tools, env):
    (env.workdir / "a.txt").write_text("x\n" * 2500)
    result = await tools["read"].ainvoke({"path": "a.txt"})
    assert "  2000\tx" in result
    assert "  2001\t" not in result
    assert "Continue with offset=2001" in result


async def test_read_truncates_long_lines(tools, env):
    (env.workdir / "a.txt").write_text("y" * 5000 + "\n")
    result = await tools["read"].ainvoke({"path": "a.txt"})
    assert "y" * 2000 + "... [3000 more characters]" in result
    assert "y" * 2001 not in result


async def test_read_output_is_bounded(tools, env):
    (env.workdir / "a.txt").write_text(("z" * 1000 + "\n") * 500)
    result = await tools["read"].ainvoke({"path": "a.txt"})
    assert len(result) < MAX_RESULT_CHARS + 2000
    assert "Continue with offset=" in result


async def test_read_missing_file_is_an_error(tools):
    with pytest.raises(ToolError, match="File not found: nope.txt"):
        await tools["read"].ainvoke({"path": "nope.txt"})


async def test_read_directory_is_an_error(tools, env):
    (env.workdir / "d").mkdir()
    with pytest.raises(ToolError, match="is a directory"):
        await tools["read"].ainvoke({"path": "d"})


async def test_read_binary_file_is_an_error(tools, env):
    (env.workdir / "b.bin").write_bytes(b"\x89PNG\x00\x01\x02")
    with pytest.raises(ToolError, match="binary file"):
        await tools["read"].ainvoke({"path": "b.bin"})
    assert env.read_files == set()


async def test_read_offset_past_end_is_an_error(tools, env):
    (env.workdir / "a.txt").write_text("one\n")
    with pytest.raises(ToolError, match="past the end .* 1 lines"):
        await tools["read"].ainvoke({"path": "a.txt", "offset": 5})


async def test_read_empty_file(tools, env):
    (env.workdir / "e.txt").write_text("")
    assert await tools["read"].ainvoke({"path": "e.txt"}) == "(empty file)"


# ── write ───────────────────────────────────────────────────────────────


async def test_write_creates_a_new_file_and_its_parent_directories(tools, env):
    result = await tools["write"].ainvoke({"path": "deep/er/new.txt", "content": "a\nb\n"})
    assert (env.workdir / "deep/er/new.txt").read_text() == "a\nb\n"
    assert result == f"Wrote 4 bytes (2 lines) to {env.workdir / 'deep/er/new.txt'}"


async def test_write_refuses_to_overwrite_an_unread_file(tools, env):
    (env.workdir / "keep.txt").write_text("original")
    with pytest.raises(ToolError, match="Read it first"):
        await tools["write"].ainvoke({"path": "keep.txt", "content": "clobbered"})
    assert (env.workdir / "keep.txt").read_text() == "original"


async def test_write_overwrites_a_file_after_it_was_read(tools, env):
    (env.workdir / "f.txt").write_text("old")
    await tools["read"].ainvoke({"path": "f.txt"})
    await tools["write"].ainvoke({"path": str(env.workdir / "f.txt"), "content": "new"})
    assert (env.workdir / "f.txt").read_text() == "new"


async def test_write_counts_the_file_as_read(tools, env):
    await tools["write"].ainvoke({"path": "f.txt", "content": "one"})
    assert str(env.workdir / "f.txt") in env.read_files
    await tools["write"].ainvoke({"path": "f.txt", "content": "two"})
    assert (env.workdir / "f.txt").read_text() == "two"


async def test_write_keeps_the_permissions_of_an_existing_file(tools, env):
    script = env.workdir / "run.sh"
    script.write_text("echo 1\n")
    script.chmod(0o755)
    await tools["read"].ainvoke({"path": "run.sh"})
    await tools["write"].ainvoke({"path": "run.sh", "content": "echo 2\n"})
    assert stat.S_IMODE(script.stat().st_mode) == 0o755


async def test_write_warns_about_python_syntax_errors(tools):
    result = await tools["write"].ainvoke({"path": "bad.py", "content": "def f(:\n"})
    assert "Python syntax error at line 1" in result


async def test_write_to_a_directory_is_an_error(tools, env):
    (env.workdir / "d").mkdir()
    with pytest.raises(ToolError, match="is a directory"):
        await tools["write"].ainvoke({"path": "d", "content": "x"})


# ── edit ────────────────────────────────────────────────────────────────


async def test_edit_replaces_an_exact_match(read_then_edit, env):
    result, content = await read_then_edit("a\nb\nc\n", old_str="b", new_str="B")
    assert content == "a\nB\nc\n"
    assert result.startswith(f"Edited {env.workdir / 'f.txt'} (1 replacement)")
    assert "fuzzy" not in result


async def test_edit_shows_the_edited_region_with_line_numbers(read_then_edit):
    text = "".join(f"l{i}\n" for i in range(1, 11))
    result, _ = await read_then_edit(text, old_str="l5\n", new_str="five\n")
    assert result.splitlines()[1:] == ["     3\tl3", "     4\tl4", "     5\tfive", "     6\tl6", "     7\tl7"]


async def test_edit_requires_the_file_to_have_been_read(tools, env):
    (env.workdir / "f.txt").write_text("a")
    with pytest.raises(ToolError, match="must read f.txt before editing"):
        await tools["edit"].ainvoke({"path": "f.txt", "old_str": "a", "new_str": "b"})
    assert (env.workdir / "f.txt").read_text() == "a"


async def test_edit_rejects_identical_strings(read_then_edit):
    with pytest.raises(ToolError, match="identical"):
        await read_then_edit("a", old_str="a", new_str="a")


async def test_edit_reports_a_missing_match_and_suggests_reading(read_then_edit):
    with pytest.raises(ToolError, match="not found in f.txt. Read the file again"):
        await read_then_edit("a\n", old_str="zzz", new_str="y")


async def test_edit_refuses_ambiguous_matches(read_then_edit, env):
    with pytest.raises(ToolError, match="matches 3 places .* replace_all"):
        await read_then_edit("x\nx\nx\n", old_str="x", new_str="y")
    assert (env.workdir / "f.txt").read_text() == "x\nx\nx\n"


async def test_edit_replace_all_changes_every_match(read_then_edit):
    result, content = await read_then_edit("x1 x2 x3", old_str="x", new_str="y", replace_all=True)
    assert content == "y1 y2 y3"
    assert "(3 replacements)" in result


async def test_edit_missing_file_is_an_error(tools):
    with pytest.raises(ToolError, match="File not found"):
        await tools["edit"].ainvoke({"path": "nope.txt", "old_str": "a", "new_str": "b"})


@pytest.mark.parametrize(
    ("mode", "expected"),
    [("append_after", "key = 1\nnew = 2\n"), ("prepend_before", "new = 2\nkey = 1\n")],
)
async def test_edit_insert_modes_keep_old_str(read_then_edit, mode, expected):
    _, content = await read_then_edit("key = 1\n", old_str="key = 1\n", new_str="new = 2\n", mode=mode)
    assert content == expected


FUZZY_CASES = {
    "trailing spaces in file": ("a = 1   \nb = 2\n", "a = 1\nb = 2", "a = 9\nb = 2", "a = 9\nb = 2\n"),
    "trailing spaces in old_str": ("a = 1\nb = 2\n", "a = 1  \nb = 2", "a = 9\nb = 2", "a = 9\nb = 2\n"),
    "curly quotes in file": ("say(“hi”)\n", 'say("hi")', 'say("bye")', 'say("bye")\n'),
    "curly quotes in old_str": ("it's\n", "it’s", "it is", "it is\n"),
    "crlf file, lf old_str": ("a\r\nb\r\nc\r\n", "a\nb\n", "x\ny\n", "x\r\ny\r\nc\r\n"),
    "mixed endings, lf old_str": ("a\r\nb\nc\n", "a\nb", "x\ny", "x\ny\nc\n"),
    "tab in file, spaces in old_str": (
        "def f():\n\treturn 1\n",
        "    return 1\n",
        "    return 2\n",
        "def f():\n\treturn 2\n",
    ),
    "too little indentation": (
        "if x:\n        a()\n        b()\n",
        "    a()\n    b()",
        "    a()\n    c()",
        "if x:\n        a()\n        c()\n",
    ),
    "indentation dropped": (
        "class A:\n    x = 1\n    y = 2\n",
        "x = 1\ny = 2\n",
        "x = 3\n",
        "class A:\n    x = 3\n",
    ),
}


@pytest.mark.parametrize(("text", "old", "new", "expected"), FUZZY_CASES.values(), ids=FUZZY_CASES.keys())
async def test_edit_fuzzy_fallback(read_then_edit, text, old, new, expected):
    result, content = await read_then_edit(text, old_str=old, new_str=new)
    assert content == expected
    assert "(1 replacement)" in result


async def test_edit_notes_a_fuzzy_match(read_then_edit):
    result, _ = await read_then_edit("a = 1  \n", old_str="a = 1\n", new_str="a = 2\n")
    assert "fuzzy match" in result


async def test_edit_fuzzy_match_counts_ambiguity(read_then_edit):
    with pytest.raises(ToolError, match="matches 2 places"):
        await read_then_edit("    x = 1\n\tx = 1\n", old_str="\t  x = 1", new_str="x = 2")


async def test_edit_resolves_relative_paths_against_workdir(read_then_edit, tmp_path, monkeypatch):
    (tmp_path / "f.txt").write_text("outside")
    monkeypatch.chdir(tmp_path)
    _, content = await read_then_edit("inside", old_str="inside", new_str="edited")
    assert content == "edited"
    assert (tmp_path / "f.txt").read_text() == "outside"


async def test_edit_warns_about_python_syntax_errors(tools, env):
    (env.workdir / "m.py").write_text("x = 1\n")
    await tools["read"].ainvoke({"path": "m.py"})
    result = await tools["edit"].ainvoke({"path": "m.py", "old_str": "x = 1", "new_str": "x = (1"})
    assert "Python syntax error" in result
