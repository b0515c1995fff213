"""Which files and folders an atomic write flushes."""

from __future__ import annotations

import os
import stat

from dfscan.kernels import atomic


def record_fsyncs(monkeypatch) -> list[tuple[str, int]]:
    """Every fsync through kernels.atomic from now on, as ("file" | "dir", inode)."""
    flushed: list[tuple[str, int]] = []
    real_fsync = os.fsync

    def fsync(fd):
        info = os.fstat(fd)
        flushed.append(("dir" if stat.S_ISDIR(info.st_mode) else "file", info.st_ino))
        real_fsync(fd)

    monkeypatch.setattr(atomic.os, "fsync", fsync)
    return flushed
