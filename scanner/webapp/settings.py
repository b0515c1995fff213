"""What the app was started with: model paths, a verdicts folder, the upload size limit, the host
names it answers besides loopback.

``launch`` passes these to the Streamlit script after ``--``; the script parses them here.
"""

from __future__ import annotations

import argparse
import dataclasses

DEFAULT_MAX_UPLOAD_MB = 2048  # 2 GB
VIDEO_TYPES = ("mp4", "mov", "mkv", "webm", "avi")


@dataclasses.dataclass(frozen=True)
class AppSettings:
    models: tuple[str, ...] = ()
    verdicts: str | None = None
    max_upload_mb: int = DEFAULT_MAX_UPLOAD_MB
    allowed_hosts: tuple[str, ...] = ()  # besides loopback (scanner.webapp.hosts)

    @property
    def max_upload_bytes(self) -> int:
        return self.max_upload_mb * 1024 * 1024


def parse_args(argv: list[str]) -> AppSettings:
    parser = argparse.ArgumentParser(prog="dfscan app", add_help=False)
    parser.add_argument("--models", nargs="*", default=[])
    parser.add_argument("--verdicts", default=None)
    parser.add_argument("--max-upload-mb", type=int, default=DEFAULT_MAX_UPLOAD_MB)
    parser.add_argument("--allow-host", action="append", default=[])
    args, _ = parser.parse_known_args(argv)
    return AppSettings(models=tuple(args.models), verdicts=args.verdicts,
                       max_upload_mb=max(1, args.max_upload_mb), allowed_hosts=tuple(args.allow_host))


def format_bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"  # pragma: no cover
