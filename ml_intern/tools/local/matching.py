"""Where an edit's `old_str` is in a file: exactly, else tolerant of whitespace, line endings, indentation
and Unicode look-alikes (quotes, dashes, spaces, zero-width marks); and the edit applied there."""

from __future__ import annotations

from collections.abc import Callable

# The original's Unicode pass: curly quotes, dashes and minus, odd spaces become ASCII; invisible marks go.
UNICODE_EQUIVALENTS = str.maketrans(
    dict.fromkeys("‘’‚‛′", "'")
    | dict.fromkeys("“”„‟″", '"')
    | dict.fromkeys("‐‑‒–—―−", "-")
    | dict.fromkeys("\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a", " ")
    | dict.fromkeys("\u202f\u205f\u3000", " ")
    | dict.fromkeys("\u200b\u200c\u200d\u2060\ufeff", None)
)
FUZZY_NOTE = "(fuzzy match: whitespace, line endings, quotes, dashes or invisible characters differed)"


def plain(text: str) -> str:
    """`text` with the Unicode look-alikes replaced and invisible characters removed."""
    return text.translate(UNICODE_EQUIVALENTS)


def normalise_with_origin(text: str) -> tuple[str, list[int]]:
    """Plain characters without trailing whitespace or CR per line; each kept char's index in `text`."""
    kept: list[str] = []
    origin: list[int] = []
    start = 0
    for line in text.split("\n"):
        chars = [(c, start + i) for i, ch in enumerate(line) for c in plain(ch)]
        while chars and chars[-1][0] in " \t\r":
            chars.pop()
        kept += [c for c, _ in chars] + ["\n"]
        origin += [i for _, i in chars] + [start + len(line)]  # the newline maps to the real one
        start += len(line) + 1
    return "".join(kept[:-1]), origin[:-1]  # the last line has no newline


def find_exact(text: str, needle: str) -> list[tuple[int, int]]:
    """Non-overlapping spans where `needle` occurs."""
    spans, at = [], text.find(needle)
    while needle and at >= 0:
        spans.append((at, at + len(needle)))
        at = text.find(needle, at + len(needle))
    return spans


def find_loose(text: str, old: str) -> list[tuple[int, int]]:
    """Spans matching `old` after per-line whitespace, CR and Unicode normalisation, in original offsets."""
    normalised, origin = normalise_with_origin(text)
    return [(origin[s], origin[e - 1] + 1) for s, e in find_exact(normalised, normalise_with_origin(old)[0])]


def find_stripped_lines(text: str, old: str) -> list[tuple[int, int]]:
    """Spans of whole lines equal to `old`'s lines once indentation and look-alikes are ignored."""
    wanted = old.split("\n")
    keep_newline = len(wanted) > 1 and wanted[-1] == ""
    wanted = [plain(line).strip() for line in wanted[: -1 if keep_newline else None]]
    lines = text.split("\n")
    have = [plain(line).strip() for line in lines]
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
