"""Where an edit's `old_str` is in a file: exactly, else tolerant of whitespace, line endings, indentation
and curly quotes; and the edit applied at the places found."""

from __future__ import annotations

from collections.abc import Callable

TYPOGRAPHIC_QUOTES = str.maketrans("‘’‚‛“”„‟", "''''\"\"\"\"")
FUZZY_NOTE = "(fuzzy match: whitespace, line endings or quotes differed)"


def normalise_with_origin(text: str) -> tuple[str, list[int]]:
    """Drop trailing whitespace and CR per line, straighten quotes; map each kept char to its index."""
    kept: list[str] = []
    origin: list[int] = []
    start = 0
    for line in text.split("\n"):
        body = line.rstrip(" \t\r")
        kept.append(body + "\n")
        origin.extend(range(start, start + len(body) + 1))
        start += len(line) + 1
    normalised = "".join(kept)[:-1].translate(TYPOGRAPHIC_QUOTES)  # the last line has no newline
    return normalised, origin


def find_exact(text: str, needle: str) -> list[tuple[int, int]]:
    """Non-overlapping spans where `needle` occurs."""
    spans, at = [], text.find(needle)
    while needle and at >= 0:
        spans.append((at, at + len(needle)))
        at = text.find(needle, at + len(needle))
    return spans


def find_loose(text: str, old: str) -> list[tuple[int, int]]:
    """Spans matching `old` after per-line whitespace, CR and quote normalisation, in original offsets."""
    normalised, origin = normalise_with_origin(text)
    return [(origin[s], origin[e - 1] + 1) for s, e in find_exact(normalised, normalise_with_origin(old)[0])]


def find_stripped_lines(text: str, old: str) -> list[tuple[int, int]]:
    """Spans of whole lines equal to `old`'s lines once indentation and quotes are ignored."""
    wanted = old.split("\n")
    keep_newline = len(wanted) > 1 and wanted[-1] == ""
    wanted = [line.strip().translate(TYPOGRAPHIC_QUOTES) for line in wanted[: -1 if keep_newline else None]]
    lines = text.split("\n")
    have = [line.strip().translate(TYPOGRAPHIC_QUOTES) for line in lines]
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line) + 1)
    spans, i, n = [], 0, len(wanted)
    while any(wanted) and i + n <= len(lines):
        if have[i : i + n] != wanted:
            i += 1
            continue
        end = starts[i + n] - 1 + (1 if keep_newline and i + n < len(lines) else 0)
        spans.append((starts[i], end))
        i += n
    return spans


def leading_indent(text: str) -> str:
    """Indentation of the first non-blank line."""
    line = next((line for line in text.split("\n") if line.strip()), "")
    return line[: len(line) - len(line.lstrip())]


def reindent(new: str, old: str, matched: str) -> str:
    """Shift `new` by the indentation difference between `old` and the text it matched."""
    old_indent, file_indent = leading_indent(old), leading_indent(matched)
    lines = new.split("\n")
    if old_indent == file_indent or not all(line.startswith(old_indent) for line in lines if line.strip()):
        return new
    return "\n".join(file_indent + line[len(old_indent) :] if line.strip() else line for line in lines)


def locate(text: str, old: str, new: str) -> tuple[list[tuple[int, int]], Callable[[str], str], str]:
    """Find `old` in `text`: the spans, how to adapt `new` to a matched text, and a note on fuzziness."""
    if spans := find_exact(text, old):
        return spans, lambda matched: new, ""
    if spans := find_loose(text, old):
        return spans, lambda matched: new, FUZZY_NOTE
    return find_stripped_lines(text, old), lambda matched: reindent(new, old, matched), FUZZY_NOTE


def splice(
    text: str, spans: list[tuple[int, int]], adapt: Callable[[str], str], mode: str
) -> tuple[str, int, int]:
    """Apply the edit to every span; return the new text and the first edited region (start, length)."""
    pieces, cursor, region = [], 0, (0, 0)
    for n, (start, end) in enumerate(spans):
        matched = text[start:end]
        insert = adapt(matched)
        replacement = {"append_after": matched + insert, "prepend_before": insert + matched}.get(mode, insert)
        pieces += [text[cursor:start], replacement]
        if n == 0:
            region = (start, len(replacement))
        cursor = end
    return "".join(pieces) + text[cursor:], *region
