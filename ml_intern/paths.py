"""Where the agent keeps its data: ML_INTERN_HOME, never the current directory; threads and checkpoints in
the SQLite file there, or in the Postgres database ML_INTERN_DATABASE_URL (or the config's `database_url`)
names."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from urllib.parse import SplitResult, parse_qsl, urlencode, urlsplit, urlunsplit

from ml_intern.errors import UserError
from ml_intern.secret_shapes import REDACTED

URL_VARIABLE = "ML_INTERN_DATABASE_URL"
POSTGRES_SCHEMES = ("postgresql", "postgres")
HIDDEN = REDACTED  # a password wherever a URL or a driver's message shows: as redact() shows any secret
BAD_PORT = "its port is not a number; an IPv6 host goes in brackets: postgresql://USER@[::1]:5432/DB"
CONNECT_TIMEOUT_S = 10  # a database host that does not answer: said at once, not after the OS's minutes


def home_dir(environ: Mapping[str, str]) -> Path:
    """`$ML_INTERN_HOME`, else `$XDG_DATA_HOME/ml-intern`, else `~/.local/share/ml-intern`."""
    if environ.get("ML_INTERN_HOME"):
        return Path(environ["ML_INTERN_HOME"]).expanduser()
    if environ.get("XDG_DATA_HOME"):
        return Path(environ["XDG_DATA_HOME"]).expanduser() / "ml-intern"
    return Path.home() / ".local" / "share" / "ml-intern"


def database_path(environ: Mapping[str, str]) -> Path:
    return home_dir(environ) / "checkpoints.sqlite"


def database_target(environ: Mapping[str, str], cwd: Path | None = None) -> Path | str:
    """The Postgres URL of `$ML_INTERN_DATABASE_URL`, else of the config's `database_url`, else the SQLite
    file in ML_INTERN_HOME. A URL's password is registered as a secret (redacted wherever it shows)."""
    url = environ.get(URL_VARIABLE, "").strip()
    if url:
        return checked_url(url, URL_VARIABLE)
    from ml_intern.configs.sources import ConfigError

    try:
        configured = configured_url(environ, cwd or Path.cwd())
    except ConfigError as exc:
        raise UserError(str(exc)) from None
    if configured:
        return checked_url(configured[0], f"database_url in {configured[1]}")
    return database_path(environ)


def configured_url(environ: Mapping[str, str], cwd: Path) -> tuple[str, Path] | None:
    """The user's config's `database_url` (`${VAR}` substituted) and the file, or None when it sets none.
    Read alone: the rest of the config is validated when a session starts."""
    from ml_intern.configs.loader import Layer, read_json_object, substitute_env
    from ml_intern.configs.sources import read_dotenv, user_config_path

    env, _ = read_dotenv(cwd, environ)
    path, _ = user_config_path(cwd, env)
    if path is None:
        return None
    data = read_json_object(path)
    value = data.get("database_url")
    if not isinstance(value, str) or not value.strip():
        return None  # unset, null, or a wrong type the full validation reports
    return substitute_env(value, env, ("database_url",), [Layer(path, data)]).strip(), path


def checked_url(url: str, source: str) -> str:
    """`url` when it is a postgresql:// URL (its password registered as a secret), else a UserError."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # a malformed IPv6 host ("[::1"): said, not an internal error
        raise UserError(f"{source} is not a valid URL ({exc}): '{shown_target(url)}'") from None
    if not valid_port(parts):
        raise UserError(f"{source} is not a valid URL ({BAD_PORT}): '{shown_target(url)}'")
    if parts.scheme not in POSTGRES_SCHEMES or not (parts.hostname or parts.path.strip("/") or parts.query):
        raise UserError(
            f"{source} must be a postgresql:// (or postgres://) URL, not '{shown_target(url)}'; "
            "unset it to keep threads in ML_INTERN_HOME"
        )
    register_password(url)
    return url


def valid_port(parts: SplitResult) -> bool:
    """Whether a URL's port parses (in "u:p@::1:5432", an IPv6 host without brackets, it does not)."""
    try:
        return parts.port is None or parts.port >= 0
    except ValueError:
        return False


def register_password(url: str) -> None:
    """Remember the URL's password (in the netloc or a `password=` parameter) as a secret value."""
    from ml_intern.secrets import register_secrets

    register_secrets({f"DATABASE_PASSWORD_{n}": p for n, p in enumerate(url_passwords(url))})


def url_passwords(url: str) -> list[str]:
    """The passwords `url` carries: in its netloc, or a `password=` parameter (none: not parseable)."""
    try:
        parts = urlsplit(url)
        passwords = [parts.password or ""] + [v for k, v in parse_qsl(parts.query) if k == "password"]
    except ValueError:
        return []
    return [password for password in passwords if password]


def connect_options(url: str) -> dict[str, int]:
    """What a connection to `url` adds to it: the connect timeout, unless the URL sets its own."""
    return {} if "connect_timeout" in url else {"connect_timeout": CONNECT_TIMEOUT_S}


def driver_line(exc: BaseException, url: str) -> str:
    """The first line of a database driver's error about `url`: the URL as `shown_target` shows it, its
    password (wherever else it appears) hidden. (Other secrets: the error line's printer redacts them.)"""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    text = (lines[0] if lines else type(exc).__name__).replace(url, shown_target(url))
    for password in sorted(url_passwords(url), key=len, reverse=True):
        text = text.replace(password, HIDDEN)
    return text


def shown_target(target: Path | str) -> str:
    """A database target as the user may see it: a path, or a URL whose password is `[redacted]`."""
    if isinstance(target, Path):
        return str(target)
    try:
        parts = urlsplit(target)
        if not valid_port(parts):  # its text may be a password typed without its '@': not shown
            raise ValueError(target)
        netloc = parts.netloc
        if parts.password is not None:
            user, _, host = netloc.rpartition("@")
            netloc = f"{user.split(':', 1)[0]}:{HIDDEN}@{host}"
        query = [
            (k, HIDDEN if k == "password" else v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
        ]
        return urlunsplit((parts.scheme, netloc, parts.path, urlencode(query, safe="[]"), parts.fragment))
    except ValueError:  # not parseable as a URL: show only its scheme
        return f"{target.split(':', 1)[0]}://{HIDDEN}"
