"""`dfscan app`: the Streamlit web app (check a clip, browse scan results), started as a subprocess.

The app is a Streamlit script (``app.py``) served behind a Host check (``serve.py``, ``hosts.py``);
``launch`` runs ``streamlit run`` on it headless, with usage statistics off, bound to 127.0.0.1 unless
an address is given. What the app needs (models, verdicts folder, upload limit, host names to answer
besides loopback) travels as script arguments after ``--`` and is parsed by ``settings.parse_args``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from dfscan.scanner.webapp.hosts import WILDCARD_ADDRESSES, bound_host, normal_host
from dfscan.scanner.webapp.settings import DEFAULT_MAX_UPLOAD_MB

APP_SCRIPT = Path(__file__).with_name("app.py")
SERVE_SCRIPT = Path(__file__).with_name("serve.py")  # APP_SCRIPT behind the Host check
ADDRESS = "127.0.0.1"
# The folder that holds the `scanner`, `kernels` and `training` packages (a checkout or site-packages).
PACKAGE_ROOT = Path(__file__).resolve().parents[2]


def allowed_hosts(address: str, allow: list[str] | tuple[str, ...] = ()) -> tuple[str, ...]:
    """The host names the app answers besides loopback: ``allow`` and a specific ``address`` it is
    bound to; raises ``ValueError`` for a name that is not one."""
    return tuple(dict.fromkeys([*(normal_host(name) for name in allow), *bound_host(address)]))


def url_host(address: str) -> str:
    """The host of the URL to print: a wildcard address is reached on loopback from this machine."""
    return ADDRESS if address.strip() in WILDCARD_ADDRESSES else address


def streamlit_command(models: list[Path], verdicts: Path | None, port: int, headless: bool = True,
                      max_upload_mb: int = DEFAULT_MAX_UPLOAD_MB, address: str = ADDRESS,
                      allow_hosts: list[str] | tuple[str, ...] = ()) -> list[str]:
    """The ``streamlit run`` command line of the app."""
    if max_upload_mb < 1:
        raise ValueError(f"the upload limit must be at least 1 MB, got {max_upload_mb}")
    hosts = allowed_hosts(address, allow_hosts)
    command = [
        sys.executable, "-m", "streamlit", "run", str(SERVE_SCRIPT),
        f"--server.port={int(port)}",
        f"--server.address={address}",
        f"--server.headless={'true' if headless else 'false'}",
        f"--server.maxUploadSize={int(max_upload_mb)}",
        "--server.fileWatcherType=none",
        "--server.runOnSave=false",
        "--browser.gatherUsageStats=false",
        f"--browser.serverAddress={url_host(address)}",
        f"--browser.serverPort={int(port)}",
        "--client.toolbarMode=minimal",
        "--client.showErrorDetails=none",  # tracebacks go to the server's stderr, never into the page
        # No table CSV download or clipboard copy: Streamlit writes formula-like cells as they are; the
        # pages' own CSV downloads neutralise them (kernels.csv_text).
        "--client.disableDataExport=true",
        "--",
        f"--max-upload-mb={int(max_upload_mb)}",
        *(f"--allow-host={host}" for host in hosts),
    ]
    if models:
        command += ["--models", *[str(Path(m)) for m in models]]
    if verdicts is not None:
        command += ["--verdicts", str(Path(verdicts))]
    return command


def app_env() -> dict[str, str]:
    """The app's environment: the packages importable, TensorFlow quiet, Streamlit telemetry off."""
    env = dict(os.environ)
    path = [str(PACKAGE_ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(path))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["STREAMLIT_BROWSER_GATHER_USAGE_STATS"] = "false"
    return env


def _exit_code(returncode: int) -> int:
    """Streamlit's exit code; a stop asked for (SIGTERM, Ctrl-C) is a clean exit. Serving an ``st.App``,
    uvicorn shuts down gracefully and then re-raises the signal, so the child ends "killed" by it."""
    return 0 if returncode in (-signal.SIGTERM, -signal.SIGINT) else returncode


def launch(models: list[Path], verdicts: Path | None, port: int, headless: bool = True,
           max_upload_mb: int = DEFAULT_MAX_UPLOAD_MB, address: str = ADDRESS,
           allow_hosts: list[str] | tuple[str, ...] = ()) -> int:
    """Run the app until it is stopped (Ctrl-C or SIGTERM); returns streamlit's exit code (2: streamlit is
    not installed)."""
    try:
        import streamlit  # noqa: F401 - only to give a clear message when the extra is missing
    except ImportError:
        print("dfscan: error: the web app needs streamlit: pip install -e '.[app]'", file=sys.stderr)
        return 2
    command = streamlit_command(models, verdicts, port, headless=headless, max_upload_mb=max_upload_mb,
                                address=address, allow_hosts=allow_hosts)
    print(f"dfscan app: http://{url_host(address)}:{int(port)}", file=sys.stderr, flush=True)
    process = subprocess.Popen(command, env=app_env())
    previous = None
    if threading.current_thread() is threading.main_thread():  # stop the app with us on SIGTERM
        previous = signal.signal(signal.SIGTERM, lambda *_: process.terminate())
    try:
        return _exit_code(process.wait())
    except KeyboardInterrupt:  # Ctrl-C reached streamlit too (same process group); let it finish
        try:
            return _exit_code(process.wait(timeout=10))
        except (subprocess.TimeoutExpired, KeyboardInterrupt):
            return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
