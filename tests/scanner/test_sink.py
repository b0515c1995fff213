"""The sink: atomic parts, manifest then _SUCCESS, the OUT_DIR lock, and the newest-row index."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

from dfscan.scanner import sink, verdicts
from dfscan.scanner.index import CommittedIndex
from dfscan.scanner.walk import FileEntry
from tests.kernels.fsyncs import record_fsyncs
from tests.scanner.conftest import REPO, child_env
from tests.scanner.rows import row


def test_parts_are_hidden_until_renamed(tmp_path, monkeypatch):
    sink.prepare_out_dir(tmp_path)
    writer = sink.PartWriter(tmp_path, "run1", commit_rows=1000)
    writer.add([row("a.mp4"), row("b.mp4")])
    assert sink.committed_parts(tmp_path) == []  # buffered, not yet committed
    seen_during_write = {}
    real_write = pq.write_table

    def write_and_look(table, where, **kwargs):
        real_write(table, where, **kwargs)
        # The bytes are on disk under a hidden name: a reader sees no rows yet.
        seen_during_write["names"] = sorted(p.name for p in tmp_path.iterdir())
        seen_during_write["rows"] = pads.dataset(str(tmp_path)).count_rows()

    monkeypatch.setattr(sink.pq, "write_table", write_and_look)
    writer.flush()
    assert seen_during_write["rows"] == 0
    assert [n for n in seen_during_write["names"] if not n.startswith((".", "_"))] == []
    assert any(n.startswith(".part-run1-000000") for n in seen_during_write["names"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["_runs", "part-run1-000000.parquet"]
    assert pads.dataset(str(tmp_path)).count_rows() == 2


def test_a_write_that_dies_leaves_no_visible_file(tmp_path, monkeypatch):
    sink.prepare_out_dir(tmp_path)
    writer = sink.PartWriter(tmp_path, "run1")
    writer.add([row("a.mp4")])

    def die(table, where, **kwargs):
        where.write(b"PAR1 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(sink.pq, "write_table", die)
    with pytest.raises(sink.OutDirFailed, match=r"^cannot commit 1 verdict rows to .*: disk full; the parts"):
        writer.flush()
    assert sink.committed_parts(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["_runs"]  # the half-written part was removed
    # A driver killed mid-write leaves its temporary part behind instead: hidden, then cleared.
    (tmp_path / ".part-20240101T000000Z-0badc0de-000000.parquet.0123456789abcdef.tmp").write_bytes(b"PAR1 half")
    assert verdicts.open_dataset(tmp_path).count_rows() == 0  # the dataset still reads: the debris is hidden
    sink.prepare_out_dir(tmp_path)  # the next run (under the lock) clears the debris
    assert [p.name for p in tmp_path.iterdir()] == ["_runs"]


def test_commit_writes_manifest_then_success(tmp_path, monkeypatch):
    sink.prepare_out_dir(tmp_path)
    writer = sink.PartWriter(tmp_path, "run1", commit_rows=2)
    writer.add([row("a.mp4"), row("b.mp4")])  # reaches commit_rows: committed
    writer.add([row("c.mp4")])
    writer.flush()
    order, options = [], []
    real = sink.atomic_write_bytes
    monkeypatch.setattr(sink, "atomic_write_bytes", lambda path, data, **kw: (
        order.append(path.name), options.append(kw), real(path, data, **kw)))
    sink.commit_run(tmp_path, "run1", writer.parts, "a" * 64, "tiny", {"batch_size": 4}, {"scanned": 3}, [])
    assert order == ["run1.json", "run1.SUCCESS", "_SUCCESS"]
    # each rename is flushed before the next file says it happened; no folder of OUT_DIR may be a link
    assert options == [{"fsync_dir": True, "follow_folder_link": False}] * 3
    manifest = json.loads((tmp_path / "_runs" / "run1.json").read_text())
    assert manifest["files"] == ["part-run1-000000.parquet", "part-run1-000001.parquet"]
    assert manifest["row_counts"] == {"part-run1-000000.parquet": 2, "part-run1-000001.parquet": 1}
    assert manifest["schema_version"] == verdicts.SCHEMA_VERSION == 6 and manifest["model_sha256"] == "a" * 64
    assert manifest["config"] == {"batch_size": 4}
    assert json.loads((tmp_path / "_SUCCESS").read_text()) == {"run_id": "run1"}
    assert sink.completed_runs(tmp_path) == {"run1"} and sink.orphan_parts(tmp_path) == []
    meta = pq.read_schema(tmp_path / "part-run1-000000.parquet").metadata
    assert meta[b"dfscan.schema_version"] == str(verdicts.SCHEMA_VERSION).encode()


def test_parts_and_markers_are_flushed_with_their_folder(tmp_path, monkeypatch):
    """A rename is durable only once its folder is fsync'd: the sink asks for it on every file."""
    flushed = record_fsyncs(monkeypatch)
    sink.prepare_out_dir(tmp_path)
    writer = sink.PartWriter(tmp_path, "run1")
    writer.add([row("a.mp4")])
    writer.flush()
    part = (tmp_path / "part-run1-000000.parquet").stat().st_ino
    assert flushed == [("file", part), ("dir", tmp_path.stat().st_ino)]
    flushed.clear()
    sink.commit_run(tmp_path, "run1", writer.parts, "a" * 64, "tiny", {}, {}, [])
    runs, top = (tmp_path / "_runs").stat().st_ino, tmp_path.stat().st_ino
    assert [kind for kind, _ in flushed] == ["file", "dir"] * 3
    assert [ino for kind, ino in flushed if kind == "dir"] == [runs, runs, top]


