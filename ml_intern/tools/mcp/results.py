"""MCP tool results as bounded text: text kept, images and files as placeholders, long output spilled."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

from ml_intern.secrets import redact
from ml_intern.tools.base import MAX_RESULT_CHARS, clip


def base64_size(data: str) -> int:
    """Bytes encoded by a base64 string, without decoding it."""
    return len(data) * 3 // 4 - data[-2:].count("=") if data else 0


def block_text(block: Any) -> str:
    """One LangChain content block (as the MCP adapter makes them) as text."""
    if isinstance(block, str):
        return block
    if not isinstance(block, dict):
        return str(block)
    kind, mime = block.get("type"), block.get("mime_type") or "unknown type"
    if kind == "text":
        return str(block.get("text", ""))
    if kind in ("image", "file"):
        if block.get("base64"):
            return f"[{kind}: {mime}, {base64_size(block['base64']):,} bytes, not shown]"
        return f"[{kind}: {mime} at {block.get('url', 'an unknown location')}]"
    return f"[{kind or 'unknown'} content, not shown]"


def result_text(content: Any, artifact: Any = None) -> str:
    """The text of a tool result: its content blocks, else its structured content, else a placeholder."""
    blocks = content if isinstance(content, list) else [content]
    text = "\n".join(block_text(block) for block in blocks if block not in (None, ""))
    structured = artifact.get("structured_content") if isinstance(artifact, dict) else None
    if not text and structured is not None:
        text = json.dumps(structured, ensure_ascii=False, indent=1)
    return text or "(the tool returned no output)"


def bounded(text: str, tool: str, spill_dir: Path) -> str:
    """`text` within MAX_RESULT_CHARS, redacted; the full text of a longer result goes to a file the model can
    read (redacted before it is cut, so no secret is split by the cut)."""
    text = redact(text)
    if len(text) <= MAX_RESULT_CHARS:
        return text
    spill_dir.mkdir(parents=True, exist_ok=True)
    path = spill_dir / f"mcp-{tool}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}.txt"
    path.write_text(text, encoding="utf-8")
    note = f"full result saved to {path}; read it with offset/limit"
    return clip(text, MAX_RESULT_CHARS - len(note) - 100, note)  # the note must fit under the cap too
