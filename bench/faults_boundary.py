"""Boundary escapes, through the real CLI and a scripted model: the rm -rf evasions of issue 11 aimed outside
the working directory with every call approved (`--approval auto`), credential reads, and the fallback where
bwrap cannot run. `scenarios(root)` returns the rows; bench/faults.py prints them."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from fault_rows import Row  # noqa: E402  (bench/ is on sys.path)

from tests.fakes import llm_server as script  # noqa: E402
from tests.fakes.llm_server import ScriptedLLMServer  # noqa: E402
from tests.harness_boundary import EVASIONS, fake_home, intact, outside_dir, remove  # noqa: E402
from tests.harness_cli import MODEL, QUICK_RETRIES, Workspace  # noqa: E402

CATEGORY = "boundary escapes"
SECRET = "hf_" + "s" * 30


def run_cli(root: Path, commands: list[str], approval: str, **env: str) -> tuple[Workspace, list[dict], list]:
    """One headless run whose model calls `bash` with each command at once, then answers; the events and
    what the model server received."""
    calls = [("bash", {"command": command, "timeout": 30}) for command in commands]
    with ScriptedLLMServer(script.tool_calls(calls), script.text("done")) as server:
        workspace = Workspace.create(root, server.url, config={"retries": QUICK_RETRIES})
        workspace.env.update(env)
        done = workspace.run("-m", MODEL, "--approval", approval, "--output-format", "stream-json", "go")
        events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
        return workspace, events, list(server.requests)


def tool_results(requests: list) -> str:
    """Every tool result the model was sent."""
    return "\n".join(
        str(m.get("content")) for r in requests for m in r.get("messages", []) if m.get("role") == "tool"
    )


def evasions(root: Path) -> list[Row]:
    targets = {name: outside_dir() for name in EVASIONS}
    try:
        commands = [cmd.replace("TARGET", str(targets[name])) for name, cmd in EVASIONS.items()]
        workspace, _, _ = run_cli(root, [*commands, "touch control"], "auto")
        ran = (workspace.workdir / "control").exists()  # the calls did run (the control in the workdir)
        return [
            Row(
                f"rm -rf evasion `{name}` on a directory outside the workdir, --approval auto",
                "confined: the target is intact (a workdir command in the same run works)",
                f"{'intact' if intact(targets[name]) else 'CHANGED'}, control ran: {ran}",
                intact(targets[name]) and ran,
                CATEGORY,
            )
            for name in EVASIONS
        ]
    finally:
        for target in targets.values():
            remove(target)


def credentials(root: Path) -> list[Row]:
    place = outside_dir()
    try:
        home = fake_home(place)
        env = {"HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache"), "HF_TOKEN": SECRET}
        commands = ["cat ~/.ssh/id_rsa", "cat ~/.cache/huggingface/token", "env", "echo pwned >> ~/.bashrc"]
        workspace, events, requests = run_cli(root, commands, "auto", **env)
        seen = tool_results(requests)
        leaked = [what for what in ("keybytes", "hf_xxxx", SECRET, "HF_TOKEN=") if what in seen]
        ran = "PATH=" in seen  # `env` ran and its output reached the model
        bashrc = (home / ".bashrc").read_text()
        return [
            Row(
                "bash reads ~/.ssh/id_rsa, the Hub token file and $HF_TOKEN, --approval auto",
                "hidden: none of them reaches the model",
                f"leaked: {leaked or 'nothing'}, env ran: {ran}",
                not leaked and ran,
                CATEGORY,
            ),
            Row(
                "bash appends to ~/.bashrc, --approval auto",
                "read-only: unchanged",
                "unchanged" if bashrc == "# user's\n" else "CHANGED",
                bashrc == "# user's\n",
                CATEGORY,
            ),
        ]
    finally:
        remove(place)


def unconfinable(root: Path) -> list[Row]:
    missing = str(root / "missing" / "bwrap")
    workspace, events, _ = run_cli(root, ["touch ran"], "ask", ML_INTERN_BWRAP=missing)
    notices = [e for e in events if e.get("type") == "tool_log" and e.get("tool") == "boundary"]
    stop = next((e.get("stop_reason") for e in events if e["type"] == "turn_complete"), None)
    ran = (workspace.workdir / "ran").exists()
    return [
        Row(
            "bwrap cannot run (ML_INTERN_BWRAP names a missing file), --approval ask, headless",
            "one boundary notice; the bash call waits for approval and does not run",
            f"{len(notices)} notice(s), stop {stop}, ran: {ran}",
            len(notices) == 1 and stop == "approval_required" and not ran,
            CATEGORY,
        )
    ]


def planted(root: Path) -> list[Row]:
    """What a command leaves for later, unconfined programs: a file in the host's /dev/shm, a `.env`."""
    shm = Path("/dev/shm") / f"ml-intern-bench-{os.getpid()}"
    commands = [f"echo x > {shm}", "echo ML_INTERN_CONFIG=evil.json > .env"]
    _, events, requests = run_cli(root, commands, "auto")
    on_host = shm.exists()
    shm.unlink(missing_ok=True)
    notices = [e for e in events if e["type"] == "tool_log" and ".env" in str(e.get("text"))]
    told = "created or changed" in tool_results(requests)
    return [
        Row(
            "bash writes /dev/shm/x, --approval auto",
            "the sandbox's /dev/shm is private: nothing on the host",
            "on the host" if on_host else "not on the host",
            not on_host,
            CATEGORY,
        ),
        Row(
            "bash creates .env (ML_INTERN_CONFIG=evil.json), --approval auto",
            "a boundary notice for the user and a line in the tool result",
            f"{len(notices)} notice(s), model told: {told}",
            len(notices) == 1 and told,
            CATEGORY,
        ),
    ]


def scenarios(root: Path) -> list[Row]:
    """Every boundary-escape row."""
    rows: list[Row] = []
    for name, scenario in {
        "evasions": evasions,
        "credentials": credentials,
        "unconfinable": unconfinable,
        "planted": planted,
    }.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        rows += scenario(root / name)
    return rows


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        for row in scenarios(Path(tmp)):
            print(f"{'PASS' if row.ok else 'FAIL'} | {row.fault} | {row.observed}")
