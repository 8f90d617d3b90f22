"""Prompt caching over a long turn: a headless 100-iteration turn (scripted `read` calls) against the local
Anthropic stand-in, through the installed CLI, litellm's anthropic/ provider and real HTTP; prints the cached
share of input tokens (goal > 0.8) and the input tokens in total.

python bench/cache.py                   # 100 iterations
python bench/cache.py --iterations 300
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.loop import clean_env, loop_script  # noqa: E402
from tests.fakes.anthropic_server import AnthropicServer, text, tool_use  # noqa: E402
from tests.harness import installed_cli  # noqa: E402

MODEL = "anthropic/claude-sonnet-4-5"


def bench_cache(iterations: int, result_bytes: int, stream: bool) -> None:
    with AnthropicServer() as server, tempfile.TemporaryDirectory() as home:
        workdir = Path(home) / "work"
        workdir.mkdir()
        reads = [c for c in loop_script(iterations, workdir, result_bytes) if c["tool_calls"]]
        server.push(*[tool_use("read", json.loads(c["tool_calls"][0]["arguments"])) for c in reads])
        server.push(text("done"))
        env = clean_env("http://127.0.0.1:9/v1", home)
        env.update(ANTHROPIC_API_BASE=server.url, ANTHROPIC_API_KEY="sk-ant-bench")
        env["ML_INTERN_CONFIG"] = str(Path(home) / "config.json")
        Path(env["ML_INTERN_CONFIG"]).write_text(json.dumps({"compaction": {"threshold_tokens": 10_000_000}}))
        cmd = [str(installed_cli()), "--model", MODEL, "--max-iterations", str(iterations + 5)]
        cmd += ["--output-format", "json", *([] if stream else ["--no-stream"]), "read the files"]
        start = time.perf_counter()
        done = subprocess.run(cmd, env=env, cwd=workdir, capture_output=True, text=True)
        wall = time.perf_counter() - start
        assert done.returncode == 0, done.stderr[-2000:]
        usage = json.loads(done.stdout)["usage"]
        sent = sum(sum(u.values()) for u in server.usages)
        read = sum(u["cache_read_input_tokens"] for u in server.usages)
        written = sum(u["cache_creation_input_tokens"] for u in server.usages)
        cost, how = json.loads(done.stdout)["cost_usd"], "streamed" if stream else "whole"
        print(
            f"{iterations}-iteration read turn ({result_bytes} B results, {how}), "
            f"{len(server.requests)} requests in {wall:.1f} s: cached share of input tokens "
            f"{read / sent:.3f} (goal > 0.8); input tokens {sent:,} ({read:,} read from cache, "
            f"{written:,} written); usage shown to the user: {usage['cached_tokens']:,} cached of "
            f"{usage['input_tokens']:,}; cost ${cost:.4f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--result-bytes", type=int, default=1000)
    args = parser.parse_args()
    bench_cache(args.iterations, args.result_bytes, stream=True)


if __name__ == "__main__":
    main()
