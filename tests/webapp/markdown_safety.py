"""What a page hands Streamlit to render as Markdown, and whether any of it would render as more than
text (an image the browser fetches, a link, HTML)."""

from __future__ import annotations

import re

from markdown_it import MarkdownIt

_PARSER = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
UNSAFE_TOKENS = {"image", "link_open", "html_inline", "html_block"}
# GitHub-flavoured Markdown, as Streamlit renders it, also links bare URLs (CommonMark does not).
_BARE_URL = re.compile(r"\b(https?|javascript|ftp):|www\.", re.IGNORECASE)
PLAIN_TYPES = {"text", "code", "text_input", "text_area", "number_input"}  # shown as typed, never as Markdown


def _walk(tokens):
    for token in tokens:
        yield token
        yield from _walk(token.children or [])


def unsafe(body: str) -> list[str]:
    """The constructs in ``body`` that would render as more than text."""
    found = [t.type for t in _walk(_PARSER.parse(body)) if t.type in UNSAFE_TOKENS]
    return found + [f"bare URL {m.group(0)}" for m in _BARE_URL.finditer(body)]


def as_read(body: str) -> str:
    """What a reader sees of a Markdown body: its text, without markup."""
    return "".join(t.content for t in _walk(_PARSER.parse(body)) if t.type in ("text", "code_inline"))


def markdown_bodies(app_test) -> list[str]:
    """Every string of an ``AppTest`` run that Streamlit renders as Markdown: element bodies, labels,
    table cells."""
    bodies = []
    for root in (app_test.main, app_test.sidebar):
        for element in root:
            if element.type in PLAIN_TYPES:
                continue
            for attribute in ("value", "label"):
                try:
                    value = getattr(element, attribute, None)
                except Exception:  # noqa: BLE001 - an element without that field
                    continue
                if isinstance(value, str):
                    bodies.append(value)
            if element.type == "table":
                frame = element.value
                bodies += [str(v) for v in frame.to_numpy().ravel()] + [str(i) for i in frame.index]
    return bodies
