"""Atomic file writes shared by every package: write under a hidden temporary name in the target's
folder, then ``os.replace`` it into place, so a reader never sees a half-written file.

The rename itself is durable only once the folder is flushed too: ``fsync_dir=True`` does that, for
writers whose file must survive a power cut once written (the scanner's committed parts and run
markers, which a rerun trusts to skip files)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator


def _read_umask() -> int:
    mask = os.umask(0o022)  # the only way to read it; done once, at import, before any thread writes
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_read_umask()


def fsync_folder(folder: str | os.PathLike) -> None:
    """Flush a folder's entries (a rename into it, say) to disk."""
    handle = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def publish(temporary: str | os.PathLike, path: str | os.PathLike, fsync_dir: bool = False) -> None:
    """Give a finished temporary file the usual permissions (mkstemp makes it 0600), flush it to disk,
    then rename it over ``path`` in one step (and flush the folder, with ``fsync_dir``)."""
    os.chmod(temporary, _FILE_MODE)
    handle = os.open(temporary, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)
    os.replace(temporary, path)
    if fsync_dir:
        fsync_folder(Path(path).parent)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".tmp", fsync_dir: bool = False) -> Iterator[str]:
    """A temporary path beside ``path`` to write to; published on success, removed on failure.
    ``suffix`` matters to writers that pick a format from the extension (``.keras``, ``.png``).
    The temporary name is ``.<name>.<random><suffix>``: hidden from dataset readers."""
    path = Path(path)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(handle)
    try:
        yield temporary
        publish(temporary, path, fsync_dir=fsync_dir)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes, fsync_dir: bool = False) -> None:
    with atomic_path(path, fsync_dir=fsync_dir) as temporary, open(temporary, "wb") as stream:
        stream.write(data)
