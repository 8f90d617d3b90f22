"""HF Jobs hardware flavours, timeouts and an approximate cost estimate.

Hourly prices are approximate public list prices from https://huggingface.co/docs/hub/jobs-pricing (billed per
minute, only while a job is starting or running): the offline fallback. The Hub's own `GET /api/jobs/hardware`
(prices.py) is the authority, and prices change.
"""

from __future__ import annotations

import re

from huggingface_hub import JobHardware

from ml_intern.configs.schema import AgentConfig

HOURLY_USD: dict[str, float] = {
    "cpu-basic": 0.01,
    "cpu-upgrade": 0.03,
    "cpu-xl": 1.00,
    "cpu-performance": 1.90,
    "t4-small": 0.40,
    "t4-medium": 0.60,
    "l4x1": 0.80,
    "l4x4": 3.80,
    "l40sx1": 1.80,
    "l40sx4": 8.30,
    "l40sx8": 23.50,
    "a10g-small": 1.00,
    "a10g-large": 1.50,
    "a10g-largex2": 3.00,
    "a10g-largex4": 5.00,
    "a100-large": 2.50,
    "a100x4": 10.00,
    "a100x8": 20.00,
    "h200": 5.00,
    "h200x2": 10.00,
    "h200x4": 20.00,
    "h200x8": 40.00,
    "rtx-pro-6000": 2.75,
    "rtx-pro-6000x2": 5.50,
    "rtx-pro-6000x4": 11.00,
    "rtx-pro-6000x8": 22.00,
}
FLAVORS: list[str] = [flavor.value for flavor in JobHardware]  # what huggingface_hub knows the Hub accepts
DEFAULT_FLAVOR = "cpu-basic"
DEFAULT_TIMEOUT = "30m"  # the Hub's own default

_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_TIMEOUT_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")


def is_gpu(flavor: str) -> bool:
    """True unless the flavour is a CPU one (unknown flavours count as GPU, the costlier guess)."""
    return not flavor.startswith("cpu-")


def parse_seconds(duration: str | int | float) -> float:
    """Seconds in a duration such as 30m, 2h, 1d, 0.5s or a bare number of seconds; ValueError otherwise."""
    if isinstance(duration, int | float) and not isinstance(duration, bool):
        seconds = float(duration)
    else:
        match = _TIMEOUT_RE.match(str(duration).lower())
        if not match:
            raise ValueError(f"bad duration {duration!r}: use e.g. '30m', '2h', '1d' or a number of seconds")
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2) or "s"]
    if seconds <= 0:
        raise ValueError(f"bad duration {duration!r}: it must be positive")
    return seconds


def parse_timeout(timeout: str | int | float) -> int:
    """Whole seconds in a job timeout such as 30m, 2h, 1d or 5400; ValueError otherwise."""
    seconds = int(parse_seconds(timeout))
    if seconds < 1:
        raise ValueError(f"bad timeout {timeout!r}: it must be at least 1s")
    return seconds


def default_timeout(config: AgentConfig) -> str:
    """The timeout for jobs started without one: `hf_jobs.default_timeout` in the config."""
    return config.hf_jobs.default_timeout


def format_duration(seconds: int) -> str:
    """The shortest exact way to say a duration: 90 -> 90s, 1800 -> 30m, 7200 -> 2h, 86400 -> 1d."""
    for unit in ("d", "h", "m"):
        if seconds >= _UNIT_SECONDS[unit] and seconds % _UNIT_SECONDS[unit] == 0:
            return f"{seconds // _UNIT_SECONDS[unit]}{unit}"
    return f"{seconds}s"


def estimate_cost(
    flavor: str, timeout: str | int | float, prices: dict[str, float] | None = None
) -> float | None:
    """Most a job can cost in USD if it runs until its timeout, at `prices` (USD per hour; the table when
    None); None for an unknown flavour or timeout."""
    hourly = (HOURLY_USD if prices is None else prices).get(flavor)
    try:
        seconds = parse_timeout(timeout)
    except ValueError:
        return None
    return None if hourly is None else round(hourly * seconds / 3600, 2)


def flavor_table() -> str:
    """One line listing every flavour with its approximate hourly price."""
    return ", ".join(
        f"{name} (${HOURLY_USD[name]:.2f}/h)" if name in HOURLY_USD else name for name in FLAVORS
    )
