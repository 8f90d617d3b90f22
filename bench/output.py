"""A command that prints a lot (training runs do): its own time next to the time, CPU, peak RSS and progress
events through `run_command`, through the `bash` tool in a graph, and through a real headless `ml-intern` run
(stream-json, a scripted model server); prints one row per size and path.

python bench/output.py               # 10 MB and 50 MB of short lines
python bench/output.py --sizes 10    # only 10 MB

Each measurement runs in a fresh interpreter, so its peak RSS (getrusage) is its own.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TypedDict

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

LINE = "step 000123 loss 0.4321 lr 3e-4"  # 32 bytes with its newline


def command(megabytes: int) -> str:
    """Short lines, `megabytes` MB of them."""
    return f"yes '{LINE}' | head -c {megabytes * 1_000_000}"


def cpu_seconds() -> float:
    """CPU time of this process's threads (not the command's): steadier than wall time on a busy box."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mb() -> float:
    """This process's peak resident set so far (Linux reports KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def through_runner(cmd: str, home: Path) -> dict:
    """The command through `run_command`, as the bash tool calls it."""
    from ml_intern.tools.local.stream import run_command

    started = time.perf_counter()
    text = await run_command(["/bin/bash", "-c", cmd], home, dict(os.environ), 1800, home / "outputs")
    return {"seconds": time.perf_counter() - started, "result_chars": len(text), "events": None}


async def through_tool(cmd: str, home: Path) -> dict:
    """The command through the `bash` tool inside a graph, counting the progress events it streams."""
    from langgraph.graph import END, START, StateGraph

    from ml_intern.tools.base import ToolEnv
    from ml_intern.tools.local.shell import make_tools

    class State(TypedDict):
        result: str

    (bash,) = make_tools(ToolEnv(workdir=home, home=home))

    async def run(state: State) -> State:
        return {"result": await bash.ainvoke({"command": cmd, "timeout": 1800})}

    graph = StateGraph(State).add_node("run", run).add_edge(START, "run").add_edge("run", END).compile()
    started, events = time.perf_counter(), 0
    async for mode, chunk in graph.astream({"result": ""}, stream_mode=["custom", "values"]):
        events += mode == "custom" and chunk.get("type") == "tool_log"
        result = chunk["result"] if mode == "values" else ""
    return {"seconds": time.perf_counter() - started, "result_chars": len(result), "events": events}


def through_cli(cmd: str, root: Path) -> dict:
    """A real `ml-intern` run whose scripted model calls bash with `cmd`; the child's RSS and CPU."""
    from tests.fakes import llm_server as script
    from tests.fakes.llm_server import ScriptedLLMServer
    from tests.harness_cli import MODEL, Workspace, json_events

    call = script.tool_call("bash", {"command": cmd, "timeout": 1800})
    with ScriptedLLMServer(call, script.text("done")) as server:
        workspace = Workspace.create(root, server.url)
        started = time.perf_counter()
        done = workspace.run("-m", MODEL, "--output-format", "stream-json", "print a lot", timeout=1800)
        seconds = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(f"ml-intern exited {done.returncode}: {done.stderr[-500:]}")
    logs = [e for e in json_events(done.stdout) if e["type"] == "tool_log" and e.get("tool") == "bash"]
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # ml-intern is the largest child
    return {
        "seconds": seconds, "events": len(logs), "peak_rss_mb": usage.ru_maxrss / 1024,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
    }  # fmt: skip


def measure_one(path: str, megabytes: int) -> dict:
    """Run one measurement in this process; report its time, peak RSS and events."""
    cmd = command(megabytes)
    with tempfile.TemporaryDirectory() as home:
        if path == "cli":
            return through_cli(cmd, Path(home))
        if path == "alone":
            started = time.perf_counter()
            subprocess.run(["/bin/bash", "-c", f"{cmd} | cat > /dev/null"], check=True)
            row = {"seconds": time.perf_counter() - started, "result_chars": None, "events": None}
        else:
            from langgraph.graph import StateGraph  # noqa: F401  (imports before the baseline RSS)

            import ml_intern.tools.local.shell  # noqa: F401

            base, cpu = peak_rss_mb(), cpu_seconds()
            runner = through_runner if path == "runner" else through_tool
            row = asyncio.run(runner(cmd, Path(home)))
            row["base_rss_mb"], row["cpu_seconds"] = base, cpu_seconds() - cpu
        row["peak_rss_mb"] = peak_rss_mb()
    return row


def measure(path: str, megabytes: int) -> dict:
    """One measurement in a fresh interpreter."""
    done = subprocess.run(
        [sys.executable, __file__, "--one", path, str(megabytes)], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 50], help="output sizes in MB")
    parser.add_argument("--one", nargs=2, metavar=("PATH", "MB"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure_one(args.one[0], int(args.one[1]))))
        return
    columns = ("output", "path", "seconds", "x alone", "our CPU", "peak RSS", "+RSS")
    print("{:>7} {:<10} {:>8} {:>8} {:>8} {:>9} {:>7}  events".format(*columns))
    empty = measure("cli", 0)
    print(
        f"   cli, a command printing nothing: {empty['seconds']:.2f} s, CPU {empty['cpu_seconds']:.2f} s, "
        f"peak RSS {empty['peak_rss_mb']:.0f} MB (the CLI's own cost, in the cli rows too)"
    )
    for megabytes in args.sizes:
        alone = measure("alone", megabytes)
        for path in ("alone", "runner", "bash tool", "cli"):
            row = alone if path == "alone" else measure(path.split()[0], megabytes)
            print(f"{megabytes:>4} MB {path:<10} {format_row(row, alone['seconds'])}")
    print("targets: close to the command alone; RSS tens of MB at any size; a few events a second")
    print("(+RSS: growth past the imports; cli: the ml-intern process's own peak RSS and CPU)")


def format_row(row: dict, alone_seconds: float) -> str:
    """Seconds, ratio to the command alone, our CPU, peak RSS, its growth past the imports, events."""
    seconds, events = row["seconds"], row["events"]
    cpu = f"{row['cpu_seconds']:.2f}" if "cpu_seconds" in row else ""
    grown = f"{row['peak_rss_mb'] - row['base_rss_mb']:.0f} MB" if "base_rss_mb" in row else "-"
    rate = "" if events is None else f"{events} ({events / seconds:.1f}/s)"
    ratio = seconds / alone_seconds
    return f"{seconds:>8.2f} {ratio:>8.1f} {cpu:>8} {row['peak_rss_mb']:>6.0f} MB {grown:>7}  {rate}"


if __name__ == "__main__":
    main()
