"""Only loopback Host names (and those named with --allow-host) reach the app: DNS rebinding."""

from __future__ import annotations

import asyncio

import pytest
from typer.testing import CliRunner

from dfscan.cli import app as cli
from dfscan.scanner.webapp import allowed_hosts, streamlit_command
from dfscan.scanner.webapp.hosts import HostCheck, allowed, host_of
from dfscan.scanner.webapp.settings import parse_args


@pytest.mark.parametrize("header, ok", [
    ("127.0.0.1:8501", True), ("localhost:8501", True), ("LOCALHOST", True), ("[::1]:8501", True),
    ("127.0.0.2", True), ("evil.example", False), ("evil.example:8501", False), ("127.0.0.1.nip.io", False),
    ("localhost.evil.example", False), ("", False), ("127.0.0.1:x", False), ("[::1]junk", False),
])
def test_only_loopback_hosts_are_allowed_by_default(header, ok):
    assert allowed(header) is ok


def test_named_hosts_are_allowed_with_any_port_and_case():
    hosts = allowed_hosts("127.0.0.1", ["Box.LAN", "10.0.0.7"])
    assert hosts == ("box.lan", "10.0.0.7")  # loopback needs no naming
    assert allowed("box.lan:8501", hosts) and allowed("BOX.lan", hosts) and allowed("10.0.0.7:80", hosts)
    assert not allowed("evil.box.lan", hosts)
    assert allowed_hosts("0.0.0.0") == ()  # a wildcard address names no host
    assert allowed_hosts("192.168.1.5") == ("192.168.1.5",)  # the address it is bound to
    assert host_of("[::1]:80") == "::1"
    for bad in ("http://box.lan", "box.lan:8501", "*.lan", "box lan", ""):
        with pytest.raises(ValueError, match="is not a host name or IP address"):
            allowed_hosts("127.0.0.1", [bad])


def _call(middleware: HostCheck, scope: dict) -> list[dict]:
    sent, reached = [], []

    async def receive():
        return {"type": "http.request"}

    async def send(message):
        sent.append(message)

    async def inner(scope, receive, send):
        reached.append(scope["type"])
        await send({"type": "http.response.start", "status": 200, "headers": []})

    middleware.app = inner
    asyncio.run(middleware(scope, receive, send))
    return [m.get("status", m["type"]) for m in sent] + [f"reached {r}" for r in reached]


def test_host_check_refuses_foreign_hosts_before_the_app():
    check = HostCheck(None, allowed_hosts=("box.lan",))
    http = {"type": "http", "path": "/"}
    websocket = {"type": "websocket", "path": "/_stcore/stream"}
    assert _call(check, {**http, "headers": [(b"host", b"evil.example:8501")]}) == [403, "http.response.body"]
    assert _call(check, {**http, "headers": []}) == [403, "http.response.body"]  # HTTP/1.0 without Host
    assert _call(check, {**websocket, "headers": [(b"host", b"evil.example")]}) == ["websocket.close"]
    assert _call(check, {**http, "headers": [(b"host", b"127.0.0.1:8501")]}) == [200, "reached http"]
    assert _call(check, {**websocket, "headers": [(b"host", b"box.lan:8501")]}) == [200, "reached websocket"]
    assert _call(check, {"type": "lifespan"}) == [200, "reached lifespan"]


def test_command_serves_the_host_checked_app_and_passes_the_names(tmp_path):
    command = streamlit_command([], None, 8999, address="0.0.0.0", allow_hosts=["box.lan"])
    assert command[4].endswith("scanner/webapp/serve.py")
    assert "--server.address=0.0.0.0" in command and "--browser.serverAddress=127.0.0.1" in command
    assert parse_args(command[command.index("--") + 1:]).allowed_hosts == ("box.lan",)


def test_cli_refuses_a_host_that_is_not_a_name():
    result = CliRunner().invoke(cli, ["app", "--allow-host", "https://box.lan/"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1] == (
        "dfscan: error: --allow-host 'https://box.lan/' is not a host name or IP address (give the name alone: "
        "no scheme, port or path)")
