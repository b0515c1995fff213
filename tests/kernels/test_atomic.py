"""kernels.atomic: the one atomic writer (temporary name, fsync, rename; the folder flushed on request)."""

from __future__ import annotations

import os
import stat

import pytest

from kernels import atomic


def _record_fsyncs(monkeypatch) -> list[tuple[str, int]]:
    flushed: list[tuple[str, int]] = []
    real_fsync = os.fsync

    def fsync(fd):
        info = os.fstat(fd)
        flushed.append(("dir" if stat.S_ISDIR(info.st_mode) else "file", info.st_ino))
        real_fsync(fd)

    monkeypatch.setattr(atomic.os, "fsync", fsync)
    return flushed


def test_write_replaces_the_file_in_one_step(tmp_path, monkeypatch):
    flushed = _record_fsyncs(monkeypatch)
    target = tmp_path / "report.json"
    target.write_bytes(b"old")
    atomic.atomic_write_bytes(target, b'{"new": 1}')
    assert target.read_bytes() == b'{"new": 1}'
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]  # no temporary left
    assert flushed == [("file", target.stat().st_ino)]  # the folder only on request
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~_umask()  # not mkstemp's 0600


def test_fsync_dir_flushes_the_folder_after_the_rename(tmp_path, monkeypatch):
    flushed = _record_fsyncs(monkeypatch)
    target = tmp_path / "_SUCCESS"
    atomic.atomic_write_bytes(target, b"", fsync_dir=True)
    assert target.read_bytes() == b""
    assert flushed == [("file", target.stat().st_ino), ("dir", tmp_path.stat().st_ino)]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "part.parquet"
    target.write_bytes(b"old")
    with pytest.raises(OSError, match="disk full"):
        with atomic.atomic_path(target, fsync_dir=True) as temporary:
            assert os.path.basename(temporary).startswith(".part.parquet.")  # hidden from dataset readers
            with open(temporary, "wb") as fh:
                fh.write(b"half")
            raise OSError("disk full")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["part.parquet"]


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
