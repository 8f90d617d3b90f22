"""Where the config comes from: `.env` files (project root, then the working directory) and the user's file,
ours or, failing that, the original ml-intern's."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

# Besides ML_INTERN_* (but ML_INTERN_HOME): where the user config is found, and what every program we start
# (MCP servers, unconfined bash, git) loads or runs before its own code.
IGNORED_FROM_DOTENV = {"XDG_CONFIG_HOME", "HOME", "PATH", "LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT", "ENV"}
IGNORED_FROM_DOTENV |= {"PYTHONPATH", "PYTHONSTARTUP", "PYTHONHOME", "BASH_ENV", "GIT_DIR", "NODE_OPTIONS"}
# Where a credential is sent or read from: a planted `.env` must not send the HF token or a provider key to
# its own host (the router, the Hub and its MCP server, litellm's `*_API_BASE`), nor swap the token.
IGNORED_FROM_DOTENV |= {"HF_ENDPOINT", "HF_ROUTER_URL", "HF_DATASETS_SERVER_URL", "HF_HOME", "HF_TOKEN_PATH"}
# Where notifications go and with which token (ML_INTERN_SLACK_* falls under the ML_INTERN_ rule): a project
# must not receive the user's threads at its own webhook or channel.
IGNORED_FROM_DOTENV |= {"SLACK_WEBHOOK_URL", "SLACK_BOT_TOKEN", "SLACK_CHANNEL_ID", "SLACK_CHANNEL"}
ENDPOINT_SUFFIXES = ("_BASE_URL", "_API_BASE", "_BASE", "_ENDPOINT", "_ENDPOINT_URL", "_API_URL")
ORIGINAL_CONFIG_NAME = "cli_agent_config.json"  # the original's user file, in ~/.config/ml-intern/
ORIGINAL_CONFIG_VARIABLE = "ML_INTERN_CLI_CONFIG"  # the original's variable naming it


class ConfigError(Exception):
    """A config problem as one line naming the file (and key); the CLI prints it and exits 2."""

    def __init__(self, message: str) -> None:
        super().__init__(message.replace("\n", " "))


def project_root(cwd: Path, environ: Mapping[str, str], owner: int | None = None) -> Path | None:
    """The git top-level of `cwd`: the nearest directory holding a `.git` owned by `owner` (the current
    user), looking no higher than $HOME when `cwd` is under it and never across a filesystem boundary (a
    `/tmp/.git` someone else planted is not our project); None outside a repository."""
    owner = os.geteuid() if owner is None else owner
    home, cwd = Path(environ.get("HOME") or Path.home()).resolve(), cwd.resolve()
    try:
        device = cwd.stat().st_dev
        for directory in (cwd, *cwd.parents):
            if directory.stat().st_dev != device:
                return None
            if owned(directory / ".git", owner):
                return directory
            if directory == home:
                return None
    except OSError:
        return None
    return None


def owned(path: Path, owner: int) -> bool:
    """Whether `path` exists and belongs to `owner` (a symlink counts as its own owner's)."""
    try:
        return path.lstat().st_uid == owner
    except OSError:
        return False


def dotenv_paths(
    cwd: Path, environ: Mapping[str, str], owner: int | None = None
) -> tuple[list[Path], list[Path]]:
    """The `.env` files to read, first wins (the project root's, then the working directory's), and those
    skipped because another user owns them."""
    owner = os.geteuid() if owner is None else owner
    root = project_root(cwd, environ, owner)
    candidates = [root / ".env"] if root is not None and root != cwd.resolve() else []
    found = [path for path in [*candidates, cwd / ".env"] if path.is_file()]
    return [path for path in found if owned(path, owner)], [path for path in found if not owned(path, owner)]


def read_dotenv(
    cwd: Path, environ: Mapping[str, str], owner: int | None = None
) -> tuple[dict[str, str], list[Path]]:
    """The environment plus `.env` values for keys it does not set (project root first, then `cwd`, as the
    original's `override=False` loads), and the files read. Keys that steer ml-intern itself, the programs
    it starts or where credentials go are not taken from `.env` (see `dotenv_ignored`), nor files another
    user (`owner`: the current user by default) owns."""
    paths = dotenv_paths(cwd, environ, owner)[0]
    from_files: dict[str, str] = {}
    for path in reversed(paths):  # the first file wins: apply it last
        from_files.update({k: v for k, v in dotenv_file(path).items() if not dotenv_ignored(k)})
    return {**from_files, **environ}, paths


def dotenv_file(path: Path) -> dict[str, str]:
    """The set values of a `.env` file."""
    from dotenv import dotenv_values

    return {key: value for key, value in dotenv_values(path).items() if value is not None}


def dotenv_ignored(key: str) -> bool:
    """Whether `.env` may not set `key`: a file anyone (a cloned repo, a command) can put in the working
    directory must not pick the config, the bwrap binary, code the next run loads, or the host a token or
    API key is sent to."""
    if key in IGNORED_FROM_DOTENV or key.upper().endswith(ENDPOINT_SUFFIXES):
        return True
    return key.startswith("ML_INTERN_") and key != "ML_INTERN_HOME"


def dotenv_warnings(cwd: Path, environ: Mapping[str, str], owner: int | None = None) -> list[str]:
    """One line per `.env` key that was ignored and is not already set in the environment, and per `.env`
    skipped because another user owns it."""
    paths, foreign = dotenv_paths(cwd, environ, owner)
    keys = [key for path in paths for key in dotenv_file(path)]
    ignored = dict.fromkeys(key for key in keys if dotenv_ignored(key) and key not in environ)
    lines = [f"ignored {path}: another user owns it" for path in foreign]
    return lines + [f"ignored {key} from .env: set it in your shell or config" for key in ignored]


def user_config_path(cwd: Path, env: Mapping[str, str]) -> tuple[Path | None, list[str]]:
    """The user's config file and a notice about the original ml-intern's: `$ML_INTERN_CONFIG` (must
    exist), else the XDG default if it exists, else the original's `$ML_INTERN_CLI_CONFIG` or
    `~/.config/ml-intern/cli_agent_config.json`; (None, []) when there is none."""
    home = Path(env.get("HOME") or Path.home())
    base = Path(env["XDG_CONFIG_HOME"]) if env.get("XDG_CONFIG_HOME") else home / ".config"
    ours = named_file(cwd, home, env, "ML_INTERN_CONFIG")
    if ours is None and (base / "ml-intern" / "config.json").exists():
        ours = base / "ml-intern" / "config.json"
    original = original_config_path(cwd, home, env, required=ours is None)
    if ours is not None:
        ignored = [f"ignoring the original ml-intern's config {original}: {ours} is read"] if original else []
        return ours, ignored
    if original is None:
        return None, []
    where = f"$ML_INTERN_CONFIG or {base / 'ml-intern' / 'config.json'}"
    return original, [f"reading the original ml-intern's config {original}; ml-intern now reads {where}"]


def original_config_path(cwd: Path, home: Path, env: Mapping[str, str], required: bool) -> Path | None:
    """The original ml-intern's user config: `$ML_INTERN_CLI_CONFIG` (must exist when `required`), else
    `~/.config/ml-intern/cli_agent_config.json` if it exists."""
    try:
        named = named_file(cwd, home, env, ORIGINAL_CONFIG_VARIABLE)
    except ConfigError:
        if required:
            raise
        return None
    default = home / ".config" / "ml-intern" / ORIGINAL_CONFIG_NAME
    return named or (default if default.is_file() else None)


def named_file(cwd: Path, home: Path, env: Mapping[str, str], variable: str) -> Path | None:
    """The file `$variable` names (`~/` expanded, relative to `cwd`); None when unset; it must exist."""
    explicit = env.get(variable)
    if not explicit:
        return None
    path = cwd / (home / explicit[2:] if explicit.startswith("~/") else Path(explicit))
    if not path.is_file():
        raise ConfigError(f"config error in {path}: no such file (named by {variable})")
    return path
