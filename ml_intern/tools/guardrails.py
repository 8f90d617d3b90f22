"""Training-script guardrails: warnings about a script that would lose its trained model (pure functions)."""

from __future__ import annotations

import re

_TRAINING_CONFIG = re.compile(
    r"\b(TrainingArguments|Seq2SeqTrainingArguments|SFTConfig|DPOConfig|GRPOConfig|ORPOConfig|KTOConfig|"
    r"PPOConfig|RewardConfig|CPOConfig|GKDConfig|PRMConfig)\s*\("
)
_SAVES = re.compile(
    r"\b(save_model|push_to_hub|save_pretrained|save_state|torch\.save|upload_folder|upload_file)\b"
)
_PUSHES = re.compile(r"\bpush_to_hub\s*=\s*True\b")
_HUB_ID = re.compile(r"\bhub_model_id\s*=")
# An explicit push: trainer.push_to_hub(), api.upload_folder(...)
_PUSH_CALL = re.compile(r"\.(?:push_to_hub|upload_folder|upload_file|create_commit)\s*\(")
_COMMENT = re.compile(r"#[^\n]*")


def training_warnings(text: str) -> list[str]:
    """Warnings for a training script whose model would vanish with the job's disk (the original's
    reliability check): a trainer config without push_to_hub=True and hub_model_id, a `.train(` without
    any save or upload."""
    warnings = []
    text = _COMMENT.sub("", text)  # a `# TODO push_to_hub` saves nothing (a # inside a string is cut too)
    configs = sorted(set(_TRAINING_CONFIG.findall(text)))
    if configs and not (_PUSHES.search(text) and _HUB_ID.search(text)) and not _PUSH_CALL.search(text):
        warnings.append(
            f"{', '.join(configs)} without push_to_hub=True and hub_model_id: a job's disk is deleted "
            "when it ends, so the trained model would be lost."
        )
    if re.search(r"\.train\s*\(", text) and not _SAVES.search(text):
        warnings.append(
            "The script trains (.train()) but never saves or pushes the model (save_model, save_pretrained, "
            "push_to_hub)."
        )
    return warnings


def warning_text(text: str) -> str:
    """The warnings as lines to append to a result, or ""."""
    return "".join(f"\nWarning: {warning}" for warning in training_warnings(text))
