"""Credential samples of every shape ml-intern redacts, for tests/test_redaction.py, tests/test_secrets.py
and bench/faults_secrets.py. Prefixes are joined at run time so that no secret scanner mistakes this file for
a leak."""

from __future__ import annotations

from typing import Any

from langchain_core.tools import BaseTool

from tests.harness_graph import make_tool


def joined(*parts: str) -> str:
    return "".join(parts)


PEM = joined(
    "-----BEGIN RSA PRIV",
    "ATE KEY-----\nMIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM9Oi0KWs0nBdE8W2Zx1sLq9yS8Bqg\n",
    "Y5gHn0oJcE1kqY8jRkz2vXh0d9W3Tq1HcBfJm8ZsN4k5QqHh7LmR0PjYbWq4ZsT\nqZ3kUx==\n",
    "-----END RSA PRIV",
    "ATE KEY-----",
)
PEM_BODY = "MIIEpAIBAAKCAQEA3Tz2mr7"  # a piece of its body
# name -> (text holding the secret, a piece of the secret, a piece of the text that must survive)
SHAPES: dict[str, tuple[str, str, str]] = {
    "slack bot token": (
        joined("token xo", "xb-1234567890-0987654321-AbCdEfGhIjKlMnOp"),
        "0987654321",
        "token",
    ),
    "slack user token": (joined("xo", "xp-1234567890-0987654321-ZyXwVuTs"), "0987654321-Zy", ""),
    "gitlab token": (
        joined("git push https://gitlab.com ", "glp", "at-AbCdEfGhIj1234567890"),
        "AbCdEfGhIj12",
        "git",
    ),
    "google api key": (joined("key=AI", "zaSyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUvW"), "SyA1b2C3d4E5", ""),
    "anthropic key": (joined("sk-", "ant-api03-AbCdEfGhIjKlMnOpQrSt-UvWx"), "AbCdEfGhIjKl", ""),
    "openai project key": (joined("sk-", "proj-AbCdEfGhIjKlMnOpQrStUvWx0123"), "AbCdEfGhIjKl", ""),
    "stripe live key": (joined("sk_", "live_51AbCdEfGhIjKlMnOpQrSt"), "51AbCdEfGhIj", ""),
    "npm token": (joined("np", "m_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"), "AbCdEfGhIjKlMn", ""),
    "pypi token": (joined("py", "pi-AgEIcHlwaS5vcmcCJDAwMDAwMDAwLTAwMDAtMDAwMC0wMDAw"), "AgEIcHlwaS5v", ""),
    "jwt": (
        joined("ey", "JhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N"),
        "dozjgNryP4J3",
        "",
    ),
    "wandb key assigned": (
        "export WANDB_KEY=0f3c9a7b5e1d2468ace013579bdf2468ace01357",
        "0f3c9a7b5e1d",
        "WANDB_KEY=",
    ),
    "password in json": ('{"db_password": "Tr0ub4dor-and-3"}', "Tr0ub4dor", "db_password"),
    "password flag": ("mysql --password=Xy7-secret-99 db", "Xy7-secret", "mysql --password="),
    "postgres url": (
        "psql postgres://admin:s3cr3t-Pw@db.example.com:5432/app",
        "s3cr3t-Pw",
        "@db.example.com:5432",
    ),
    "any scheme url": (
        "git clone https://oauth2:AbCdEf123456@git.example.com/x.git",
        "AbCdEf123456",
        "oauth2:",
    ),
    "bearer header": (
        'curl -H "Authorization: Bearer AbCdEf0123456789xyz" x',
        "AbCdEf0123",
        "Authorization: Bearer",
    ),
    "basic header": ("Authorization: Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNz", "Authorization: Basic"),
    "private key block": (f"key:\n{PEM}\ndone", PEM_BODY, "done"),
    "private key in json": ('{"private_key": "' + PEM.replace("\n", "\\n") + '"}', PEM_BODY, "private_key"),
    "private key cut short": (PEM[:150], PEM_BODY, ""),
}
SECRET_NAMES = [
    "WANDB_KEY", "WANDB_API_KEY", "HF_TOKEN", "GITHUB_TOKEN", "DB_PASSWORD", "MYSQL_PASSWD", "DB_PWD",
    "AWS_SECRET_ACCESS_KEY", "GOOGLE_APPLICATION_CREDENTIALS", "NPM_CONFIG__AUTH", "SENTRY_DSN",
    "DATABASE_URL", "REDIS_URL", "SSH_PRIVATE_KEY", "STRIPE_KEY", "client_secret", "api-key",
    "AWS_SESSION_TOKEN",
]  # fmt: skip
PLAIN_NAMES = [
    "KEYBOARD", "PUBLIC_KEY", "SSH_PUBLIC_KEY", "TOKENIZERS_PARALLELISM", "MAX_TOKENS", "PWD", "OLDPWD",
    "SSH_AUTH_SOCK", "XAUTHORITY", "HF_TOKEN_PATH", "HF_HUB_DISABLE_IMPLICIT_TOKEN", "GIT_ASKPASS", "PATH",
    "HOTKEY", "AUTHOR", "KEY_ID_LIST",
]  # fmt: skip


class Recorder:
    """A custom tool `run_script(command)` that records the arguments it was called with."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []

    def tool(self) -> BaseTool:
        async def run_script(command: str) -> str:
            """Run a shell script."""
            self.received.append({"command": command})
            return "ran"

        return make_tool(run_script)
