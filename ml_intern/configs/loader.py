"""Load the agent config: packaged defaults, the user's file, `.env`, `${VAR}` substitution, validation."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ml_intern.configs.explain import describe_error, suggest_key
from ml_intern.configs.mcp_server import ORIGINAL_MCP_SERVER_KEYS, without_unused_hf_server
from ml_intern.configs.messaging import messaging_problem, with_slack_defaults
from ml_intern.configs.schema import ORIGINAL_TOP_LEVEL_KEYS, PACKAGED_CONFIG, AgentConfig
from ml_intern.configs.sources import (  # noqa: F401 - read_dotenv and dotenv_* are imported from here too
    ConfigError,
    dotenv_file,
    dotenv_ignored,
    dotenv_warnings,
    read_dotenv,
    user_config_path,
)

# Lists whose packaged entries are safety defaults: a user's list adds to them, unless the flag (a key of
# the same section) is true; then it replaces them.
SAFETY_LISTS = {("bash", "approval_patterns"): "replace_approval_patterns", ("bash", "hidden_paths"): None}
ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
Loc = tuple[str | int, ...]


@dataclass
class LoadedConfig:
    """The validated config and what was learnt on the way."""

    config: AgentConfig
    warnings: list[str] = field(default_factory=list)  # ignored original ml-intern keys, to report once
    env: dict[str, str] = field(default_factory=dict)  # the environment plus `.env` values for unset keys
    sources: list[Path] = field(default_factory=list)  # files read, in order (.env, packaged, user)


@dataclass
class Layer:
    """One config file's raw content, kept to say which file an error comes from."""

    path: Path
    data: dict[str, Any]


def load_config(cwd: Path, environ: Mapping[str, str], owner: int | None = None) -> LoadedConfig:
    """Merge the packaged config with the user's, substitute `${VAR}`s and validate; raise ConfigError.
    `.env` files count only when `owner` (the current user by default) owns them."""
    env, sources = read_dotenv(cwd, environ, owner)
    layers = [Layer(PACKAGED_CONFIG, read_json_object(PACKAGED_CONFIG))]
    user_path, notices = user_config_path(cwd, env)
    if user_path is not None:
        layers.append(Layer(user_path, read_json_object(user_path)))
    merged: dict[str, Any] = {}
    for layer in layers:
        merged = deep_merge(merged, layer.data)
    merged = without_unused_hf_server(copy.deepcopy(merged), env)  # the copy: layers stay as read
    extend_safety_lists(merged, layers[0].data)
    warnings = notices + dotenv_warnings(cwd, environ, owner) + drop_original_keys(merged, layers)
    merged = with_slack_defaults(merged, env)
    config = validate(substitute_env(merged, env, (), layers), layers)
    if (problem := messaging_problem(config.messaging)) is not None:
        loc, why = problem
        raise ConfigError(f"config error in {file_defining(loc, layers)}: {dotted(loc)}: {why}")
    return LoadedConfig(config, warnings, env, sources + [layer.path for layer in layers])


def default_config() -> AgentConfig:
    """The packaged defaults alone: no user file, no environment."""
    data = read_json_object(PACKAGED_CONFIG)
    return validate(without_unused_hf_server(copy.deepcopy(data), {}), [Layer(PACKAGED_CONFIG, data)])


def read_json_object(path: Path) -> dict[str, Any]:
    """Parse a config file that must hold a JSON object; an empty file counts as `{}`."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config error in {path}: cannot read it ({exc})") from None
    try:
        data = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as exc:
        raise ConfigError(f"config error in {path}: invalid JSON at line {exc.lineno}: {exc.msg}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config error in {path}: expected a JSON object at the top level")
    return data


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Merge nested objects key by key; any other value (lists included) in `override` replaces."""
    merged = dict(base)
    for key, value in override.items():
        current = merged.get(key)
        both_dicts = isinstance(current, dict) and isinstance(value, dict)
        merged[key] = deep_merge(current, value) if both_dicts else value
    return merged


