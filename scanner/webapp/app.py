"""The Streamlit script of `dfscan app`, served behind the Host check by ``serve.py`` (``streamlit run
serve.py``; see ``scanner.webapp.launch``).

Two pages: "Check a clip" (/check) and "Browse results" (/browse). Arguments after ``--`` are the
app's settings (``scanner.webapp.settings.parse_args``).
"""

from __future__ import annotations

import dataclasses
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import streamlit as st  # noqa: E402

from dfscan.scanner.webapp import browse_page, check_page  # noqa: E402
from dfscan.scanner.webapp.settings import parse_args  # noqa: E402
from dfscan.scanner.webapp.widgets import model_paths_input  # noqa: E402

st.set_page_config(page_title="dfscan", layout="wide", initial_sidebar_state="auto")
started_with = parse_args(sys.argv[1:])
# The sidebar's model paths (started from --models) are drawn on every page, so they are kept across pages.
settings = dataclasses.replace(started_with, models=model_paths_input(started_with.models))


def check() -> None:
    check_page.render(settings)


def browse() -> None:
    browse_page.render(settings)


st.navigation([st.Page(check, title="Check a clip", default=True),
               st.Page(browse, title="Browse results", url_path="browse")]).run()
