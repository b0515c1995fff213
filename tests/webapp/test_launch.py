"""`launch` serves the app on 127.0.0.1 and takes the Streamlit server down with it on SIGTERM; the
served app answers only loopback Host names and those named with --allow-host (DNS rebinding)."""

from __future__ import annotations

import base64
import http.client
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from dfscan.scanner.webapp import app_env
from tests.webapp.browser import APP_START_TIMEOUT_S, free_port, healthy, running_app

WAIT_S = 60  # a reply or an exit on a loaded machine: generous, it only ends a test that truly hangs


def listening_addresses(pid: int) -> set[tuple[str, int]]:
    """(address, port) of every socket that process ``pid`` and its children listen on: what the app is
    bound to, read from the kernel, whatever this host's name resolves to."""
    import psutil

    found = set()
    processes = [psutil.Process(pid)]
    processes += processes[0].children(recursive=True)
    for process in processes:
        connections = getattr(process, "net_connections", None) or process.connections
        try:
            found |= {(c.laddr.ip, c.laddr.port) for c in connections(kind="inet") if c.status == psutil.CONN_LISTEN}
        except psutil.Error:
            continue
    return found


LAUNCH = "import sys; from dfscan.scanner.webapp import launch; sys.exit(launch([], None, int(sys.argv[1])))"


def test_launch_serves_on_localhost_and_stops_with_sigterm(tmp_path):
    pytest.importorskip("streamlit", reason="the web app tests need streamlit: pip install -e '.[app]'")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "launch.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, "-c", LAUNCH, str(port)], env=app_env(), stdout=out,
                                   stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + APP_START_TIMEOUT_S
        while not healthy(url):
            assert process.poll() is None and time.monotonic() < deadline, log.read_text(errors="replace")
            time.sleep(0.25)
        listening = listening_addresses(process.pid)
        assert (("127.0.0.1", port) in listening and all(ip in ("127.0.0.1", "::1") for ip, _ in listening)), listening
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=WAIT_S) == 0
        assert not healthy(url)  # the streamlit child went down with launch
    finally:
        if process.poll() is None:
            process.kill()
    text = log.read_text(errors="replace")
    assert f"dfscan app: {url}" in text
    assert f"URL: {url}" in text  # bound to 127.0.0.1, not every interface


def _get(port: int, host: str) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=WAIT_S)
    try:
        connection.putrequest("GET", "/", skip_host=True)
        connection.putheader("Host", host)
        connection.endheaders()
        return connection.getresponse().status
    finally:
        connection.close()


def _websocket_handshake(port: int, host: str) -> bytes:
    """The status line of the app's websocket handshake sent with this Host (and a matching Origin,
    as a rebinding page would send)."""
    key = base64.b64encode(os.urandom(16)).decode()
    request = (f"GET /_stcore/stream HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: streamlit\r\n"
               f"Origin: http://{host}\r\n\r\n")
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT_S) as connection:
        connection.sendall(request.encode())
        return connection.recv(200).split(b"\r\n")[0]


def test_foreign_host_names_are_refused_with_403(tmp_path):
    pytest.importorskip("streamlit", reason="the web app tests need streamlit: pip install -e '.[app]'")
    with running_app([], tmp_path / "streamlit.log", allow_hosts=["box.lan"]) as url:
        port = int(url.rsplit(":", 1)[1])
        assert _get(port, "evil.example") == 403
        assert _get(port, f"evil.example:{port}") == 403
        assert _websocket_handshake(port, f"evil.example:{port}") == b"HTTP/1.1 403 Forbidden"
        assert _get(port, f"127.0.0.1:{port}") == 200
        assert _get(port, f"localhost:{port}") == 200
        assert _get(port, f"box.lan:{port}") == 200  # named with --allow-host
        assert _websocket_handshake(port, f"127.0.0.1:{port}") == b"HTTP/1.1 101 Switching Protocols"
