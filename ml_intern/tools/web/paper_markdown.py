"""Split a paper's Markdown (`HfApi.read_paper`: the Hub's `/papers/{id}.md`) into sections."""

from __future__ import annotations

import re

from ml_intern.tools.web.page_text import tidy
from ml_intern.tools.web.paper_html import PaperSection, ParsedPaper

HEADING = re.compile(r"(#{1,6})[ \t]+(\S.*)")  # linear: the closing '#'s are stripped in Python
NUMBER_DOT = re.compile(r"^((?:[A-Z]|\d+)(?:\.\d+)*)\.\s+")  # '1. Introduction' -> '1 Introduction'


def _heading(line: str) -> tuple[int, str] | None:
    """(level, text) of an ATX heading line ('## 1. Method ##' -> (2, '1 Method')), else None."""
    found = HEADING.match(line)
    if found is None:
        return None
    text = found.group(2).rstrip().rstrip("#").rstrip().strip("* ")
    return (len(found.group(1)), NUMBER_DOT.sub(r"\1 ", text)) if text else None


def parse_paper_markdown(markdown: str) -> ParsedPaper:
    """Headings become sections (a parent holds its subsections' text); '# Title' and '## Abstract' apart."""
    title, abstract, sections = "", [], []
    open_sections: list[PaperSection] = []
    in_abstract = in_fence = False
    for line in markdown.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
        heading = None if in_fence else _heading(line)
        if heading is None:
            targets = [abstract] if in_abstract else [s.parts for s in open_sections]
            for target in targets:
                target.append(line + "\n")
            continue
        level, text = heading
        if level == 1 and not title:
            title = text
            continue
        in_abstract = text.lower() == "abstract"
        if in_abstract:
            open_sections = []
            continue
        level = max(level, 2)
        open_sections = [s for s in open_sections if s.level < level]
        for parent in open_sections:
            parent.parts.append(f"\n\n{text}\n")
        section = PaperSection(title=text, level=level)
        sections.append(section)
        open_sections.append(section)
    return ParsedPaper(title=title, abstract=tidy("".join(abstract)), sections=sections)
