"""`/model ID`: a run context for another model, adopted only once that model has answered."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from langchain_core.messages import HumanMessage

from ml_intern.errors import UserError
from ml_intern.graph.context import RunContext
from ml_intern.model.effort import with_effort
from ml_intern.model.errors import explain_model_error
from ml_intern.run_services import services_for
from ml_intern.services import build_services

MODEL_CHECK_PROMPT = "Reply with the single word OK."
MODEL_CHECK_TIMEOUT_S = 60.0
CHECK_THINKING_TOKENS = 2048  # the check's answer with reasoning effort on


def rebuild_context(ctx: RunContext, model_id: str, environ: Mapping[str, str]) -> RunContext:
    """The same run settings with services built for `model_id` (the model is not called); a missing key or
    HF token is a UserError (one line). The id is kept as typed (spaces dropped): a leading `huggingface/`
    stays with the thread, so the thread keeps going through the router."""
    from ml_intern.model.credentials import needs_hf_token
    from ml_intern.model.ids import canonical_id, resolve_model

    if needs_hf_token(model_id, environ):
        raise UserError(f"{model_id} needs a Hugging Face token (export HF_TOKEN or hf auth login)")
    config = ctx.services.config if ctx.services is not None else None
    resolve_model(model_id, environ, config)  # before building anything: the key or token is there
    model_id = canonical_id(model_id)
    services = build_services(
        model=model_id,
        workdir=Path(ctx.workdir),
        tool_names=ctx.tools,
        stream=ctx.stream,
        environ=dict(environ),
        config=config,
    )
    return dataclasses.replace(ctx, model=model_id, services=services)


async def check_model(ctx: RunContext) -> str | None:
    """Make one tiny call to the context's model with the run's reasoning effort, stepping down as a turn
    would when a level is refused; return the level the model accepted (None: off), remembered in the
    services' effort cache. Raise a UserError saying why the model did not answer."""
    try:
        services = await services_for(ctx)
        prompt = [HumanMessage(content=MODEL_CHECK_PROMPT)]

        async def ping(effort: dict[str, Any]) -> Any:
            # a bound on the answer, with room to think (a reasoning model might think till the timeout);
            # Claude's effort kwargs carry their own (above litellm's thinking budget)
            limit = {"max_tokens": CHECK_THINKING_TOKENS if effort else 16}
            call = services.chat_model.ainvoke(prompt, **{**limit, **effort})
            return await asyncio.wait_for(call, MODEL_CHECK_TIMEOUT_S)

        asked, cache = ctx.reasoning_effort, services.effort_cache
        _, level = await with_effort(services.model, asked, cache, ping)
    except UserError:
        raise
    except TimeoutError:
        raise UserError(f"{ctx.model} did not answer within {MODEL_CHECK_TIMEOUT_S:.0f}s") from None
    except Exception as exc:
        kind = ctx.services.model.kind if ctx.services is not None else None  # the router: HF token advice
        message, code = explain_model_error(exc, ctx.model, kind)
        raise UserError(message, code) from None
    if asked is not None and services.model.kind != "local":
        cache[asked] = level
    return level


async def context_for_model(ctx: RunContext, model_id: str, environ: Mapping[str, str]) -> RunContext:
    """A context for `model_id` once it has answered a check call; `ctx` itself is never changed. The effort
    the check settled on is in the new services' effort cache (model/effort.py `effort_in_use`)."""
    candidate = rebuild_context(ctx, model_id, environ)
    await check_model(candidate)
    return candidate
