"""Approval cards: what a call would do, shown as inert text, and what the user's answer means."""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.text import Text

from ml_intern.terminal.text import dim, inert, short_args

PREVIEW_LINES = 15  # lines of a command, script or file shown in an approval card
APPROVAL_CHOICES = (
    "y approve · n reject · yolo approve this and all the rest of the session · or type feedback to reject"
    " with it"
)
APPROVE, REJECT, APPROVE_ALL = ("y", "yes"), ("n", "no"), ("yolo", "a", "all")  # the answers, as the original


def preview(text: str, prefix: str = "    ") -> Text:
    """The first lines of `text`, indented, saying how many more there are."""
    lines = inert(text).rstrip("\n").splitlines() or [""]
    shown = "\n".join(prefix + line for line in lines[:PREVIEW_LINES])
    more = f"\n{prefix}… (+{len(lines) - PREVIEW_LINES} lines)" if len(lines) > PREVIEW_LINES else ""
    return Text(shown + more)


def job_details(args: dict[str, Any]) -> list[RenderableType]:
    """An hf_jobs run: image, hardware, timeout, schedule, then the script or command."""
    keys = ("image", "hardware_flavor", "timeout", "schedule")
    settings = [f"{key}: {inert(args[key])}" for key in keys if args.get(key)]
    details: list[RenderableType] = [dim("  " + " · ".join(settings))] if settings else []
    payload = args.get("script") or args.get("command") or ""
    payload = " ".join(map(str, payload)) if isinstance(payload, list) else str(payload)
    if payload:
        details += [dim("  script:" if args.get("script") else "  command:"), preview(payload)]
    return details


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


def approval_card(call: dict[str, Any], index: int, total: int) -> RenderableType:
    """One pending call: tool, why it needs approval, and its details."""
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
