"""Hugging Face Jobs: the `hf_jobs` tool; what it is, for the registry."""

from __future__ import annotations

from ml_intern.tools.base import ToolFacts
from ml_intern.tools.jobs.tool import always_ask, approval_reason, run_cost

TOOL_FACTS = {
    "hf_jobs": ToolFacts(
        effect="job",
        read_only_operations=frozenset({"ps", "logs", "inspect", "scheduled ps", "scheduled inspect"}),
        approval=approval_reason,
        always_ask=always_ask,  # scheduled jobs outlive the session, secrets leave it: a human decides
        cost=run_cost,  # what yolo may approve is capped (yolo_cost_cap_usd)
        targets=("job_id", "scheduled_job_id"),
        # The original's names (tools/checked.py): taken, not shown in the prompt.
        aliases={
            "flavor": "hardware_flavor",
            "hardware": "hardware_flavor",
            "packages": "dependencies",
            "with_deps": "dependencies",
        },
        hidden=frozenset(
            {
                "namespace",
                "secrets",
                "status",
                "python",
                "trackio_space_id",
                "trackio_project",
                "tail",
                "offset",
                "follow",
                "script_args",
                "all",
            }
        ),
    ),
}
