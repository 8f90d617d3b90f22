"""What an undo did, as printed lines and as the `undo_complete` event."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ml_intern.graph import events
from ml_intern.session.trash import KEEP_DAYS


@dataclass
class UndoReport:
    """What an undo rewound and restored."""

    thread_id: str
    turns_undone: int  # user turns removed (guard and summary messages never count)
    messages_removed: int  # messages of the transcript that are gone
    restored: list[str] = field(default_factory=list)  # workdir-relative paths put back as they were
    removed: list[str] = field(default_factory=list)  # files (and empty dirs, ending in /) the turns created
    not_restored: list[tuple[str, str]] = field(default_factory=list)  # (path, why) left as they are
    remote_effects: list[str] = field(default_factory=list)  # side effects elsewhere that undo cannot reverse
    prompts: list[str] = field(default_factory=list)  # the undone user messages, oldest first
    kept_aside: str = ""  # the trash folder holding what the paths of `kept` held before undo ("": none)
    kept: list[str] = field(default_factory=list)  # removed or restored paths whose bytes are in kept_aside

    def lines(self) -> list[str]:
        """Exactly what was rewound and restored, and where the bytes undo replaced went, for printing."""
        plural = "s" if self.turns_undone != 1 else ""
        lines = [
            f"Undid {self.turns_undone} user turn{plural} of thread {self.thread_id}"
            f" ({self.messages_removed} messages removed)."
        ]
        lines += [f"  rewound: {_clip(prompt)}" for prompt in self.prompts]
        lines += [
            f"  restored: {path}{self._where(path, 'what it held is kept in ')}" for path in self.restored
        ]
        lines += [f"  removed: {path}{self._where(path, 'kept in ')}" for path in self.removed]
        lines += [
            f"  not restored: {path} ({why}){self._where(path, 'what it held is kept in ')}"
            for path, why in self.not_restored
        ]
        if not (self.restored or self.removed or self.not_restored):
            lines.append("  no file in the working directory was changed by those turns")
        if self.kept_aside:
            lines.append(
                f"What undo removed or replaced is kept {KEEP_DAYS} days in {shown(self.kept_aside)}"
            )
        if self.remote_effects:
            lines.append("Not undone (remote side effects):")
            lines += [f"  {effect}" for effect in self.remote_effects]
        return lines

    def _where(self, path: str, text: str) -> str:
        if path not in self.kept:
            return ""
        return f" ({text}{shown(self.kept_aside)}/{path})"

    def event(self) -> dict[str, Any]:
        """The `undo_complete` stream event."""
        fields = asdict(self)
        fields["not_restored"] = [list(pair) for pair in self.not_restored]
        return events.undo_complete(**fields)


def shown(path: str) -> str:
    """`path` with the home directory written ~."""
    home = str(Path.home())
    return "~" + path[len(home) :] if home != "/" and path.startswith(home + "/") else path


def _clip(text: str, width: int = 80) -> str:
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"
