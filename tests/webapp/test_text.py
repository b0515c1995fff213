"""Untrusted text reads back as exactly itself wherever Streamlit renders Markdown."""

from __future__ import annotations

import pytest

from dfscan.scanner.webapp.text import as_text
from tests.webapp.markdown_safety import as_read, unsafe

HOSTILE = ["![x](https:127.0.0.1:8811/p.png).mp4", "<img src=x onerror=alert(1)>.mp4", "[link](javascript:alert(1))",
           "<https://evil.example/>", "https://evil.example/a.png www.evil.example", "# heading\n---\n- item",
           "**bold** _it_ `code` ~~gone~~ $x^2$ :red[red] :material/home:", "a | b\n--|--\n1 | 2",
           "back\\slash \\![x](y)", "tab\there\rcarriage"]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_render_as_their_own_text(name):
    body = as_text(name)
    assert unsafe(body) == []
    expected = name.replace("\n", "\\x0a").replace("\t", "\\x09").replace("\r", "\\x0d")
    assert as_read(body) == expected


def test_plain_names_are_unchanged_but_for_escapes():
    assert as_read(as_text("holiday 2024.mp4")) == "holiday 2024.mp4"
    assert as_text("clip") == "clip"
    assert as_text(0.5) == "0\\.5"
