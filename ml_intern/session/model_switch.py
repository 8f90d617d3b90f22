"""`/model ID`: a run context for another model, adopted only once that model has answered."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping
from pathlib import Path

from langchain_core.messages import HumanMessage

from ml_intern.errors import UserError
from ml_intern.graph.context import RunContext
from ml_intern.model.errors import explain_model_error
from ml_intern.services import build_services, services_for

MODEL_CHECK_PROMPT = "Reply with the single word OK."
MODEL_CHECK_TIMEOUT_S = 60.0


def rebuild_context(ctx: RunContext, model_id: str, environ: Mapping[str, str]) -> RunContext:
    """The same run settings with services built for `model_id` (the model is not called)."""
    from ml_intern.model.credentials import needs_hf_token

    if needs_hf_token(model_id, environ):
        raise UserError(f"{model_id} needs a Hugging Face token (export HF_TOKEN or hf auth login)")
    config = ctx.services.config if ctx.services is not None else None
    services = build_services(
        model=model_id,
        workdir=Path(ctx.workdir),
        tool_names=ctx.tools,
        stream=ctx.stream,
        environ=dict(environ),
        config=config,
    )
    return dataclasses.replace(ctx, model=model_id, services=services)


async def check_model(ctx: RunContext) -> None:
    """Make one tiny call to the context's model; raise a UserError saying why it did not answer."""
    try:
        chat_model = (await services_for(ctx)).chat_model
        prompt = [HumanMessage(content=MODEL_CHECK_PROMPT)]
        await asyncio.wait_for(chat_model.ainvoke(prompt, max_tokens=16), MODEL_CHECK_TIMEOUT_S)
    except UserError:
        raise
    except TimeoutError:
        raise UserError(f"{ctx.model} did not answer within {MODEL_CHECK_TIMEOUT_S:.0f}s") from None
    except Exception as exc:
        message, code = explain_model_error(exc, ctx.model)
        raise UserError(message, code) from None


async def context_for_model(ctx: RunContext, model_id: str, environ: Mapping[str, str]) -> RunContext:
    """A context for `model_id` once it has answered a check call; `ctx` itself is never changed."""
    candidate = rebuild_context(ctx, model_id, environ)
    await check_model(candidate)
    return candidate
