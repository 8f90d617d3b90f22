"""The text of `hf_inspect_dataset`: status, splits with row counts, schema, sample rows, parquet files."""

from __future__ import annotations

import json
from typing import Any

from ml_intern.tools.datasets.audit import audit_sections
from ml_intern.tools.hub.client import repo_url
from ml_intern.tools.hub.file_text import human_size

MAX_VALUE_CHARS = 150
MAX_SPLIT_LINES = 20
MAX_CLASS_NAMES = 10
MAX_TYPE_CHARS = 120
VIEWER_FEATURES = ("viewer", "preview", "search", "filter", "statistics")


def status_section(valid: dict[str, Any] | None) -> str:
    """Which dataset-viewer features work for this dataset."""
    if valid is None:
        return "## Status\nunknown (is-valid failed)"
    working = [name for name in VIEWER_FEATURES if valid.get(name)]
    if not working:
        return "## Status\nNOT valid in the dataset viewer: it may fail to load; check its files and card."
    return f"## Status\nvalid ({', '.join(working)})"


def splits_section(splits: dict[str, Any], size: dict[str, Any] | None) -> str:
    """Each config/split with its row count (when /size knows it)."""
    rows = {
        (s["config"], s["split"]): s.get("num_rows") for s in (size or {}).get("size", {}).get("splits", [])
    }
    pairs = [(s["config"], s["split"]) for s in splits.get("splits", [])]
    lines = ["## Configs and splits"]
    for config, split in pairs[:MAX_SPLIT_LINES]:
        count = rows.get((config, split))
        lines.append(f"- {config}/{split}: {f'{count:,} rows' if count is not None else '? rows'}")
    if len(pairs) > MAX_SPLIT_LINES:
        lines.append(f"- ... {len(pairs) - MAX_SPLIT_LINES} more config/split pairs")
    if (size or {}).get("partial"):
        lines.append("(row counts are partial: the viewer processed only part of this dataset)")
    return "\n".join(lines)


def type_name(feature: Any) -> str:
    """A short readable type for a datasets feature (Value, ClassLabel, List, struct, Image, ...)."""
    if isinstance(feature, list):
        return f"list[{type_name(feature[0]) if feature else '?'}]"
    if not isinstance(feature, dict):
        return str(feature)
    kind = feature.get("_type")
    if kind == "Value":
        return str(feature.get("dtype"))
    if kind == "ClassLabel":
        names = feature.get("names") or []
        if len(names) <= MAX_CLASS_NAMES:
            return "ClassLabel(" + ", ".join(f"{i}={name}" for i, name in enumerate(names)) + ")"
        return f"ClassLabel({len(names)} classes: {', '.join(names[:MAX_CLASS_NAMES])}, ...)"
    if kind in ("Sequence", "List", "LargeList"):
        return f"list[{type_name(feature.get('feature'))}]"
    if kind is None:  # a struct: {field: feature}
        inner = ", ".join(f"{key}: {type_name(value)}" for key, value in feature.items())
        text = "{" + inner + "}"
        return text if len(text) <= MAX_TYPE_CHARS else text[: MAX_TYPE_CHARS - 4] + "...}"
    return str(kind)


def features_of(found: dict[str, Any]) -> dict[str, Any]:
    """Column name -> feature, from /info, else from /first-rows."""
    info = (found.get("info") or {}).get("dataset_info", {})
    if info.get("features"):
        return info["features"]
    return {f["name"]: f["type"] for f in (found.get("first-rows") or {}).get("features", [])}


def schema_section(features: dict[str, Any], config: str) -> str:
    if not features:
        return "## Schema\nunknown (info and first-rows failed)"
    lines = [f"## Schema ({config})"] + [f"- {name}: {type_name(f)}" for name, f in features.items()]
    return "\n".join(lines)


def short_value(value: Any) -> str:
    """A cell as compact text, cut to MAX_VALUE_CHARS."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = text.replace("\n", "\\n")
    return text if len(text) <= MAX_VALUE_CHARS else text[:MAX_VALUE_CHARS] + f"... [{len(text)} chars]"


def samples_section(rows: list[dict[str, Any]], config: str, split: str, count: int) -> str:
    lines = [f"## Sample rows ({config}/{split}, {min(count, len(rows))} of the first {len(rows)})"]
    for number, row in enumerate(rows[:count], 1):
        lines.append(f"Row {number}:")
        lines += [f"- {key}: {short_value(value)}" for key, value in row.items()]
    return "\n".join(lines) if rows else lines[0] + "\nno rows returned"


def parquet_section(parquet: dict[str, Any] | None) -> str | None:
    """Parquet files per config/split with their total size."""
    files = (parquet or {}).get("parquet_files", [])
    if not files:
        return None
    groups: dict[str, list[int]] = {}
    for item in files:
        groups.setdefault(f"{item.get('config')}/{item.get('split')}", []).append(int(item.get("size") or 0))
    lines = ["## Parquet files"]
    for key, sizes in list(groups.items())[:MAX_SPLIT_LINES]:
        lines.append(f"- {key}: {len(sizes)} file(s), {human_size(sum(sizes))}")
    if len(groups) > MAX_SPLIT_LINES:
        lines.append(f"- ... {len(groups) - MAX_SPLIT_LINES} more")
    url = files[0].get("url", "")
    return "\n".join(lines) + (f"\nexample URL: {url}" if url else "")


def build_report(
    dataset: str,
    endpoint: str,
    config: str,
    split: str,
    found: dict[str, Any],
    sample: int,
    warnings: list[str],
) -> str:
    """The whole audit as sections of markdown-ish text."""
    features = features_of(found)
    rows = [item.get("row", {}) for item in (found.get("first-rows") or {}).get("rows", [])]
    sections = [
        f"# {dataset} {repo_url(endpoint, dataset, 'dataset')}",
        status_section(found.get("is-valid")),
        splits_section(found["splits"], found.get("size")),
        schema_section(features, config),
        samples_section(rows, config, split, sample),
        *audit_sections(features, rows, f"{config}/{split}"),
        parquet_section(found.get("parquet")),
    ]
    if warnings:
        sections.append("## Warnings\n" + "\n".join(f"- {warning}" for warning in warnings))
    return "\n\n".join(section for section in sections if section)
