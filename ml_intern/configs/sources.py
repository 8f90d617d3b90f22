"""Where the config comes from: `.env` files (project root, then the working directory) and the user's file,
ours or, failing that, the original ml-intern's."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

# Besides ML_INTERN_* (but ML_INTERN_HOME): where the user config is found, and what every program we start
# (MCP servers, unconfined bash, git) loads or runs before its own code.
IGNORED_FROM_DOTENV = {"XDG_CONFIG_HOME", "HOME", "PATH", "LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT", "ENV"}
IGNORED_FROM_DOTENV |= {"PYTHONPATH", "PYTHONSTARTUP", "PYTHONHOME", "BASH_ENV", "GIT_DIR", "NODE_OPTIONS"}
ORIGINAL_CONFIG_NAME = "cli_agent_config.json"  # the original's user file, in ~/.config/ml-intern/
ORIGINAL_CONFIG_VARIABLE = "ML_INTERN_CLI_CONFIG"  # the original's variable naming it


class ConfigError(Exception):
    """A config problem as one line naming the file (and key); the CLI prints it and exits 2."""

    def __init__(self, message: str) -> None:
        super().__init__(message.replace("\n", " "))


def project_root(cwd: Path) -> Path | None:
    """The git top-level of `cwd` (the nearest directory holding `.git`), or None outside a repository."""
    for directory in (cwd, *cwd.parents):
        if (directory / ".git").exists():
            return directory
    return None


def dotenv_paths(cwd: Path) -> list[Path]:
    """The `.env` files to read, first wins: the project root's, then the working directory's."""
    root = project_root(cwd)
    candidates = [root / ".env"] if root is not None and root != cwd else []
    return [path for path in [*candidates, cwd / ".env"] if path.is_file()]


def read_dotenv(cwd: Path, environ: Mapping[str, str]) -> tuple[dict[str, str], list[Path]]:
    """The environment plus `.env` values for keys it does not set (project root first, then `cwd`, as the
    original's `override=False` loads), and the files read. Keys that steer ml-intern itself or the
    programs it starts are not taken from `.env` (see `dotenv_ignored`)."""
    paths = dotenv_paths(cwd)
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
    directory must not pick the config, the bwrap binary or code the next run loads."""
    return key in IGNORED_FROM_DOTENV or (key.startswith("ML_INTERN_") and key != "ML_INTERN_HOME")


def dotenv_warnings(cwd: Path, environ: Mapping[str, str]) -> list[str]:
    """One line per `.env` key that was ignored and is not already set in the environment."""
    keys = [key for path in dotenv_paths(cwd) for key in dotenv_file(path)]
    ignored = dict.fromkeys(key for key in keys if dotenv_ignored(key) and key not in environ)
    return [f"ignored {key} from .env: set it in your shell or config" for key in ignored]


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