def test_parts_of_a_killed_run_are_orphans_until_adopted(tmp_path):
    sink.prepare_out_dir(tmp_path)
    writer = sink.PartWriter(tmp_path, "20240101T000000Z-dead", commit_rows=1)
    writer.add([row("a.mp4")])
    assert sink.orphan_parts(tmp_path) == ["part-20240101T000000Z-dead-000000.parquet"]
    assert sink.part_run_id("part-20240101T000000Z-dead-000000.parquet") == "20240101T000000Z-dead"


def test_commit_by_time(tmp_path, monkeypatch):
    """The sink's own clock is stepped by hand: a loaded machine's pauses cannot commit early."""
    now = [1000.0]
    monkeypatch.setattr(sink, "time", type("Clock", (), {"monotonic": staticmethod(lambda: now[0]),
                                                         "perf_counter": staticmethod(time.perf_counter)}))
    sink.prepare_out_dir(tmp_path)
    writer = sink.PartWriter(tmp_path, "run1", commit_rows=1000, commit_seconds=30.0)
    writer.add([row("a.mp4")])
    now[0] += 29.9
    writer.add([])
    assert writer.parts == []
    now[0] += 0.1
    writer.add([])  # the driver loop calls this while waiting for results
    assert [p.rows for p in writer.parts] == [1]


def test_lock_refuses_a_second_writer(tmp_path):
    with sink.OutDirLock(tmp_path, "first"):
        with pytest.raises(sink.OutDirLocked, match=r"another dfscan run is writing .*run first"):
            sink.OutDirLock(tmp_path, "second").acquire()
    with sink.OutDirLock(tmp_path, "third"):  # released: the next run gets it
        pass


def test_lock_dies_with_its_holder(tmp_path):
    """A SIGKILLed run leaves no stale lock: the kernel drops the flock with the process."""
    code = ("import sys, time\nfrom pathlib import Path\nfrom dfscan.scanner.sink import OutDirLock\n"
            "OutDirLock(Path(sys.argv[1]), 'holder').acquire()\nprint('locked', flush=True)\ntime.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], cwd=REPO, env=child_env(),
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(sink.OutDirLocked, match="holder"):
            sink.OutDirLock(tmp_path, "mine").acquire()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    sink.OutDirLock(tmp_path, "mine").acquire().release()


def test_committed_index_takes_the_newest_row(tmp_path):
    sink.prepare_out_dir(tmp_path)
    writer = sink.PartWriter(tmp_path, "run1")
    writer.add([row("a.mp4", minutes=5, status="error"), row("b.mp4", minutes=1),
                row("c.mp4", minutes=1, archive="/other")])
    writer.flush()
    writer.add([row("a.mp4", minutes=9, size=99), row("b.mp4", minutes=0, size=1)])  # b's is older
    writer.flush()
    index = CommittedIndex.build(tmp_path, "/arch", "a" * 64, retry_errors=True)
    walk = [FileEntry("a.mp4", 99, 1, 7), FileEntry("b.mp4", 10, 1, 7), FileEntry("c.mp4", 10, 1, 7)]
    assert list(index.needs_scan(walk)) == [False, False, True]  # a's newest row is ok, c is another archive's
    newest = verdicts.newest_rows(verdicts.read_table(tmp_path))
    assert newest["path"].to_pylist() == ["a.mp4", "b.mp4", "c.mp4"]
    assert newest["size"].to_pylist() == [99, 10, 10]


def test_empty_out_dir_reads_as_no_rows(tmp_path):
    assert len(CommittedIndex.build(tmp_path, "/arch", "a" * 64, retry_errors=False)) == 0
    assert verdicts.read_table(tmp_path).num_rows == 0
