"""Fault bench rows for secrets on disk: a real `ml-intern` run whose model prints every credential shape
(bash output, a spilled output, a token cut by a 64 KB pipe read, its reply), writes a script with a `$VAR`
reference and a file with a literal password; then every file under ML_INTERN_HOME (the database
decompressed) and the workdir's outputs is searched for each secret. Also a real stdio MCP server whose
stderr and spilled result carry every shape."""

from __future__ import annotations

import asyncio
import os
import shlex
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from fault_rows import Row  # noqa: E402  (bench/ is on sys.path)

from tests import harness_secrets as sec  # noqa: E402
from tests.fakes import llm_server as script  # noqa: E402
from tests.fakes.llm_server import ScriptedLLMServer  # noqa: E402
from tests.harness import Sandbox, home_environment  # noqa: E402
from tests.harness_cli import MODEL, Workspace  # noqa: E402
from tests.harness_redaction import SHAPES  # noqa: E402

CATEGORY = "secrets on disk"
CUT_TOKEN = "hf_CutByAPipeRead0123456789abcdef"  # printed so that a 64 KB pipe read ends inside it
MARKS = {**{name: piece for name, (_, piece, _) in SHAPES.items()}, "token across a 64 KB read": "PipeRead01"}
ENV = {"WANDB_KEY": sec.SECRETS["WANDB_KEY"], "DATABASE_URL": sec.SECRETS["DATABASE_URL"]}


def model_script() -> list[dict[str, Any]]:
    """Print each shape, print them all 200 times (spilled), cut a token at 64 KB, write two files, answer."""
    texts = [text for text, _, _ in SHAPES.values()]
    line = f"'x' * 65520 + ' {CUT_TOKEN} ' + 'y' * 70000 + chr(10)"
    cut = f'python3 -c "import sys; sys.stdout.write({line})"'
    calls = [("bash", {"command": f"printf '%s\\n' {shlex.quote(text)}"}) for text in texts]
    printed = " ".join(shlex.quote(text) for text in texts)
    calls += [
        ("bash", {"command": f"for i in $(seq 1 200); do printf '%s\\n' {printed}; done"}),
        ("bash", {"command": cut}),
        ("bash", {"command": "echo $WANDB_KEY $DATABASE_URL; env | grep -i -e key -e url"}),
        ("bash", {"command": f"{sec.SCRIPT} && {sec.WRITE_LITERAL}"}),
    ]
    return [script.tool_calls(calls), script.text("Here they are:\n" + "\n".join(texts))]


def stored_files(workspace: Workspace) -> dict[str, bytes]:
    """Every file under ML_INTERN_HOME (database rows decompressed) and the workdir's outputs/."""
    home, found = workspace.ml_intern_home, {}
    for path in [*home.rglob("*"), *(workspace.workdir / "outputs").rglob("*")]:
        if path.is_file():
            found[str(path.relative_to(workspace.root))] = path.read_bytes()
    found["database rows"] = b"\n".join(sec.stored_values(workspace.database))
    return found


def where(files: dict[str, bytes], mark: str) -> list[str]:
    return sorted(name for name, data in files.items() if mark.encode() in data)


def cli_rows(root: Path) -> list[Row]:
    with ScriptedLLMServer(*model_script()) as server:
        workspace = Workspace.create(root, server.url)
        workspace.env.update(ENV)
        done = workspace.run(
            "-m", MODEL, "--approval", "auto", "--output-format", "stream-json", "print them"
        )
    files = stored_files(workspace)
    rows = []
    for name, mark in {**MARKS, **{n: sec.fragment(v) for n, v in ENV.items()}}.items():
        found = where(files, mark) + (["stdout/stderr"] if mark in done.stdout + done.stderr else [])
        observed = f"exit {done.returncode}; found in: {', '.join(found) or 'nothing'}"
        rows.append(Row(f"model prints {name}", "no copy stored or shown", observed, not found, CATEGORY))
    return rows + written_files(workspace)


def written_files(workspace: Workspace) -> list[Row]:
    """What the tool calls wrote: as the model wrote it (`$HF_TOKEN` kept, the literal password too)."""
    read = {n: (workspace.workdir / n).read_text() if (workspace.workdir / n).exists() else "(missing)"
            for n in ("call.sh", "app.conf")}  # fmt: skip
    kept = "Bearer $HF_TOKEN" in read["call.sh"]
    literal = read["app.conf"] == f"password={sec.LITERAL}\n"
    return [
        Row(
            "script with `Bearer $HF_TOKEN`",
            "runs with the reference",
            read["call.sh"].strip(),
            kept,
            CATEGORY,
        ),
        Row(
            "tool args holding a literal password",
            "run as written, stored redacted",
            f"app.conf: {read['app.conf'].strip()}",
            literal,
            CATEGORY,
        ),
    ]


async def mcp_files(sandbox: Sandbox) -> dict[str, bytes]:
    """Run the leaky MCP server: stderr and a spilled result carry every shape; the files it left."""
    from ml_intern.configs.loader import default_config
    from ml_intern.configs.schema import McpServer
    from ml_intern.services import build_services
    from tests.fakes.chat_model import ScriptedChatModel

    server = ROOT / "tests" / "fakes" / "mcp_stderr_server.py"
    config = default_config().model_dump()
    config["mcpServers"] = {
        "leaky": McpServer.model_validate({"command": sys.executable, "args": [str(server)]}).model_dump()
    }
    environ = {**os.environ, **home_environment(sandbox.home, sandbox.ml_intern_home)}
    services = build_services(
        model="vllm/scripted", workdir=sandbox.workdir, tool_names=None, stream=False, environ=environ,
        config=config, chat_model=ScriptedChatModel([]),
    )  # fmt: skip
    leak = "\n".join(text for text, _, _ in SHAPES.values()) + "\n"
    try:
        await services.start()
        await services.tools_by_name["complain"].ainvoke({"text": leak})
        await services.tools_by_name["dump"].ainvoke({"text": leak, "times": 200})
    finally:
        await services.aclose()
    home = sandbox.ml_intern_home
    return {str(p.relative_to(home)): p.read_bytes() for p in home.rglob("*") if p.is_file()}


def mcp_rows(root: Path) -> list[Row]:
    files = asyncio.run(mcp_files(Sandbox.under(root / "mcp")))
    found = sorted({name for mark in MARKS.values() for name in where(files, mark)})
    observed = f"{len(files)} files; a secret found in: {', '.join(found) or 'none'}"
    return [Row("MCP server stderr and a spilled MCP result", "no secret", observed, not found, CATEGORY)]


def scenarios(root: Path) -> list[Row]:
    """Every row of this area."""
    return cli_rows(root / "cli") + mcp_rows(root)
