"""Which ``Host`` the app answers: loopback names, plus those ``dfscan app --allow-host`` names.

A browser page on ``evil.example`` can make its own name resolve to 127.0.0.1 (DNS rebinding) and
then talk to the app as if it were its own origin: the app would see ``Host: evil.example``. Streamlit
(1.67) has no setting that checks the Host, so ``HostCheck`` is an ASGI middleware in front of it
(``st.App(middleware=...)``, see ``serve.py``): a request or websocket handshake with any other Host
is refused with 403 before Streamlit sees it.
"""

from __future__ import annotations

import ipaddress
import re

LOOPBACK_NAMES = ("localhost",)
# A host name (RFC 1123 labels) or an IP address; no scheme, port, path or wildcard.
_HOST_NAME = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")
WILDCARD_ADDRESSES = ("0.0.0.0", "::", "")


def normal_host(name: str, option: str = "--allow-host") -> str:
    """A name as ``--allow-host`` (or ``--address``) takes it, lower case; raises ``ValueError``."""
    text = name.strip().lower().rstrip(".")
    bare = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    try:
        return str(ipaddress.ip_address(bare))
    except ValueError:
        pass
    if not _HOST_NAME.match(text):
        raise ValueError(f"{option} {name!r} is not a host name or IP address (give the name alone: "
                         f"no scheme, port or path)")
    return text


def host_of(header: str) -> str | None:
    """The host of a ``Host`` header, without its port, lower case; None when it does not parse."""
    text = header.strip().lower()
    if text.startswith("["):  # [::1]:8501
        end = text.find("]")
        port = text[end + 1:] if end > 0 else None
        if port is None or (port and not re.fullmatch(r":\d{1,5}", port)):
            return None
        bare = text[1:end]
    else:
        bare, _, port = text.partition(":")
        if port and not port.isdigit():
            return None
    try:
        return normal_host(bare)
    except ValueError:
        return None


def allowed(header: str | None, extra: tuple[str, ...] = ()) -> bool:
    """Whether a request with this ``Host`` header may reach the app: a loopback address or name, or
    one of ``extra`` (already ``normal_host``)."""
    host = host_of(header or "")
    if host is None:
        return False
    if host in LOOPBACK_NAMES or host in extra:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bound_host(address: str) -> tuple[str, ...]:
    """The host a specific ``--address`` is reached by, to allow with it; () for a wildcard address or
    a loopback one (always allowed)."""
    if address.strip() in WILDCARD_ADDRESSES:
        return ()
    host = normal_host(address, "--address")
    return () if allowed(host) else (host,)


class HostCheck:
    """ASGI middleware: refuse (403) every HTTP request and websocket handshake whose Host is not allowed."""

    def __init__(self, app, allowed_hosts: tuple[str, ...] = ()):
        self.app = app
        self.allowed_hosts = tuple(normal_host(h) for h in allowed_hosts)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] in ("http", "websocket"):
            headers = dict(scope.get("headers") or ())
            host = headers.get(b"host", b"").decode("latin-1")
            if not allowed(host, self.allowed_hosts):
                await self._refuse(scope, send)
                return
        await self.app(scope, receive, send)

    @staticmethod
    async def _refuse(scope, send) -> None:
        if scope["type"] == "websocket":
            # Closing before accepting makes the server answer the handshake with 403.
            await send({"type": "websocket.close", "code": 1008})
            return
        body = b"dfscan app: this host name is not allowed (start the app with --allow-host NAME)\n"
        await send({"type": "http.response.start", "status": 403,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
