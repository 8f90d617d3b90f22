"""The Hugging Face token prompt: offered when a model needs a token and none is set or saved."""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from typing import Any

from prompt_toolkit import PromptSession
from rich.console import Console

from ml_intern.errors import UserError
from ml_intern.model.credentials import save_hf_token, verify_hf_token
from ml_intern.terminal.text import red

ATTEMPTS = 3


async def ask_hf_token(console: Console, environ: MutableMapping[str, str], model_id: str) -> None:
    """Ask for a token; check it with the Hub, save it as `hf auth login` does, and use it."""
    endpoint = environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
    console.print(f"{model_id} runs on Hugging Face and needs an access token; none is set or saved.")
    console.print(
        f"Create one at {endpoint}/settings/tokens and paste it here (hidden), or press Enter to quit."
    )
    asker: Any = PromptSession()
    for _ in range(ATTEMPTS):
        try:
            token = (await asker.prompt_async("HF token: ", is_password=True, handle_sigint=False)).strip()
        except (EOFError, KeyboardInterrupt):
            token = ""
        if not token:
            raise UserError(
                f"{model_id} needs a Hugging Face token: export HF_TOKEN=hf_... or run hf auth login"
            )
        try:
            user = await asyncio.to_thread(verify_hf_token, token, endpoint)
            await asyncio.to_thread(save_hf_token, token)
        except (UserError, ValueError) as exc:
            console.print(red(f"{exc}: paste another token, or press Enter to quit"))
            continue
        environ["HF_TOKEN"] = token
        console.print(f"Logged in to Hugging Face as {user}; the token is saved for next time.")
        return
    raise UserError(
        f"no valid Hugging Face token after {ATTEMPTS} attempts: check it at {endpoint}/settings/tokens"
    )
