"""Benchmarks of the agent loop against a local scripted OpenAI-compatible server; prints the numbers.

python bench/loop.py            # all measurements
python bench/loop.py --quick    # fewer repetitions
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fakes.llm_server import ScriptedLLMServer, text, tool_call  # noqa: E402
from tests.harness import installed_cli  # noqa: E402

ML_INTERN = [str(installed_cli())]  # the console script a user runs


def clean_env(server_url: str, home: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_TOKEN"))}
    env.update(
        ML_INTERN_HOME=str(Path(home) / "data"),  # beside the workdir, as a user's would be (not around it)
        HOME=home,
        VLLM_BASE_URL=server_url,
        LITELLM_LOCAL_MODEL_COST_MAP="True",
        PYTHONPATH=str(ROOT),
    )
    return env


def timed(cmd: list[str], **kwargs) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    return time.perf_counter() - start, done


def bench_help(repeat: int) -> None:
    times = [timed([*ML_INTERN, "--help"])[0] for _ in range(repeat)]
    print(
        f"ml-intern --help: median {statistics.median(times) * 1000:.0f} ms over {repeat} runs "
        "(target <= 300 ms)"
    )


def bench_one_answer(repeat: int) -> None:
    ratios = []
    with ScriptedLLMServer() as server, tempfile.TemporaryDirectory() as home:
        env = clean_env(server.url, home)
        for _ in range(repeat):
            server.push(text("Hello!"))
            run, done = timed([*ML_INTERN, "--model", "vllm/bench", "say hello"], env=env, cwd=home)
            assert done.returncode == 0, done.stderr
            imp, _ = timed([sys.executable, "-c", "import langchain_litellm"], env=env)
            ratios.append(run / imp)
            print(
                f"  one-answer run {run:.2f} s, import langchain_litellm {imp:.2f} s, ratio {run / imp:.2f}"
            )
    print(
        "one-answer headless run / import langchain_litellm: "
        f"median {statistics.median(ratios):.2f} (target <= 1.5)"
    )


def loop_script(iterations: int, workdir: Path, result_bytes: int) -> list[dict]:
    """`iterations` reads of distinct files (so no doom loop), then a final answer."""
    words = random.Random(0)
    vocabulary = [
        f"{w}{n}" for w in ("loss", "step", "epoch", "lr", "grad", "token", "eval") for n in range(50)
    ]
    for i in range(iterations):
        lines = [" ".join(words.choice(vocabulary) for _ in range(14)) for _ in range(result_bytes // 100)]
        (workdir / f"f{i}.txt").write_text("\n".join(lines) + "\n")  # log-like: compresses ~3x
    return [tool_call("read", {"path": f"f{i}.txt"}) for i in range(iterations)] + [text("done")]


def bench_loop(iterations: int, result_bytes: int) -> None:
    with ScriptedLLMServer() as server, tempfile.TemporaryDirectory() as home:
        workdir = Path(home) / "work"
        workdir.mkdir()
        server.push(*loop_script(iterations, workdir, result_bytes))
        env = clean_env(server.url, home)
        env["ML_INTERN_CONFIG"] = str(Path(home) / "config.json")
        Path(env["ML_INTERN_CONFIG"]).write_text(json.dumps({"compaction": {"threshold_tokens": 10_000_000}}))
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        cmd = [
            *ML_INTERN,
            "--model",
            "vllm/bench",
            "--max-iterations",
            str(iterations + 5),
            "--output-format",
            "json",
        ]
        wall, done = timed([*cmd, "read the files"], env=env, cwd=workdir)
        assert done.returncode == 0, done.stderr[-2000:]
        peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        gaps = [b - a for a, b in zip(server.request_times, server.request_times[1:], strict=False)]
        db = sum(p.stat().st_size for p in (Path(home) / "data").glob("checkpoints.sqlite*"))
        transcript = sum(len(json.dumps(m.get("content"))) for m in server.requests[-1]["messages"][1:])
        print(
            f"{iterations}-iteration read loop, {result_bytes} B results: wall {wall:.1f} s, "
            f"median gap between model requests {statistics.median(gaps) * 1000:.1f} ms (target <= 25 ms), "
            f"p90 {sorted(gaps)[int(len(gaps) * 0.9)] * 1000:.1f} ms"
        )
        if os.environ.get("BENCH_KEEP_DB"):
            import shutil

            shutil.copy(Path(home) / "data" / "checkpoints.sqlite", os.environ["BENCH_KEEP_DB"])
        target = "(target <= 3x)" if result_bytes >= 5000 else "(tiny results: per-step overhead dominates)"
        print(
            f"  checkpoint db {db / 1e6:.2f} MB for a {transcript / 1e6:.2f} MB transcript: "
            f"{db / max(transcript, 1):.2f}x {target}; peak RSS "
            f"{max(peak_kb, before) / 1024:.0f} MB (target <= 300 MB)"
        )


def bench_bash(iterations: int) -> None:
    """`iterations` bash calls, confined (bubblewrap) and not: the median gap between model requests is the
    cost of one call through the loop."""
    medians = {}
    for confine in ("on", "off"):
        with ScriptedLLMServer() as server, tempfile.TemporaryDirectory() as home:
            workdir = Path(home) / "work"
            workdir.mkdir()
            calls = [tool_call("bash", {"command": f"echo {i} > out.txt"}) for i in range(iterations)]
            server.push(*calls, text("done"))
            env = clean_env(server.url, home)
            env["ML_INTERN_CONFIG"] = str(Path(home) / "config.json")
            Path(env["ML_INTERN_CONFIG"]).write_text(json.dumps({"bash": {"confine": confine}}))
            cmd = [*ML_INTERN, "--model", "vllm/bench", "--max-iterations", str(iterations + 5)]
            wall, done = timed([*cmd, "--approval", "auto", "run the commands"], env=env, cwd=workdir)
            assert done.returncode == 0, done.stderr[-2000:]
            gaps = [b - a for a, b in zip(server.request_times, server.request_times[1:], strict=False)]
            medians[confine] = statistics.median(gaps)
            print(
                f"{iterations} bash calls, confine {confine}: wall {wall:.1f} s, median per call "
                f"{medians[confine] * 1000:.1f} ms"
            )
    print(f"  confinement costs {(medians['on'] - medians['off']) * 1000:.1f} ms per bash call (median)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    repeat = 3 if args.quick else 7
    bench_help(repeat)
    bench_one_answer(2 if args.quick else 3)
    bench_bash(100)
    bench_loop(100, 200)
    bench_loop(300, 5000)


if __name__ == "__main__":
    main()
