"""The security scenarios, run against real `ml-intern` processes: credentials in the environment, prompt,
tool output and an error text, which must never be stored or printed; destructive commands asked by the model.
`tests/test_secrets.py` and `bench/faults.py` check what they leave behind."""

from __future__ import annotations

import shlex
import sqlite3
import subprocess
import zlib
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ml_intern.configs.schema import packaged_defaults
from tests.fakes import llm_server as script
from tests.fakes.llm_server import ScriptedLLMServer
from tests.harness_cli import MODEL, QUICK_RETRIES, Workspace
from tests.harness_redaction import SHAPES

SECRETS = {  # environment variables a user has set, with real-looking values
    "HF_TOKEN": "hf_QwErTyUiOpAsDfGhJkLzXcVbNm123456",
    "GITHUB_TOKEN": "ghp_ZyXwVuTsRqPoNmLkJiHgFeDcBa9876543210",
    "OPENAI_API_KEY": "sk-proj-AbCdEfGhIjKlMnOpQrStUvWx0123",
    "VLLM_API_KEY": "sk-vllmKeyAbCdEfGhIjKlMnOp4567",  # sent as `Authorization: Bearer` to the model server
    "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE",
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "DB_PASSWORD": "correct-horse-battery-staple",  # no token shape: only its literal value can be redacted
    "WANDB_KEY": "0f3c9a7b5e1d2468ace013579bdf2468ace01357",  # secret by its name only
    "DATABASE_URL": "postgres://admin:s3cr3t-Pw@db.example.com:5432/app",
}
PAT = "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz"  # token-shaped, in no variable
BEARER = "eyJhbGciOiJIUzI1NiJ9.cGF5bG9hZA.c2lnbmF0dXJl"
NEEDLES = {**SECRETS, "PAT": PAT, "BEARER": BEARER}
LITERAL = "Xy7-secret-99"  # a password the model writes into a file: stored redacted, written as is
SCRIPT = "printf '%s\\n' 'curl -H \"Authorization: Bearer $HF_TOKEN\" https://x' > call.sh"
WRITE_LITERAL = f"echo 'password={LITERAL}' > app.conf"
PROMPT = (
    f"Use {SECRETS['HF_TOKEN']} and {PAT} with the header Authorization: Bearer {BEARER}; "
    f"the database password is {SECRETS['DB_PASSWORD']}"
)
FORMATS = ("text", "json", "stream-json")


def fragment(value: str) -> str:
    """16 characters from inside a secret: a cut or split copy of it is found too."""
    return value[4:20]


MARKS = {name: fragment(value) for name, value in NEEDLES.items()} | {
    name: piece for name, (_, piece, _) in SHAPES.items()
}  # what betrays each secret: a fragment of each value, a piece of each credential shape


def leaks(data: str | bytes) -> list[str]:
    """Names of the secrets whose fragment occurs in `data`."""
    raw = data.encode() if isinstance(data, str) else data
    return [name for name, mark in MARKS.items() if mark.encode() in raw]


def shapes_command() -> str:
    """A command printing every credential shape, again and again (its output spills to a file)."""
    printed = " ".join(shlex.quote(text) for text, _, _ in SHAPES.values())
    return f"for i in $(seq 1 300); do printf '%s\\n' {printed}; done"


def scenario() -> list[dict[str, Any]]:
    """Secrets in an error text, in tool arguments, in tool output (echo, env, a spilled log), in a reply."""
    spill = 'for i in $(seq 1 3000); do echo "line $i $HF_TOKEN $DB_PASSWORD"; done'
    return [
        script.error(500, f"upstream rejected key {SECRETS['OPENAI_API_KEY']}"),
        script.tool_calls(
            [
                ("bash", {"command": "echo $HF_TOKEN $GITHUB_TOKEN $AWS_SECRET_ACCESS_KEY; env"}),
                ("bash", {"command": f"echo {SECRETS['GITHUB_TOKEN']} {PAT} {SECRETS['DB_PASSWORD']}"}),
                ("bash", {"command": spill}),
                ("bash", {"command": shapes_command()}),
                ("bash", {"command": f"{SCRIPT} && {WRITE_LITERAL}"}),
            ]
        ),
        script.text(
            f"Your tokens: {SECRETS['HF_TOKEN']} {SECRETS['AWS_SECRET_ACCESS_KEY']} "
            f"Authorization: Bearer {BEARER}"
        ),
    ]


