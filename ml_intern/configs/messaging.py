"""The `messaging` section at the config boundary: the original's Slack environment defaults, the Slack
variables a project's `.env` may not set, and the checks pydantic cannot make."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ml_intern.configs.schema import MessagingConfig

DESTINATION_NAME = re.compile(r"[a-z0-9._-]+")


def env_flag(env: Mapping[str, str], name: str) -> bool:
    """A true-by-default switch: false, 0, no or off turn it off."""
    return env.get(name, "true").strip().lower() not in ("false", "0", "no", "off")


def slack_env_destination(env: Mapping[str, str]) -> dict[str, Any] | None:
    """The original's `slack.default` from SLACK_BOT_TOKEN + SLACK_CHANNEL_ID (or SLACK_CHANNEL), or ours
    from ML_INTERN_SLACK_WEBHOOK_URL (not SLACK_WEBHOOK_URL: CI systems set it for themselves); else None."""
    token = env.get("SLACK_BOT_TOKEN", "").strip()
    webhook = env.get("ML_INTERN_SLACK_WEBHOOK_URL", "").strip()
    channel = (env.get("SLACK_CHANNEL_ID") or env.get("SLACK_CHANNEL") or "").strip()
    where = {"token": token, "channel": channel} if token and channel else {"webhook_url": webhook}
    if not (token and channel) and not webhook:
        return None
    flags = {
        key: env_flag(env, f"ML_INTERN_SLACK_{key.upper()}")
        for key in ("allow_agent_tool", "allow_auto_events")
    }
    return {"provider": "slack", **where, **flags}


def with_slack_defaults(merged: dict[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    """The original's Slack environment defaults applied to the merged config; a disabled `messaging`
    loses its destinations (their `${SLACK_BOT_TOKEN}` need not be set)."""
    messaging = dict(merged.get("messaging") or {})
    found = slack_env_destination(env) if env_flag(env, "ML_INTERN_SLACK_NOTIFICATIONS") else None
    if found is not None:
        name = (env.get("ML_INTERN_SLACK_DESTINATION") or "slack.default").strip()
        messaging["destinations"] = {name: found, **(messaging.get("destinations") or {})}
        messaging["enabled"] = True
        if (events := env.get("ML_INTERN_SLACK_AUTO_EVENTS")) is not None:
            messaging["auto_event_types"] = [event.strip() for event in events.split(",") if event.strip()]
    if messaging.get("enabled") is not True:
        messaging["destinations"] = {}
    return {**merged, "messaging": messaging}


def messaging_problem(messaging: MessagingConfig) -> tuple[tuple[str, ...], str] | None:
    """Where and why the section is unusable (a badly named or incomplete destination, enabled with none)."""
    for name, dest in messaging.destinations.items():
        if not DESTINATION_NAME.fullmatch(name):
            return (
                "messaging",
                "destinations",
                name,
            ), "a destination name may use only a-z, 0-9, '.', '_' and '-'"
        if not (dest.webhook_url or (dest.token and dest.channel)):
            return ("messaging", "destinations", name), "needs webhook_url, or token and channel"
    if messaging.enabled and not messaging.destinations:
        return ("messaging", "enabled"), "needs at least one destination"
    return None
