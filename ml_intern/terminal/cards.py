"""Approval cards: what a call would do, shown as inert text, and what the user's answer means."""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.text import Text

from ml_intern.graph.budget import USAGE_CALL
from ml_intern.terminal.text import dim, inert, short_args

PREVIEW_LINES = 15  # lines of a command, script or file shown in an approval card
SCRIPT_LINES = 400  # lines of an hf_jobs script: a paid job's whole script is worth reading before approving
APPROVAL_CHOICES = (
    "y approve · n reject · yolo approve this and all the rest of the session · or type feedback to reject"
    " with it"
)
APPROVE, REJECT, APPROVE_ALL = ("y", "yes"), ("n", "no"), ("yolo", "a", "all")  # the answers, as the original


def preview(text: str, prefix: str = "    ", limit: int = PREVIEW_LINES) -> Text:
    """The first `limit` lines of `text`, indented, saying how many more there are."""
    lines = inert(text).rstrip("\n").splitlines() or [""]
    shown = "\n".join(prefix + line for line in lines[:limit])
    more = f"\n{prefix}… (+{len(lines) - limit} lines)" if len(lines) > limit else ""
    return Text(shown + more)


def names(value: Any) -> str:
    """The names in an env or secrets argument (a dict or a list), never the values."""
    keys = value.keys() if isinstance(value, dict) else value if isinstance(value, list) else []
    return ", ".join(inert(str(key)) for key in keys)


def job_details(args: dict[str, Any]) -> list[RenderableType]:
    """An hf_jobs run: image, hardware, timeout, schedule, dependencies, env and secret names, then the whole
    script (up to SCRIPT_LINES) or command."""
    keys = ("image", "hardware_flavor", "timeout", "schedule", "namespace")
    settings = [f"{key}: {inert(args[key])}" for key in keys if args.get(key)]
    details: list[RenderableType] = [dim("  " + " · ".join(settings))] if settings else []
    for key in ("dependencies", "script_args", "env", "secrets"):
        listed = names(args.get(key)) if key in ("env", "secrets") else names(args.get(key) or [])
        if listed:
            details.append(dim(f"  {key}: {listed}"))
    payload = args.get("script") or args.get("command") or ""
    payload = " ".join(map(str, payload)) if isinstance(payload, list) else str(payload)
    payload = bounded(payload)
    if payload:
        label, limit = ("  script:", SCRIPT_LINES) if args.get("script") else ("  command:", PREVIEW_LINES)
        details += [dim(label), preview(payload, limit=limit)]
    return details


def bounded(text: str, line_chars: int = 300, total: int = 40_000) -> str:
    """`text` with long lines cut and at most `total` characters of it, saying what was left out."""
    kept, size = [], 0
    for line in text.splitlines():
        if size >= total:
            kept.append(f"… (+{len(text) - size} more chars)")
            break
        cut = line[:line_chars]
        kept.append(cut if len(line) <= line_chars else f"{cut} … (+{len(line) - line_chars} chars)")
        size += len(line) + 1
    return "\n".join(kept)


def file_details(args: dict[str, Any]) -> list[RenderableType]:
    """A write or edit: the path as the model gave it, then the new content or text."""
    label, key = ("content", "content") if "content" in args else ("new text", "new_str")
    path = dim(f"  path: {inert(str(args.get('path', '')))}")
    return [path, dim(f"  {label}:"), preview(str(args.get(key) or ""))]


def our_args(name: str, args: dict[str, Any]) -> dict[str, Any]:
    """`args` under our names: the original's aliases the model may have used (`flavor`) renamed, as the tool
    itself reads them."""
    from ml_intern.tools.checked import renamed
    from ml_intern.tools.registry import tool_facts

    return renamed(args, tool_facts(name))


def call_details(call: dict[str, Any]) -> list[RenderableType]:
    """What matters about a call before approving it: the command, script or content."""
    name = str(call.get("name"))
    args = our_args(name, call.get("args") or {})
    if name == "bash":
        return [dim("  command:"), preview(str(args.get("command", "")), "    $ ")]
    if name == "hf_jobs":
        return job_details(args)
    if name in ("write", "edit"):
        return file_details(args)
    if name == "hf_repo_files" and args.get("content"):
        return [dim("  content:"), preview(str(args["content"]))]
    return [dim("  " + inert(short_args(args, 300)))]


def usage_check_card(call: dict[str, Any]) -> RenderableType:
    """The usage check (a synthetic call): what the thread spent, and when it asks next."""
    args = call.get("args") or {}
    head = Text.assemble(("usage check", "bold yellow"), ": ", inert(str(call.get("reason") or "")))
    hint = f"  y goes on (asked again at ${float(args.get('next_check_usd') or 0):.2f}) · n ends the turn"
    return Group(head, dim(hint))


def approval_card(call: dict[str, Any], index: int, total: int) -> RenderableType:
    """One pending call: tool, why it needs approval, and its details."""
    if call.get("name") == USAGE_CALL:
        return usage_check_card(call)
    count = f" {index}/{total}" if total > 1 else ""
    name = inert(str(call.get("name")))
    head = Text.assemble(("approval needed", "bold yellow"), count, ": ", (name, "bold"))
    return Group(head, Text(f"  {inert(call.get('reason') or '')}"), *call_details(call))


def approval_decision(answer: str) -> tuple[dict[str, Any], bool]:
    """The decision an answer means, and whether it approves every call from now on ("yolo", "a")."""
    word = answer.strip().lower()
    if word in APPROVE or word in APPROVE_ALL:
        return {"approved": True, "feedback": ""}, word in APPROVE_ALL
    return {"approved": False, "feedback": "" if word in REJECT else answer.strip()}, False
