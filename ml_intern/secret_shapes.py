"""What a credential looks like: secret variable names and token shapes, each replaced in place.

Only the secret part goes: `Authorization: Bearer [redacted]`, `postgres://user:[redacted]@host`,
`WANDB_KEY=[redacted]`. A variable reference (`$HF_TOKEN`, `${HF_TOKEN}`, `%HF_TOKEN%`) is no secret.
"""

from __future__ import annotations

import re

REDACTED = "[redacted]"

# Variable names that hold credentials: HF_TOKEN, WANDB_KEY, DB_PASSWORD, DB_PASS, SMTP_PW, SENTRY_DSN, ...
SECRET_NAME = re.compile(
    r"TOKEN$|(^|_)TOKEN_|SECRET|PASSWORD|PASSWD|PASSPHRASE|_PWD$|(^|_)PASS$|(^|_)PW$|CREDENTIAL"
    r"|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY"
    r"|_KEY$|_AUTH$|(^|_)(SET_)?COOKIE$|DSN$|DATABASE_URL$|_DB_URL$|CONNECTION_STRING$"
    r"|^(REDIS|MONGO(DB)?|AMQP|RABBITMQ|POSTGRES(QL)?|PG|MYSQL|CELERY_BROKER|BROKER)_UR[LI]$"
)
# ...but not these: public keys, on/off switches, and where a secret is rather than what it is.
NOT_SECRET_NAME = re.compile(
    r"PUBLIC_?KEY$|PUB_?KEY$|(^|_)(DISABLE|ENABLE|NO|USE)_|_(PATH|FILE|DIR|NAME|TYPE)$"
)
PLACEHOLDER = re.compile(r"(?i).*\.\.\..*|[x*.]+|your\W?.*")  # hf_..., xxxx, ****, your-token-here
REFERENCE = re.compile(r"\$\w+|\$\{[^}\s]*\}|%\w+%|\{\{[^}]*\}\}|\{\w*\}")

TOKENS = re.compile(  # one \b and a first-letter check up front: ten times faster than \b per alternative
    r"\b(?=[hagsrwxyAnpe])(?:hf_[A-Za-z0-9]{16,}|api_org_[A-Za-z0-9]{16,}"  # Hugging Face
    r"|gh[pousr]_[A-Za-z0-9]{16,}|github_pat_[A-Za-z0-9_]{16,}|glpat-[A-Za-z0-9_\-]{20,}"
    r"|sk-[A-Za-z0-9_\-]{16,}"  # OpenAI (sk-proj-), Anthropic (sk-ant-) and their imitators
    r"|[sr]k_(?:live|test)_[A-Za-z0-9]{16,}|whsec_[A-Za-z0-9]{16,}"  # Stripe
    r"|xox[abposre]-[A-Za-z0-9\-]{10,}|xapp-[A-Za-z0-9\-]{10,}|hooks\.slack\.com/services/[A-Za-z0-9/]+"
    r"|AIza[0-9A-Za-z_\-]{35}|ya29\.[0-9A-Za-z_\-]{20,}"  # Google API key, OAuth access token
    r"|npm_[A-Za-z0-9]{36,}|pypi-[A-Za-z0-9_\-]{32,}|gsk_[A-Za-z0-9]{20,}|r8_[A-Za-z0-9]{20,}"
    r"|(?:AKIA|ASIA)[0-9A-Z]{16}\b"
    r"|eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]{8,})"  # JWT
)
# What is redacted is inert (no quote, `$`, `;`, `|`, `&`, parentheses, backquote): an approval card showing a
# redacted command never hides a command substitution or a second command.
INERT = r"[^\s'\"`$();|&<>"
KEY_BREAK = r"(?:\s|\\+[nr])"  # a line break, or one escaped in a JSON string (or JSON in JSON)
KEY_HEADER = r"(?:Proc-Type|DEK-Info|Comment):[ A-Za-z0-9,\-]*"
PRIVATE_KEY = re.compile(  # a whole block, or one cut short (its base64 lines up to the cut)
    r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY[A-Z ]*-----"
    rf"(?:(?:{KEY_BREAK}+(?:[A-Za-z0-9+/=]+|{KEY_HEADER}))*?{KEY_BREAK}*"
    r"-----END[A-Z0-9 ]*PRIVATE KEY[A-Z ]*-----"
    rf"|(?:{KEY_BREAK}+(?:[A-Za-z0-9+/=]{{16,}}(?![^\s\\])|{KEY_HEADER}))*)"  # whole lines only
)
DSN = re.compile(rf"\b([A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@'\"]*:)({INERT}/?#]+)(?=@)")  # scheme://user:PW@
SCHEMES = r"bearer|basic|token|digest|negotiate|ntlm|dpop"
CREDENTIAL = r"[A-Za-z0-9._~+/=\-]{8,}"
AUTH_HEADER = re.compile(
    rf"(?i)\b(authorization['\"]?[ \t]*[:=][ \t]*['\"]?(?:(?:{SCHEMES})[ \t]+)?)"
    rf"(?!(?:{SCHEMES})\b)({CREDENTIAL})"
)
BEARER = re.compile(rf"(?i)\b((?:bearer|basic)[ \t]+)({CREDENTIAL})")
ASSIGNMENT = re.compile(  # NAME=value, name: "value", "api_key": "value", --password=value
    r"\b([A-Za-z_][\w.\-]*)(['\"]?[ \t]*[:=][ \t]*)"
    rf"(?:(['\"])({INERT}]{{6,}})\3|({INERT}\[\]{{}},]{{6,}})(?=[\s,;&|'\")]|$))"
)
HINTS = ("tok", "secret", "pass", "pwd", "cred", "key", "auth", "dsn", "_ur", "connection", "cookie")  # names
LINE_SHAPES = (DSN, TOKENS, AUTH_HEADER, BEARER, ASSIGNMENT)  # every shape but the multi-line key block


