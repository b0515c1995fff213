"""Atomic file writes shared by every package: write under a hidden temporary name in the target's
folder, then ``os.replace`` it into place, so a reader never sees a half-written file."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def publish(temporary: str | os.PathLike, path: str | os.PathLike) -> None:
    """Give a finished temporary file the usual permissions (mkstemp makes it 0600), then rename it
    over ``path`` in one step."""
    os.chmod(temporary, 0o666 & ~_umask())
    os.replace(temporary, path)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[str]:
    """A temporary path beside ``path`` to write to; published on success, removed on failure.
    ``suffix`` matters to writers that pick a format from the extension (``.keras``, ``.png``)."""
    path = Path(path)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(handle)
    try:
        yield temporary
        publish(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as temporary, open(temporary, "wb") as stream:
        stream.write(data)
