"""`launch` serves the app on 127.0.0.1 and takes the Streamlit server down with it on SIGTERM."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time

import pytest

from scanner.webapp import app_env
from tests.webapp.browser import free_port, healthy


def _reachable_elsewhere(port: int) -> bool:
    """Whether the port answers on this host's non-loopback address (when it has one)."""
    try:
        address = socket.gethostbyname(socket.gethostname())
    except OSError:
        return False
    if address.startswith("127."):
        return False
    try:
        socket.create_connection((address, port), timeout=2).close()
        return True
    except OSError:
        return False


LAUNCH = "import sys; from scanner.webapp import launch; sys.exit(launch([], None, int(sys.argv[1])))"


def test_launch_serves_on_localhost_and_stops_with_sigterm(tmp_path):
    pytest.importorskip("streamlit", reason="the web app tests need streamlit: pip install -e '.[app]'")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "launch.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, "-c", LAUNCH, str(port)], env=app_env(), stdout=out,
                                   stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not healthy(url):
            assert process.poll() is None and time.monotonic() < deadline, log.read_text(errors="replace")
            time.sleep(0.25)
        assert not _reachable_elsewhere(port)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
        assert not healthy(url)  # the streamlit child went down with launch
    finally:
        if process.poll() is None:
            process.kill()
    text = log.read_text(errors="replace")
    assert f"dfscan app: {url}" in text
    assert f"URL: {url}" in text  # bound to 127.0.0.1, not every interface
