"""Split an arXiv (LaTeXML) HTML paper into title, abstract and numbered sections."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ml_intern.tools.web.page_text import TextExtractor, has_class, tidy

HEADING_LEVELS = {"h2": 2, "h3": 3, "h4": 4}
SECTION_NUMBER = re.compile(r"^((?:Appendix\s+)?[A-Z]?\d*(?:\.\d+)*)\s")


@dataclass
class PaperSection:
    """One heading of the paper and the text under it (subsections included)."""

    title: str
    level: int
    parts: list[str] = field(default_factory=list)

    @property
    def number(self) -> str:
        """The section number as printed, e.g. '4', '4.2' or 'A.1' ('' when unnumbered)."""
        match = SECTION_NUMBER.match(self.title + " ")
        return match.group(1).removeprefix("Appendix").strip() if match else ""

    @property
    def text(self) -> str:
        """The section's text, tidied."""
        return tidy("".join(self.parts))


@dataclass
class ParsedPaper:
    """What a paper's HTML page holds."""

    title: str
    abstract: str
    sections: list[PaperSection]

    def find_section(self, query: str) -> PaperSection | None:
        """A section by number ('4', '4.2'), exact title, or part of a title (case-insensitive)."""
        wanted = query.strip().lower().removeprefix("section").strip()
        checks = (
            lambda s: s.number.lower() == wanted,
            lambda s: s.title.lower() == wanted,
            lambda s: wanted in s.title.lower(),
        )
        for check in checks:
            found = next((s for s in self.sections if check(s)), None)
            if found:
                return found
        return None


class _PaperParser(TextExtractor):
    """Routes text to the title, the abstract, a heading being read, or every open section."""

    def __init__(self) -> None:
        super().__init__()
        self.title: list[str] = []
        self.abstract: list[str] = []
        self.sections: list[PaperSection] = []
        self._open: list[PaperSection] = []  # the current section and its parents
        self._target: list[str] | None = None  # where a title or heading's text goes while it is read
        self._heading_level = 0
        self._abstract_depth = 0  # nesting of <div> inside the abstract block

    def write(self, text: str) -> None:
        if self._target is not None:
            self._target.append(text)
        elif self._abstract_depth:
            self.abstract.append(text)
        else:
            for section in self._open:
                section.parts.append(text)

    def open_tag(self, tag: str, attributes: dict[str, str]) -> None:
        if tag == "div" and (self._abstract_depth or has_class(attributes, "ltx_abstract")):
            self._abstract_depth += 1
        elif tag == "h1" and has_class(attributes, "ltx_title") and not self.title:
            self._target = self.title
        elif tag in HEADING_LEVELS and has_class(attributes, "ltx_title") and not self._abstract_depth:
            self._heading_level = HEADING_LEVELS[tag]
            self._target = []

    def close_tag(self, tag: str) -> None:
        if tag == "div" and self._abstract_depth:
            self._abstract_depth -= 1
        elif tag == "h1" and self._target is self.title:
            self._target = None
        elif tag in HEADING_LEVELS and self._heading_level and self._target is not None:
            self._start_section(tidy("".join(self._target)).replace("\n", " "), self._heading_level)
            self._target, self._heading_level = None, 0

    def _start_section(self, title: str, level: int) -> None:
        self._open = [s for s in self._open if s.level < level]
        for parent in self._open:
            parent.parts.append(f"\n\n{title}\n")
        section = PaperSection(title=title, level=level)
        self.sections.append(section)
        self._open.append(section)


def parse_paper_html(html: str) -> ParsedPaper:
    """Parse an arXiv / ar5iv HTML paper."""
    parser = _PaperParser()
    parser.feed(html)
    parser.close()
    abstract = tidy("".join(parser.abstract))
    abstract = re.sub(r"^abstract\s*", "", abstract, flags=re.IGNORECASE)
    title = tidy("".join(parser.title)).removeprefix("Title:").strip()
    return ParsedPaper(title=title, abstract=abstract, sections=parser.sections)