def is_secret_name(name: str) -> bool:
    """Whether an environment variable (or a key in code or config) of this name holds a credential."""
    name = re.sub(r"[.\-]", "_", name.upper())
    return bool(SECRET_NAME.search(name)) and not NOT_SECRET_NAME.search(name)


def is_reference(value: str) -> bool:
    """Whether `value` names a secret instead of holding one: `$VAR`, `${VAR}`, `%VAR%`, `{name}`."""
    return bool(REFERENCE.fullmatch(value))


def credential_like(word: str) -> bool:
    """Whether a word after `Bearer`/`Authorization:` looks like a credential rather than prose."""
    if any(c.isdigit() or c in "+/=_" for c in word):
        return True
    return sum(c.isupper() for c in word[1:]) >= 2


def _keep_scheme(match: re.Match[str]) -> str:
    return match[1] + REDACTED if credential_like(match[2]) else match[0]


def _dsn(match: re.Match[str]) -> str:
    return match[0] if is_reference(match[2]) else match[1] + REDACTED


def _assignment(match: re.Match[str]) -> str:
    name, quote, value = match[1], match[3] or "", match[4] or match[5]
    if not is_secret_name(name) or is_reference(value) or value == REDACTED or PLACEHOLDER.fullmatch(value):
        return match[0]
    if not quote and re.fullmatch(r"[A-Za-z_]+|[A-Za-z_]\w*(\.\w+)+", value):
        return match[0]  # a variable or attribute (`token = args.token`), not a literal
    return f"{name}{match[2]}{quote}{REDACTED}{quote}"


def redact_shapes(text: str) -> str:
    """`text` with the secret part of every credential-shaped string replaced by [redacted]."""
    if "-----BEGIN" in text:
        text = PRIVATE_KEY.sub(REDACTED, text)
    if "://" in text:
        text = DSN.sub(_dsn, text)
    text = TOKENS.sub(REDACTED, text)
    lowered = text.lower()  # the slower shapes only where their words occur
    if "authorization" in lowered:
        text = AUTH_HEADER.sub(_keep_scheme, text)
    if "bearer" in lowered or "basic" in lowered:
        text = BEARER.sub(_keep_scheme, text)
    if any(hint in lowered for hint in HINTS) and ("=" in text or ":" in text):
        text = ASSIGNMENT.sub(_assignment, text)
    return text
