"""What the first rows of a split reveal: chat columns, label distributions, missing values, duplicates."""

from __future__ import annotations

import json
import math
import statistics
from collections import Counter
from typing import Any

MAX_LABEL_VALUES = 10  # more distinct values than this: not a label column
MAX_LABEL_CHARS = 40  # longer strings are text, not labels
SHOWN_LABEL_VALUES = 8
IMBALANCE_RATIO = 5
TOOL_ROLES = {"tool", "function", "ipython"}


def as_messages(value: Any) -> list[dict[str, Any]] | None:
    """A list of {role, content} messages (possibly JSON-encoded), else None."""
    if isinstance(value, str) and value.lstrip().startswith("["):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    if isinstance(value, list) and value and all(isinstance(m, dict) and "role" in m for m in value):
        return value
    return None


def message_columns(rows: list[dict[str, Any]]) -> list[str]:
    """Columns whose non-empty values are all chat message lists."""
    columns = []
    for name in rows[0] if rows else []:
        values = [row.get(name) for row in rows if row.get(name) not in (None, "", [])]
        if values and all(as_messages(value) is not None for value in values):
            columns.append(name)
    return columns


def chat_section(column: str, rows: list[dict[str, Any]]) -> str:
    """Roles, turns, tool use and message keys of one chat column."""
    conversations = [m for m in (as_messages(row.get(column)) for row in rows) if m]
    roles = Counter(str(message.get("role")) for messages in conversations for message in messages)
    keys = sorted({key for messages in conversations for message in messages for key in message})
    turns = [len(messages) for messages in conversations]
    with_tools = sum(1 for messages in conversations if any(uses_tools(message) for message in messages))
    first = Counter(str(messages[0].get("role")) for messages in conversations).most_common(1)[0]
    last = Counter(str(messages[-1].get("role")) for messages in conversations).most_common(1)[0]
    count = len(conversations)
    lines = [
        f"## Chat format: {column} ({count} conversations in the first rows)",
        "- roles: " + ", ".join(f"{role} {n}" for role, n in roles.most_common()),
        f"- messages each: min {min(turns)}, median {statistics.median(turns):g}, max {max(turns)}",
        f"- first message mostly {first[0]} ({first[1]}/{count}); last mostly {last[0]} ({last[1]}/{count})",
        f"- tool calls: {f'in {with_tools}/{count} conversations' if with_tools else 'none seen'}",
        f"- message keys: {', '.join(keys)}",
    ]
    return "\n".join(lines)


def uses_tools(message: dict[str, Any]) -> bool:
    return (
        bool(message.get("tool_calls") or message.get("function_call")) or message.get("role") in TOOL_ROLES
    )


def class_names(feature: Any) -> list[str] | None:
    if isinstance(feature, dict) and feature.get("_type") == "ClassLabel":
        return list(feature.get("names") or [])
    return None


def is_label_like(name: str, feature: Any, rows: list[dict[str, Any]]) -> bool:
    """ClassLabel and bool columns, and scalar columns with few short repeated values."""
    if class_names(feature) is not None:
        return True
    values = [row.get(name) for row in rows if row.get(name) is not None]
    if not values or not all(isinstance(value, (str, int, bool)) for value in values):
        return False
    if all(isinstance(value, bool) for value in values):
        return True
    distinct = set(values)
    short = all(len(value) <= MAX_LABEL_CHARS for value in distinct if isinstance(value, str))
    return short and len(distinct) <= MAX_LABEL_VALUES and len(distinct) < len(values)


def label_line(name: str, feature: Any, rows: list[dict[str, Any]]) -> str:
    """'- label: pos 60 (60%), neg 40 (40%)', with notes on imbalance and single values."""
    names = class_names(feature)
    values = [row.get(name) for row in rows if row.get(name) is not None]

    def shown(value: Any) -> str:
        if names is not None and isinstance(value, int):
            return names[value] if 0 <= value < len(names) else f"(no label {value})"
        return str(value)

    counts = Counter(shown(value) for value in values).most_common()
    parts = [f"{value} {n} ({n / len(values):.0%})" for value, n in counts[:SHOWN_LABEL_VALUES]]
    more = f", +{len(counts) - SHOWN_LABEL_VALUES} more" if len(counts) > SHOWN_LABEL_VALUES else ""
    line = f"- {name}: " + ", ".join(parts) + more
    if len(counts) == 1:
        line += "  [a single value in these rows: the split may be sorted; check before training]"
    elif counts[0][1] >= IMBALANCE_RATIO * counts[-1][1]:
        line += "  [imbalanced]"
    if names is not None and len(counts) < len(names):
        missing = [n for n in names if n not in dict(counts)]
        line += f"  [unseen classes: {', '.join(missing[:SHOWN_LABEL_VALUES])}]"
    return line


def is_missing(value: Any) -> str | None:
    """'null' or 'empty' when a cell has no data."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "null"
    if isinstance(value, (str, list, dict)) and not (value.strip() if isinstance(value, str) else value):
        return "empty"
    return None


def missing_section(rows: list[dict[str, Any]], scope: str) -> str:
    """Null and empty cells per column, and duplicated rows, in the sampled rows."""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    lines = []
    for column in columns:
        kinds = Counter(kind for row in rows if (kind := is_missing(row.get(column))))
        if kinds:
            share = sum(kinds.values()) / len(rows)
            lines.append(
                f"- {column}: " + ", ".join(f"{n} {kind}" for kind, n in kinds.items()) + f" ({share:.0%})"
            )
    serialised = Counter(json.dumps(row, sort_keys=True, default=str) for row in rows)
    duplicates = sum(n - 1 for n in serialised.values() if n > 1)
    header = f"## Missing values (first {len(rows)} rows of {scope})"
    body = lines or ["- none"]
    tail = [f"- duplicated rows: {duplicates}"] if duplicates else []
    return "\n".join([header, *body, *tail])


def audit_sections(features: dict[str, Any], rows: list[dict[str, Any]], scope: str) -> list[str]:
    """Chat-format, label-distribution and missing-value sections for the sampled rows."""
    if not rows:
        return []
    chats = message_columns(rows)
    sections = [chat_section(column, rows) for column in chats]
    labels = [name for name in rows[0] if name not in chats and is_label_like(name, features.get(name), rows)]
    if labels:
        header = f"## Label distributions (first {len(rows)} rows of {scope})"
        sections.append("\n".join([header] + [label_line(name, features.get(name), rows) for name in labels]))
    sections.append(missing_section(rows, scope))
    return sections
