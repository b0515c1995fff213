"""`dfscan app`: the Streamlit web app (check a clip, browse scan results), started as a subprocess.

The app is a Streamlit script (``app.py``); ``launch`` runs ``streamlit run`` on it headless, with
usage statistics off, bound to 127.0.0.1. What the app needs (models, verdicts folder, upload limit)
travels as script arguments after ``--`` and is parsed by ``settings.parse_args``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from scanner.webapp.settings import DEFAULT_MAX_UPLOAD_MB

APP_SCRIPT = Path(__file__).with_name("app.py")
ADDRESS = "127.0.0.1"
# The folder that holds the `scanner`, `kernels` and `training` packages (a checkout or site-packages).
PACKAGE_ROOT = Path(__file__).resolve().parents[2]


def streamlit_command(models: list[Path], verdicts: Path | None, port: int, headless: bool = True,
                      max_upload_mb: int = DEFAULT_MAX_UPLOAD_MB) -> list[str]:
    """The ``streamlit run`` command line of the app."""
    if max_upload_mb < 1:
        raise ValueError(f"the upload limit must be at least 1 MB, got {max_upload_mb}")
    command = [
        sys.executable, "-m", "streamlit", "run", str(APP_SCRIPT),
        f"--server.port={int(port)}",
        f"--server.address={ADDRESS}",
        f"--server.headless={'true' if headless else 'false'}",
        f"--server.maxUploadSize={int(max_upload_mb)}",
        "--server.fileWatcherType=none",
        "--server.runOnSave=false",
        "--browser.gatherUsageStats=false",
        f"--browser.serverAddress={ADDRESS}",
        f"--browser.serverPort={int(port)}",
        "--client.toolbarMode=minimal",
        "--client.showErrorDetails=none",  # tracebacks go to the server's stderr, never into the page
        "--",
        f"--max-upload-mb={int(max_upload_mb)}",
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


def launch(models: list[Path], verdicts: Path | None, port: int, headless: bool = True,
           max_upload_mb: int = DEFAULT_MAX_UPLOAD_MB) -> int:
    """Run the app until it is stopped (Ctrl-C or SIGTERM); returns streamlit's exit code (2: streamlit is
    not installed)."""
    try:
        import streamlit  # noqa: F401 - only to give a clear message when the extra is missing
    except ImportError:
        print("dfscan: error: the web app needs streamlit: pip install -e '.[app]'", file=sys.stderr)
        return 2
    command = streamlit_command(models, verdicts, port, headless=headless, max_upload_mb=max_upload_mb)
    print(f"dfscan app: http://{ADDRESS}:{int(port)}", file=sys.stderr, flush=True)
    process = subprocess.Popen(command, env=app_env())
    previous = None
    if threading.current_thread() is threading.main_thread():  # stop the app with us on SIGTERM
        previous = signal.signal(signal.SIGTERM, lambda *_: process.terminate())
    try:
        return process.wait()
    except KeyboardInterrupt:  # Ctrl-C reached streamlit too (same process group); let it finish
        try:
            return process.wait(timeout=10)
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
