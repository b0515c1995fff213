"""The ASGI entry ``dfscan app`` hands to ``streamlit run``: the app (``app.py``) behind ``HostCheck``.

``streamlit run`` finds the ``st.App`` assigned to ``app`` here and serves it with uvicorn; the
arguments after ``--`` (``settings.parse_args``) name the extra hosts to allow, and reach ``app.py``
unchanged. Streamlit's own middleware runs after the Host check, so nothing of the app answers a
foreign Host.
"""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st
from starlette.middleware import Middleware

from dfscan.scanner.webapp.hosts import HostCheck
from dfscan.scanner.webapp.settings import parse_args

app = st.App(Path(__file__).with_name("app.py"),
             middleware=[Middleware(HostCheck, allowed_hosts=parse_args(sys.argv[1:]).allowed_hosts)])
