"""Untrusted text (file names, model names, card fields, error messages) shown as text, never as Markdown.

Most of Streamlit's text elements (markdown, captions, alerts, subheaders, progress and spinner text,
labels, table cells) render GitHub-flavoured Markdown. An archive's file name is chosen by whoever put
the file there: rendered as Markdown, ``![x](http://host/p.png).mp4`` makes every browser that shows it
fetch that URL, and ``[link](javascript:...)`` becomes a link. ``as_text`` makes any string read back
as exactly itself.
"""

from __future__ import annotations

import string
import unicodedata

# Every ASCII punctuation character may be backslash-escaped in CommonMark, and escaping each one
# defeats every construct: images, links, autolinks (``https:...`` no longer parses as a scheme),
# emphasis, code, HTML, headings, lists, tables, and Streamlit's own ``:red[...]`` and ``$...$``.
_ESCAPED = {ord(c): "\\" + c for c in string.punctuation}


def _visible(char: str) -> str:
    """A control character (a newline in a file name would start a new Markdown block) as \\xNN."""
    return f"\\x{ord(char):02x}" if unicodedata.category(char) == "Cc" else char


def as_text(value: object) -> str:
    """``value`` as Markdown source that renders as exactly ``str(value)`` (control characters shown
    as ``\\xNN``), for an f-string into any Streamlit element that renders Markdown."""
    visible = "".join(_visible(c) for c in str(value))
    return visible.translate(_ESCAPED)
