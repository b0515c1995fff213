"""Atomic file writes shared by every package: write under a hidden temporary name in the target's
folder, then ``os.replace`` it into place, so a reader never sees a half-written file.

The rename itself is durable only once the folder is flushed too: ``fsync_dir=True`` does that, for
writers whose file must survive a power cut once written (the scanner's committed parts and run
markers, which a rerun trusts to skip files).

No write follows a link. The temporary is always a new file (``O_CREAT | O_EXCL | O_NOFOLLOW``, so a
link planted at its name is refused, never written through), its name carries 64 random bits, and
``atomic_file`` writes it through the descriptor that created it, so nobody can swap the name for a
link between the creation and the write. The rename replaces whatever sits at the final name, a
planted link included, without ever writing to the link's target. With ``follow_folder_link=False``
the folder itself must not be a link either (the scanner's OUT_DIR and its ``_runs``)."""

from __future__ import annotations

import contextlib
import json
import os
import re
from pathlib import Path
from typing import BinaryIO, Iterator

_TOKEN_HEX_DIGITS = 16  # 64 random bits: a temporary name nobody can guess ahead


def _read_umask() -> int:
    mask = os.umask(0o022)  # the only way to read it; done once, at import, before any thread writes
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_read_umask()


def temporary_name_pattern(final: str, suffix: str = ".tmp") -> str:
    """The regular expression of every temporary name this module gives a file whose final name
    matches the regular expression ``final``: ``.<final>.<16 hex digits><suffix>``. A writer that
    clears what a killed run left behind deletes these names and no look-alike."""
    return rf"\.{final}\.[0-9a-f]{{{_TOKEN_HEX_DIGITS}}}{re.escape(suffix)}"


def _open_folder(folder: str | os.PathLike, follow_link: bool) -> int:
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC | (0 if follow_link else os.O_NOFOLLOW)
    return os.open(folder, flags)


def _create_temporary(folder_fd: int, name: str, suffix: str) -> tuple[int, str]:
    """A new, empty, private (0600) file beside ``name``; its descriptor and its name in the folder."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    for _ in range(100):
        temporary = f".{name}.{os.urandom(_TOKEN_HEX_DIGITS // 2).hex()}{suffix}"
        try:
            return os.open(temporary, flags, 0o600, dir_fd=folder_fd), temporary
        except FileExistsError:  # someone holds that name (a link, a file): never touch it, pick another
            continue
    raise FileExistsError(f"no free temporary name beside {name}")


def _remove_temporary(folder_fd: int, temporary: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(temporary, dir_fd=folder_fd)


def _publish(fd: int, folder_fd: int, temporary: str, path: Path, fsync_dir: bool) -> None:
    """Give the finished temporary (open as ``fd``) the usual permissions, flush it, check that its
    name still holds this very file, and rename it over ``path`` (flushing the folder, with
    ``fsync_dir``)."""
    os.fchmod(fd, _FILE_MODE)  # private 0600 until now
    os.fsync(fd)
    mine, there = os.fstat(fd), os.stat(temporary, dir_fd=folder_fd, follow_symlinks=False)
    if (mine.st_dev, mine.st_ino) != (there.st_dev, there.st_ino):  # renamed away, something else put there
        raise FileExistsError(f"temporary {temporary} beside {path} was replaced while being written")
    os.replace(temporary, path.name, src_dir_fd=folder_fd, dst_dir_fd=folder_fd)
    if fsync_dir:
        os.fsync(folder_fd)


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, fsync_dir: bool = False,
                follow_folder_link: bool = True) -> Iterator[BinaryIO]:
    """A binary stream to write ``path``'s new content to; published on success, removed on failure.
    The stream writes the temporary through the descriptor that created it (see the module docstring)."""
    path = Path(path)
    folder_fd = _open_folder(path.parent, follow_folder_link)
    try:
        fd, temporary = _create_temporary(folder_fd, path.name, ".tmp")
        try:
            with os.fdopen(fd, "wb", closefd=False) as stream:
                yield stream
            _publish(fd, folder_fd, temporary, path, fsync_dir)
        except BaseException:
            _remove_temporary(folder_fd, temporary)
            raise
        finally:
            os.close(fd)
    finally:
        os.close(folder_fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".tmp", fsync_dir: bool = False) -> Iterator[str]:
    """A temporary path beside ``path`` for writers that need a name, not a stream (Keras, PNG
    encoders); published on success, removed on failure. ``suffix`` matters to writers that pick a
    format from the extension (``.keras``, ``.png``). The temporary is created new, hidden from
    dataset readers (``.<name>.<random><suffix>``); the writer reopens it by name, so keep these
    files out of folders other users can write (the scanner uses ``atomic_file``)."""
    path = Path(path)
    folder_fd = _open_folder(path.parent, follow_link=True)
    try:
        fd, name = _create_temporary(folder_fd, path.name, suffix)
        os.close(fd)
        temporary = str(path.parent / name)
        try:
            yield temporary
            handle = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=folder_fd)
            try:
                _publish(handle, folder_fd, name, path, fsync_dir)
            finally:
                os.close(handle)
        except BaseException:
            _remove_temporary(folder_fd, name)
            raise
    finally:
        os.close(folder_fd)


def atomic_write_bytes(path: str | os.PathLike, data: bytes, fsync_dir: bool = False,
                       follow_folder_link: bool = True) -> None:
    with atomic_file(path, fsync_dir=fsync_dir, follow_folder_link=follow_folder_link) as stream:
        stream.write(data)


def write_json_atomic(path: str | os.PathLike, data) -> None:
    """Write JSON under a temporary name in the same folder, then rename it into place."""
    path = Path(path)
    with atomic_path(path) as temporary, open(temporary, "w") as handle:
        json.dump(data, handle, indent=1, sort_keys=False, default=str)
        handle.write("\n")
