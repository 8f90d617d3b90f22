"""Training-script guardrails: the warnings, where the model reads them (write, the hf_jobs approval reason),
and the approval card that shows a job's whole script."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from ml_intern.configs.schema import as_config
from ml_intern.terminal.cards import approval_card
from ml_intern.tools.base import ToolEnv
from ml_intern.tools.guardrails import training_warnings
from ml_intern.tools.jobs.tool import approval_reason
from ml_intern.tools.local.files import write_file

LOSES_MODEL = """from trl import SFTConfig, SFTTrainer
config = SFTConfig(output_dir="out", num_train_epochs=1)
trainer = SFTTrainer(model="Qwen/Qwen3-0.6B", args=config, train_dataset=ds)
trainer.train()
"""
PUSHES = LOSES_MODEL.replace('output_dir="out"', 'output_dir="out", push_to_hub=True, hub_model_id="me/m"')


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        (LOSES_MODEL, ["SFTConfig without push_to_hub=True and hub_model_id", "never saves or pushes"]),
        (LOSES_MODEL + "trainer.save_model('out')\n", ["SFTConfig without push_to_hub=True"]),
        (PUSHES, []),
        ("args = TrainingArguments('o')\nmodel.save_pretrained('o')\n", ["TrainingArguments without"]),
        ("model.train()\nfor batch in data: step(batch)\n", ["never saves or pushes"]),
        ("print('hello')\n", []),
        (
            "model.train()\nfor b in data: step(b)\ntorch.save(model.state_dict(), 'm.pt')\nupload_file(p)\n",
            [],
        ),
        ("model.train()\napi.upload_folder(folder_path='out', repo_id='me/m')\n", []),
        (LOSES_MODEL + "trainer.push_to_hub()\n", []),
        (
            LOSES_MODEL.replace('output_dir="out"', 'output_dir="out", push_to_hub=False'),
            ["SFTConfig without"],
        ),
        (
            "# TODO push_to_hub, hub_model_id\n" + LOSES_MODEL + "trainer.save_model()\n",
            ["SFTConfig without"],
        ),
    ],
    ids=[
        "sft-no-push-no-save",
        "sft-saves-locally",
        "pushes",
        "training-arguments",
        "bare-train",
        "no-training",
        "torch-save-and-upload",
        "upload-folder",
        "trainer-pushes-explicitly",
        "push-to-hub-false",
        "push-to-hub-in-a-comment",
    ],
)
def test_training_warnings(script: str, expected: list[str]) -> None:
    warnings = training_warnings(script)
    assert len(warnings) == len(expected)
    for warning, text in zip(warnings, expected, strict=True):
        assert text in warning


def test_write_appends_the_warnings_for_python_files_only(tmp_path: Path) -> None:
    env = ToolEnv(workdir=tmp_path, home=tmp_path / "home")
    result = write_file(env, "train.py", LOSES_MODEL)
    assert "Warning: SFTConfig without push_to_hub=True" in result and "never saves or pushes" in result
    assert "Warning" not in write_file(env, "pushes.py", PUSHES)
    assert "Warning" not in write_file(env, "notes.txt", LOSES_MODEL)
    assert (tmp_path / "train.py").read_text() == LOSES_MODEL


def test_job_approval_reason_names_the_warnings_for_inline_and_workdir_scripts(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text(LOSES_MODEL)
    env = ToolEnv(workdir=tmp_path, home=tmp_path / "home", config=as_config({}))
    for script in (LOSES_MODEL, "train.py"):
        reason = approval_reason({"operation": "run", "script": script, "hardware_flavor": "a10g-large"}, env)
        assert reason and reason.startswith("GPU job on a10g-large")
        assert "WARNING: SFTConfig without push_to_hub=True" in reason
        assert "WARNING: The script trains (.train()) but never saves" in reason
    clean = approval_reason({"operation": "run", "script": PUSHES, "hardware_flavor": "a10g-large"}, env)
    assert clean and "WARNING" not in clean
    (tmp_path.parent / "elsewhere.py").write_text(PUSHES)
    refused = approval_reason({"operation": "run", "script": "../elsewhere.py"}, env)
    assert (
        refused
        and "WARNING: the job will not start" in refused
        and "outside the working directory" in refused
    )


def rendered_card(args: dict) -> str:
    console = Console(file=io.StringIO(), width=200, force_terminal=False, color_system=None)
    console.print(approval_card({"id": "c1", "name": "hf_jobs", "args": args, "reason": "why"}, 1, 1))
    return console.file.getvalue()


def test_job_card_shows_the_whole_script_its_dependencies_and_env_names_never_values() -> None:
    script = "\n".join(f"print('line {n}')" for n in range(1, 301))
    out = rendered_card(
        {
            "operation": "run",
            "script": script,
            "dependencies": ["trl", "peft"],
            "hardware_flavor": "a10g-large",
            "timeout": "4h",
            "image": "ghcr.io/x/y",
            "env": {"WANDB_PROJECT": "visible-name-only-value"},
            "secrets": {"WANDB_API_KEY": "$MY_KEY"},
        }
    )
    assert "print('line 1')" in out and "print('line 300')" in out and "more" not in out
    assert "image: ghcr.io/x/y · hardware_flavor: a10g-large · timeout: 4h" in out
    assert "dependencies: trl, peft" in out
    assert "env: WANDB_PROJECT" in out and "visible-name-only-value" not in out
    assert "secrets: WANDB_API_KEY" in out and "$MY_KEY" not in out


def test_job_card_bounds_a_huge_script() -> None:
    out = rendered_card({"operation": "run", "script": "\n".join(f"x{n} = {n}" for n in range(1, 1001))})
    assert "x400 = 400" in out and "x401 = 401" not in out and "… (+600 lines)" in out


def test_job_card_bounds_a_one_line_script_by_characters() -> None:
    out = rendered_card({"operation": "run", "script": "x = 1; " * 50_000})
    assert len(out) < 2_000 and "(+349700 chars)" in out
    huge = rendered_card({"operation": "run", "script": "\n".join(["y = 2"] * 3) + "\n" + "z" * 100_000})
    assert len(huge) < 2_000 and "y = 2" in huge


def test_a_script_path_outside_the_workdir_is_refused_not_shipped(tmp_path: Path) -> None:
    from ml_intern.tools.base import ToolError
    from ml_intern.tools.jobs.script import read_script

    outside, work, root = tmp_path / "outside", tmp_path / "work", tmp_path / "root"
    for place in (outside, work, root):
        place.mkdir()
    (outside / "steal.py").write_text("SECRET = 1\n")
    (root / "ok.py").write_text("print('root')\n")
    (work / ".env").write_text("KEY=1\n")
    (work / "link.py").symlink_to(outside / "steal.py")
    for script in (str(outside / "steal.py"), "../outside/steal.py", "link.py", ".env"):
        with pytest.raises(ToolError, match="outside the working directory|credential file"):
            read_script(script, work, [root])
    assert read_script(str(root / "ok.py"), work, [root]) == ("ok.py", "print('root')\n")
    assert read_script("print(1)", work) == ("script.py", "print(1)")