@dataclass
class SecretRun:
    """One headless run of the scenario."""

    workspace: Workspace
    done: subprocess.CompletedProcess[str]
    thread_id: str


def run_scenario(root: Path, fmt: str) -> SecretRun:
    with ScriptedLLMServer(*scenario()) as server:
        workspace = Workspace.create(root, server.url)
        workspace.env.update(SECRETS)
        done = workspace.run("-m", MODEL, "--output-format", fmt, PROMPT)
    [row] = workspace.thread_rows()
    return SecretRun(workspace, done, row["thread_id"])


def fail_with_secret_error(root: Path) -> SecretRun:
    """A run against a server that rejects the key, echoing it (and a bearer token) in its error text."""
    rejection = f"Incorrect API key provided: {SECRETS['VLLM_API_KEY']}. Authorization: Bearer {BEARER}"
    with ScriptedLLMServer(script.error(401, rejection)) as server:
        workspace = Workspace.create(root, server.url)
        workspace.env.update(SECRETS)
        done = workspace.run("-m", MODEL, "--output-format", "stream-json", "try again")
    [row] = workspace.thread_rows()
    return SecretRun(workspace, done, row["thread_id"])


# ---- where secrets could be stored -------------------------------------------------------------------------


def database_files(workspace: Workspace) -> list[Path]:
    return sorted(workspace.ml_intern_home.glob("checkpoints.sqlite*"))  # the database, -wal and -shm


def inflate(value: Any) -> bytes:
    """A stored value as bytes, zlib blobs (large checkpoint blobs) decompressed."""
    if not isinstance(value, bytes):
        return str(value).encode()
    try:
        return zlib.decompress(value)
    except zlib.error:
        return value


def stored_values(database: Path, tables: tuple[str, ...] = ()) -> list[bytes]:
    """Every value of every row of `tables` (default: all tables), decompressed."""
    with closing(sqlite3.connect(database)) as conn:  # closed now: a connection left to the garbage collector
        # removes the -shm file whenever it is collected (test_database_holds_no_secret reads that file)
        names = tables or tuple(
            r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
        )
        return [
            inflate(value)
            for name in names
            for row in conn.execute(f'SELECT * FROM "{name}"')
            for value in row
        ]


# ---- destructive local commands ----------------------------------------------------------------------------

CURL_PATTERN = r"\bcurl\b"  # added by the user's config


@dataclass
class DestructiveRun:
    """A headless run whose model asks for destructive commands and one safe command in a single reply."""

    workspace: Workspace
    done: subprocess.CompletedProcess[str]
    victim: Path  # a directory outside the working directory that `rm -rf` targets


def destructive_commands(victim: Path) -> list[str]:
    """Each command leaves a marker file in the workdir if it runs at all."""
    return [
        f"touch ran_rm_absolute && rm -rf {victim}",
        "touch ran_rm_home && rm -rf ~/victim_home",
        "touch ran_force_push && git push --force origin main",
        "touch ran_sudo && sudo true",
        "touch ran_dotfile && echo 'export PWNED=1' >> ~/.bashrc",
        "touch ran_curl && curl -s http://127.0.0.1:9/",
    ]


def run_destructive(root: Path, approval: str) -> DestructiveRun:
    victim = root / "victim"
    patterns = [*packaged_defaults()["bash"]["approval_patterns"], CURL_PATTERN]
    calls = [
        ("bash", {"command": c}) for c in [*destructive_commands(victim), "touch ran_safe && rm -rf build"]
    ]
    with ScriptedLLMServer(script.tool_calls(calls), script.text("cleaned up")) as server:
        config = {"retries": QUICK_RETRIES, "bash": {"approval_patterns": patterns}}
        workspace = Workspace.create(root, server.url, config=config)
        for kept in (victim, workspace.home / "victim_home"):
            kept.mkdir(parents=True)
            (kept / "keep.txt").write_text("precious")
        done = workspace.run(
            "-m", MODEL, "--approval", approval, "--output-format", "stream-json", "clean up"
        )
    return DestructiveRun(workspace, done, victim)


def untouched(run: DestructiveRun) -> list[str]:
    """What the destructive commands would have changed, if anything did change."""
    problems = [p.name for p in run.workspace.workdir.glob("ran_*") if p.name != "ran_safe"]
    for kept in (run.victim, run.workspace.home / "victim_home"):
        problems += [] if (kept / "keep.txt").exists() else [f"{kept} deleted"]
    return problems + (["~/.bashrc written"] if (run.workspace.home / ".bashrc").exists() else [])
