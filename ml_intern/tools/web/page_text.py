"""HTML pages as Markdown (beautifulsoup4 + markdownify), and a stdlib text extractor for parsers of known
pages (search results, arXiv HTML)."""

from __future__ import annotations

import itertools
import re
from html.parser import HTMLParser
from typing import TYPE_CHECKING

from ml_intern.tools.base import ToolError

if TYPE_CHECKING:  # beautifulsoup4 and markdownify load at the first page converted (~0.2 s), not at start
    from bs4 import BeautifulSoup, Tag

MAX_HTML_CHARS = 2_500_000  # longer pages are cut before parsing (time and memory)
MAX_HTML_TAGS = 100_000  # and so are pages with more tags: parsing and converting cost per tag
BOILERPLATE = ["nav", "aside", "script", "style", "noscript", "svg", "form", "button", "template", "iframe"]
BOILERPLATE += ["head", "dialog"]
SKIPPED_TAGS = frozenset({"script", "style", "noscript", "svg", "head", "template", "nav", "footer", "math"})
BLOCK_TAGS = frozenset(
    {"p", "div", "section", "article", "br", "li", "ul", "ol", "tr", "table", "pre", "blockquote", "figure"}
    | {"figcaption", "h1", "h2", "h3", "h4", "h5", "h6", "dt", "dd", "header"}
)


class TextExtractor(HTMLParser):
    """Collects visible text; subclasses route it (`write`) and watch elements (`open_tag`, `close_tag`)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip_depth = 0  # > 0 while inside an element whose content is not shown

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._skip_depth:
            self._skip_depth += tag in SKIPPED_TAGS
            return
        attributes = {name: value or "" for name, value in attrs}
        if tag in SKIPPED_TAGS:
            self._skip_depth = 1
            if tag == "math" and attributes.get("alttext"):
                self.write(f" ${attributes['alttext']}$ ")
            return
        if tag in BLOCK_TAGS:
            self.write("\n")
        self.open_tag(tag, attributes)

    def handle_endtag(self, tag: str) -> None:
        if self._skip_depth:
            self._skip_depth -= tag in SKIPPED_TAGS
            return
        if tag in BLOCK_TAGS:
            self.write("\n")
        self.close_tag(tag)

    def handle_data(self, data: str) -> None:
        if not self._skip_depth:
            self.write(data)

    def write(self, text: str) -> None:
        """Receive a piece of visible text."""
        self.parts.append(text)

    def open_tag(self, tag: str, attributes: dict[str, str]) -> None:
        """Hook: a shown element starts."""

    def close_tag(self, tag: str) -> None:
        """Hook: a shown element ends."""


def tidy(text: str) -> str:
    """Collapse runs of spaces and blank lines."""
    lines = (re.sub(r"[ \t\r\f\v\xa0]+", " ", line).strip() for line in text.split("\n"))
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def code_language(pre: Tag) -> str:
    """The language of a code block from `class="language-x"` on the <pre> or its <code>."""
    from bs4 import Tag

    for element in (pre, pre.find("code")):
        classes = (element.get("class") or []) if isinstance(element, Tag) else []
        for name in classes:
            if name.startswith(("language-", "lang-")):
                return name.split("-", 1)[1]
    return ""


def hidden_or_inline_image(tag: Tag) -> bool:
    """Navigation by role, content hidden from readers, or an image inlined as a data: URL."""
    if tag.get("role") == "navigation" or tag.get("aria-hidden") == "true":
        return True
    return tag.name == "img" and str(tag.get("src") or "").startswith("data:")


def main_content(soup: BeautifulSoup) -> Tag:
    """The page's <main> or <article> when it has one, else its body, without boilerplate elements."""
    for element in soup(BOILERPLATE):
        element.decompose()
    for element in soup.find_all(hidden_or_inline_image):
        element.decompose()
    for element in soup(["header", "footer"]):  # the site's, not an article's own header
        if not element.find_parent(["main", "article"]):
            element.decompose()
    for math in soup("math"):  # keep formulas as their LaTeX
        math.replace_with(f" ${math['alttext']}$ " if math.get("alttext") else "")
    return soup.find("main") or soup.find("article") or soup.body or soup


def html_to_markdown(html: str) -> str:
    """An HTML page as Markdown: headings, links, tables and fenced code kept; navigation dropped.

    Pages nested too deeply for the converter come back as plain text."""
    from bs4 import BeautifulSoup

    html = capped(html)
    try:
        markdown = soup_to_markdown(BeautifulSoup(html, "lxml"))
    except RecursionError:
        return plain_text(html)
    return re.sub(r"\n{3,}", "\n\n", "\n".join(line.rstrip() for line in markdown.split("\n"))).strip()


def capped(html: str) -> str:
    """The first MAX_HTML_CHARS characters of a page, cut before its MAX_HTML_TAGS-th tag."""
    html = html[:MAX_HTML_CHARS]
    tags = re.finditer("<", html)
    cut = next(itertools.islice(tags, MAX_HTML_TAGS, None), None)
    return html[: cut.start()] if cut else html


def soup_to_markdown(soup: BeautifulSoup) -> str:
    """The page's main content converted by markdownify (recursive: deep nesting raises RecursionError)."""
    from markdownify import MarkdownConverter

    converter = MarkdownConverter(
        heading_style="ATX",
        bullets="-",
        code_language_callback=code_language,
        escape_underscores=False,  # names like dataset_text_field stay searchable
        escape_asterisks=False,
        escape_misc=False,
    )
    return converter.convert_soup(main_content(soup))


def plain_text(html: str) -> str:
    """The visible text of a page, without structure (stdlib parser, no recursion)."""
    extractor = TextExtractor()
    extractor.feed(html)
    extractor.close()
    return tidy("".join(extractor.parts))


def has_class(attributes: dict[str, str], name: str) -> bool:
    """Whether an element's class attribute lists `name`."""
    return name in attributes.get("class", "").split()


def page_of_text(header: str, text: str, offset: int, size: int) -> str:
    """`size` characters of `text` from `offset`, saying how to read on."""
    if offset and offset >= len(text):
        raise ToolError(f"offset {offset} is past the end of the text ({len(text):,} characters).")
    chunk = text[offset : offset + size] or "(no text)"
    end = offset + len(chunk)
    footer = f"\n\n[characters {offset:,}-{end:,} of {len(text):,}; call again with offset={end} for more]"
    return f"{header}\n\n{chunk}" + (footer if end < len(text) or offset else "")
