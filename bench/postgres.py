"""Many agents on one database: 20 headless runs at once (100 read iterations each, scripted model), on one
Postgres and then on one SQLite file; prints the median gap between model requests (the per-iteration cost of
the loop and its checkpoints) and the database size per transcript byte for both.

python bench/postgres.py                  # 20 agents x 100 iterations
python bench/postgres.py --agents 5 --iterations 30
Targets: the Postgres gap at most 2x SQLite's; the database at most 3x the transcripts.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.loop import ML_INTERN, clean_env, loop_script  # noqa: E402
from tests.fakes.llm_server import ScriptedLLMServer  # noqa: E402
from tests.harness_postgres import start_postgres  # noqa: E402

RESULT_BYTES = 5000  # each read's result: log-like text


def run_agents(agents: int, iterations: int, database_url: str) -> tuple[list[float], int, float, int]:
    """`agents` runs at once, each with its own scripted server and workdir, one home and one database
    ("": the home's SQLite file): the gaps between model requests, transcript bytes, wall seconds and
    database bytes."""
    with ExitStack() as stack:
        home = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        config = home / "config.json"
        config.write_text(json.dumps({"compaction": {"threshold_tokens": 10_000_000}}))
        servers, runs = [], []
        start = time.perf_counter()
        for n in range(agents):
            server = stack.enter_context(ScriptedLLMServer())
            workdir = home / f"work{n}"
            workdir.mkdir()
            server.push(*loop_script(iterations, workdir, RESULT_BYTES))
            env = clean_env(server.url, str(home)) | {"ML_INTERN_CONFIG": str(config)}
            if database_url:
                env["ML_INTERN_DATABASE_URL"] = database_url
            cmd = [*ML_INTERN, "--model", "vllm/bench", "--max-iterations", str(iterations + 5)]
            runs.append(subprocess.Popen(
                [*cmd, "--output-format", "json", "read the files"], env=env, cwd=workdir,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            ))  # fmt: skip
            servers.append(server)
        for run in runs:
            _, err = run.communicate(timeout=3600)
            assert run.returncode == 0, err[-2000:]
        wall = time.perf_counter() - start
        gaps = [b - a for s in servers for a, b in zip(s.request_times, s.request_times[1:], strict=False)]
        transcript = sum(
            len(json.dumps(m.get("content"))) for s in servers for m in s.requests[-1]["messages"][1:]
        )
        if not database_url:
            size = sum(p.stat().st_size for p in (home / "data").glob("checkpoints.sqlite*"))
            return gaps, transcript, wall, size
        return gaps, transcript, wall, postgres_size(database_url)


def postgres_size(url: str) -> int:
    """Bytes of the tables (indexes and TOAST included) in the database's schema."""
    import psycopg

    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT CAST(COALESCE(sum(pg_total_relation_size(c.oid)), 0) AS BIGINT) FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = current_schema() AND c.relkind = 'r'"
        ).fetchone()[0]


def report(name: str, gaps: list[float], transcript: int, wall: float, size: int) -> float:
    median = statistics.median(gaps)
    p90 = sorted(gaps)[int(len(gaps) * 0.9)]
    print(
        f"{name}: wall {wall:.1f} s, median gap {median * 1000:.1f} ms, p90 {p90 * 1000:.1f} ms; database"
        f" {size / 1e6:.2f} MB for {transcript / 1e6:.2f} MB of transcripts: {size / max(transcript, 1):.2f}x"
        " (target <= 3x)"
    )
    return median


def main() -> None:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument("--iterations", type=int, default=100)
    args = parser.parse_args()
    print(f"{args.agents} agents at once, {args.iterations} read iterations each, {RESULT_BYTES} B results")
    server = start_postgres()
    try:
        url = server.create_database()
        on_postgres = report("postgres", *run_agents(args.agents, args.iterations, url))
    finally:
        server.stop()
    on_sqlite = report("sqlite  ", *run_agents(args.agents, args.iterations, ""))
    print(f"postgres / sqlite median gap: {on_postgres / on_sqlite:.2f}x (target <= 2x)")


if __name__ == "__main__":
    main()
