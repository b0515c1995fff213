"""kernels.atomic: the one atomic writer (temporary name, fsync, rename; the folder flushed on request)."""

from __future__ import annotations

import errno
import os
import re
import stat
from pathlib import Path

import pytest

from dfscan.kernels import atomic
from tests.kernels.fsyncs import record_fsyncs


def test_write_replaces_the_file_in_one_step(tmp_path, monkeypatch):
    flushed = record_fsyncs(monkeypatch)
    target = tmp_path / "report.json"
    target.write_bytes(b"old")
    atomic.atomic_write_bytes(target, b'{"new": 1}')
    assert target.read_bytes() == b'{"new": 1}'
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]  # no temporary left
    assert flushed == [("file", target.stat().st_ino)]  # the folder only on request
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~_umask()  # not mkstemp's 0600


def test_fsync_dir_flushes_the_folder_after_the_rename(tmp_path, monkeypatch):
    flushed = record_fsyncs(monkeypatch)
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


def test_a_link_planted_at_the_final_name_is_replaced_never_written_through(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious")
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "_SUCCESS").symlink_to(victim)
    atomic.atomic_write_bytes(folder / "_SUCCESS", b"mine")
    assert victim.read_bytes() == b"precious"
    assert not (folder / "_SUCCESS").is_symlink() and (folder / "_SUCCESS").read_bytes() == b"mine"


def test_the_temporary_is_written_through_its_own_descriptor(tmp_path):
    """Someone who can write the folder swaps the temporary for a link to a victim mid-write: the bytes
    still go to dfscan's own file, the victim is untouched, and nothing is published."""
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious")
    folder = tmp_path / "out"
    folder.mkdir()
    with pytest.raises(FileExistsError, match="replaced while being written"):
        with atomic.atomic_file(folder / "manifest.json") as stream:
            (temporary,) = [p for p in folder.iterdir()]
            temporary.unlink()
            temporary.symlink_to(victim)
            stream.write(b"mine")
    assert victim.read_bytes() == b"precious"
    assert list(folder.iterdir()) == []  # nothing published, the planted link cleared with the temporary


def test_a_folder_that_is_a_link_is_refused_on_request(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "runs").symlink_to(elsewhere)
    with pytest.raises(OSError) as refused:
        atomic.atomic_write_bytes(tmp_path / "runs" / "r.json", b"{}", follow_folder_link=False)
    assert refused.value.errno in (errno.ELOOP, errno.ENOTDIR)  # O_NOFOLLOW | O_DIRECTORY on a link
    assert list(elsewhere.iterdir()) == []
    atomic.atomic_write_bytes(tmp_path / "runs" / "r.json", b"{}")  # by default a linked folder is the caller's choice
    assert (elsewhere / "r.json").read_bytes() == b"{}"


def test_temporary_names_are_new_unguessable_and_matched_exactly(tmp_path):
    with atomic.atomic_path(tmp_path / "part.parquet") as first, atomic.atomic_path(tmp_path / "part.parquet") as second:
        assert first != second
        pattern = re.compile(atomic.temporary_name_pattern(r"part\.parquet"))
        assert pattern.fullmatch(os.path.basename(first)) and pattern.fullmatch(os.path.basename(second))
        Path(first).write_bytes(b"1")
        Path(second).write_bytes(b"2")
    assert (tmp_path / "part.parquet").read_bytes() == b"1"  # the outer writer publishes last
    assert [p.name for p in tmp_path.iterdir()] == ["part.parquet"]
    assert not pattern.fullmatch(".part.parquet.k1ll3d.tmp") and not pattern.fullmatch(".part.parquet.tmp")


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