def extend_safety_lists(merged: dict[str, Any], packaged: dict[str, Any]) -> None:
    """Add the packaged entries of each of SAFETY_LISTS after the user's own (in place: the user's keep
    their indices, so an error still names the entry in their file)."""
    for (section, key), replace_flag in SAFETY_LISTS.items():
        part, defaults = merged.get(section), packaged.get(section, {}).get(key, [])
        if not isinstance(part, dict) or not isinstance(part.get(key), list):
            continue
        if replace_flag is None or part.get(replace_flag) is not True:
            part[key] = part[key] + [entry for entry in defaults if entry not in part[key]]


def drop_original_keys(data: dict[str, Any], layers: list[Layer]) -> list[str]:
    """Remove keys only the original ml-intern knows (returning warnings); raise on keys nobody knows."""
    try:
        AgentConfig.model_validate(data)
        return []
    except ValidationError as exc:
        unknown = [error["loc"] for error in exc.errors() if error["type"] == "extra_forbidden"]
    warnings = []
    for loc in unknown:
        if not is_original_key(loc):
            raise ConfigError(
                f"config error in {file_defining(loc, layers)}: {dotted(loc)}: "
                f"unknown key{suggest_key(str(loc[-1]))}"
            )
        warnings.append(
            f"{file_defining(loc, layers)}: ignoring {dotted(loc)} "
            "(an original ml-intern setting this version does not support)"
        )
    for loc in unknown:
        parent = data
        for part in loc[:-1]:
            parent = parent[part]
        del parent[loc[-1]]
    return warnings


def is_original_key(loc: Loc) -> bool:
    """Whether the original ml-intern accepts this key (its configs must load unchanged)."""
    if len(loc) == 1:
        return loc[0] in ORIGINAL_TOP_LEVEL_KEYS
    return len(loc) == 3 and loc[0] == "mcpServers" and loc[2] in ORIGINAL_MCP_SERVER_KEYS


def substitute_env(value: Any, env: Mapping[str, str], loc: Loc, layers: list[Layer]) -> Any:
    """Replace `${VAR}` and `${VAR:-default}` in every string value; an unset `${VAR}` is an error."""
    if isinstance(value, dict):
        return {key: substitute_env(item, env, (*loc, key), layers) for key, item in value.items()}
    if isinstance(value, list):
        return [substitute_env(item, env, (*loc, index), layers) for index, item in enumerate(value)]
    if not isinstance(value, str):
        return value

    def resolve(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if default is not None:
            return env.get(name) or default
        if name not in env:
            raise ConfigError(
                f"config error in {file_defining(loc, layers)}: {dotted(loc)}: environment "
                f"variable {name} is not set (set it, or write ${{{name}:-default}})"
            )
        return env[name]

    return ENV_REFERENCE.sub(resolve, value)


def validate(data: dict[str, Any], layers: list[Layer]) -> AgentConfig:
    """Build the AgentConfig, turning the first validation error into a one-line ConfigError."""
    try:
        return AgentConfig.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = error["loc"]
        where = f"{dotted(loc)}: " if loc else ""
        raise ConfigError(
            f"config error in {file_defining(loc, layers)}: {where}{describe_error(error)}"
        ) from None


def dotted(loc: Loc) -> str:
    """('mcpServers', 'hf', 'url') -> 'mcpServers.hf.url'; list indices as [i]."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def file_defining(loc: Loc, layers: list[Layer]) -> Path:
    """The file that set the value at `loc`: the one defining most of its path, the later one on a tie."""
    depths = [(defined_depth(layer.data, loc), index) for index, layer in enumerate(layers)]
    return layers[max(depths)[1]].path


def defined_depth(data: Any, loc: Loc) -> int:
    """How many leading parts of `loc` exist in `data`."""
    for depth, part in enumerate(loc):
        try:
            data = data[part] if isinstance(data, dict | list) else {}[part]
        except (KeyError, IndexError, TypeError):
            return depth
    return len(loc)
