"""The streamed rerun decision (scanner.index) against the one it replaced: a dict of the newest committed
row per path, built from Python objects, and a per-entry ``needs_scan``. The old logic lives here only, as
the oracle: on mock archives (files on disk, and random histories) both must pick exactly the same files."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import random

import pytest

from dfscan.scanner import sink, verdicts
from dfscan.scanner.index import CommittedIndex
from dfscan.scanner.walk import FileEntry, walk_archive
from tests.scanner.rows import row, write_two_versions

SHA, OTHER = "a" * 64, "b" * 64
T0 = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)


# --- the oracle: the decision as the driver made it before scanner.index --------------------------------
@dataclasses.dataclass(frozen=True)
class Committed:
    size: int
    mtime_ns: int
    inode: int
    model_sha256: str
    is_error: bool


def old_committed_index(out_dir, archive: str) -> dict[str, Committed]:
    fields = ("size", "mtime_ns", "inode", "model_sha256", "status")
    table = verdicts.read_table(out_dir, columns=["path", "path_bytes", "archive", "scanned_at", *fields],
                                archive=archive)
    newest = verdicts.newest_rows(table)
    return {(os.fsdecode(raw) if raw is not None else path): Committed(size, mtime_ns, inode, sha, status != "ok")
            for path, raw, size, mtime_ns, inode, sha, status in zip(
                newest["path"].to_pylist(), newest["path_bytes"].to_pylist(), *(newest[c].to_pylist() for c in fields))}


def old_needs_scan(entry: FileEntry, committed: dict, model_sha256: str, full: bool, retry_errors: bool) -> bool:
    if full:
        return True
    last = committed.get(entry.path)
    if last is None:
        return True
    if (last.size, last.mtime_ns, last.inode) != (entry.size, entry.mtime_ns, entry.inode):
        return True
    if last.model_sha256 != model_sha256:
        return True
    return retry_errors and last.is_error


def old_selection(out_dir, archive, entries, model_sha256, retry_errors) -> list[str]:
    committed = old_committed_index(out_dir, archive)
    return [e.path for e in entries if old_needs_scan(e, committed, model_sha256, False, retry_errors)]


def new_selection(out_dir, archive, entries, model_sha256, retry_errors, batch=3) -> list[str]:
    index = CommittedIndex.build(out_dir, archive, model_sha256, retry_errors)
    return [e.path for e in index.select(iter(entries), batch=batch)]


def commit(out, run_id, rows) -> None:
    writer = sink.PartWriter(out, run_id)
    writer.add(rows)
    writer.flush()


def stamped(entry: FileEntry, minutes: int, sha: str = SHA, status: str = "ok", **changes) -> dict:
    """A committed row of the walked ``entry`` as ``verdicts.stamp`` writes it (path_bytes, escaped path)."""
    facts = {"size": entry.size, "mtime_ns": entry.mtime_ns, "inode": entry.inode, **changes}
    out = row(entry.path, minutes=minutes, status=status, sha=sha, **facts)
    return verdicts.stamp(out, archive="/arch", model_name="tiny", model_sha256=sha, run_id="r",
                          scanned_at=T0 + dt.timedelta(minutes=minutes), **facts)


# --- one row per case, as the parametrised test of the old needs_scan had ---------------------------------
ENTRY = FileEntry(path="x.mp4", size=10, mtime_ns=5, inode=7)


@pytest.mark.parametrize("changes, sha, status, retry, expected", [
    (None, SHA, "ok", False, True),  # new
    ({}, SHA, "ok", False, False),  # unchanged
    ({"size": 11}, SHA, "ok", False, True),  # size changed
    ({"mtime_ns": 6}, SHA, "ok", False, True),  # mtime_ns changed
    ({"inode": 8}, SHA, "ok", False, True),  # inode changed (replaced by rename)
    ({}, OTHER, "ok", False, True),  # scanned by another model
    ({}, SHA, "error", False, False),  # an error stays an error ...
    ({}, SHA, "error", True, True),  # ... unless --retry-errors
    ({"size": None}, SHA, "ok", False, True),  # a row without the file's stat never matches
    ({}, None, "ok", False, True),  # nor one without a model
    ({}, SHA, None, True, True),  # a row without a status is an error
])
def test_one_file(tmp_path, changes, sha, status, retry, expected):
    if changes is not None:
        commit(tmp_path, "20240101T000000Z-00000001", [stamped(ENTRY, 0, sha=sha, status=status, **changes)])
    assert new_selection(tmp_path, "/arch", [ENTRY], SHA, retry) == (["x.mp4"] if expected else [])
    assert old_selection(tmp_path, "/arch", [ENTRY], SHA, retry) == (["x.mp4"] if expected else [])


def test_mock_archive_rerun_decides_as_before(tmp_path):
    """Files on disk, a first scan's rows and later history; then the archive changes under them."""
    archive, out = tmp_path / "archive", tmp_path / "verdicts"
    names = ["keep.mp4", "changed.mp4", "touched.mp4", "replaced.mp4", "moved.mp4", "other_model.mp4",
             "error.mp4", "fixed_error.mp4", "history.mp4", "tie.mp4", "late_tie.mp4", "sub/deep.mp4",
             "sub/b\xe9.mp4", os.fsdecode(b"raw\xff.mp4"), "elsewhere.mp4"]
    for name in names:
        path = archive / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"v1")
    first = {e.path: e for e in walk_archive(archive)}
    sink.prepare_out_dir(out)
    commit(out, "20240101T000000Z-00000001", [
        stamped(e, 0, sha=OTHER if e.path == "other_model.mp4" else SHA,
                status="error" if "error" in e.path else "ok") for e in first.values()
        if e.path != "elsewhere.mp4"])
    history, tie, late = first["history.mp4"], first["tie.mp4"], first["late_tie.mp4"]
    commit(out, "20240102T000000Z-00000002", [
        stamped(first["fixed_error.mp4"], 60),  # retried once: its newest row is ok
        stamped(history, 30, size=999),  # the newest row of the file: a stale size
        stamped(history, -30),  # matches the file, but older than the others and read last: never the newest
        stamped(tie, 0, size=5),  # same instant as the first scan's row, read later: it wins (a stale size)
        stamped(first["elsewhere.mp4"], 0) | {"archive": "/other"},  # another archive's row counts for nothing
    ])
    commit(out, "20240103T000000Z-00000003", [stamped(late, 0)])  # same instant, read last, matching: it wins
    commit(out, "20230101T000000Z-00000000", [stamped(late, 0, size=3)])  # read first: loses the tie
    # The archive changes.
    (archive / "changed.mp4").write_bytes(b"version two")
    os.utime(archive / "touched.mp4", ns=(1, 1))
    old = os.stat(archive / "replaced.mp4")
    (archive / "tmp").write_bytes(b"v1")  # made while the old file exists: another inode
    os.utime(archive / "tmp", ns=(old.st_atime_ns, old.st_mtime_ns))
    os.replace(archive / "tmp", archive / "replaced.mp4")  # same name, size and mtime; only the inode differs
    os.rename(archive / "moved.mp4", archive / "sub" / "moved_here.mp4")
    (archive / "brand_new.mp4").write_bytes(b"")
    walk = list(walk_archive(archive))
    for retry in (False, True):
        assert new_selection(out, "/arch", walk, SHA, retry) == old_selection(out, "/arch", walk, SHA, retry)
    expected = ["brand_new.mp4", "changed.mp4", "elsewhere.mp4", "history.mp4", "other_model.mp4",
                "replaced.mp4", "tie.mp4", "touched.mp4", "sub/moved_here.mp4"]
    assert new_selection(out, "/arch", walk, SHA, False) == expected
    assert new_selection(out, "/arch", walk, SHA, True) == sorted(expected + ["error.mp4"], key=walk_order(walk))
    # Every file unchanged and scanned by this model is skipped, whatever the history's order.
    assert "keep.mp4" not in expected and "late_tie.mp4" not in expected and "fixed_error.mp4" not in expected


def walk_order(walk):
    position = {e.path: i for i, e in enumerate(walk)}
    return position.__getitem__


def test_random_histories_decide_as_before(tmp_path):
    """Many runs over a few names: rescans, changed stats, other models, errors, equal scanned_at."""
    rng = random.Random(7)
    out = tmp_path / "verdicts"
    sink.prepare_out_dir(out)
    names = [f"d{i % 3}/f{i}.mp4" for i in range(40)] + ["d0/\xe9t\xe9.mp4", os.fsdecode(b"d1/\xfe\xff.mp4")]
    entries = [FileEntry(path=name, size=rng.choice([1, 2]), mtime_ns=rng.choice([5, 6]), inode=rng.choice([7, 8]))
               for name in names]
    for run in range(12):
        rows = []
        for entry in rng.sample(entries, 25):
            rows.append(stamped(entry, rng.choice([0, 1, 2, 3]), sha=rng.choice([SHA, SHA, OTHER]),
                                status=rng.choice(["ok", "ok", "error"]), size=rng.choice([1, 2]),
                                mtime_ns=rng.choice([5, 6]), inode=rng.choice([7, 8])))
        commit(out, f"2024010{run % 9 + 1}T0000{run:02d}Z-{run:08x}", rows)
    for retry in (False, True):
        for batch in (1, 4, 4096):
            old = old_selection(out, "/arch", entries, SHA, retry)
            assert new_selection(out, "/arch", entries, SHA, retry, batch=batch) == old
    assert 0 < len(old_selection(out, "/arch", entries, SHA, False)) < len(entries)  # both kinds of decision


def test_parts_of_an_older_schema_decide_as_before(tmp_path, monkeypatch):
    """Version 1 rows have no path_bytes: the name is the path's text."""
    out = tmp_path / "verdicts"
    write_two_versions(out, monkeypatch)
    entries = [FileEntry(path=p, size=10, mtime_ns=1, inode=7) for p in ("a.mp4", "b.mp4", "c.mp4", "d.mp4", "e.mp4")]
    for retry in (False, True):
        assert new_selection(out, "/arch", entries, "a" * 64, retry) == old_selection(out, "/arch", entries, "a" * 64,
                                                                                        retry)
    assert new_selection(out, "/arch", entries, "a" * 64, True) == ["b.mp4", "e.mp4"]


def test_index_holds_two_digests_per_skippable_file(tmp_path):
    rows = [stamped(FileEntry(f"f{i}.mp4", 1, 2, i), 0, status="error" if i % 4 == 0 else "ok") for i in range(100)]
    commit(tmp_path, "20240101T000000Z-00000001", rows)
    commit(tmp_path, "20240102T000000Z-00000002", rows[:10])  # rescans add rows, not files
    index = CommittedIndex.build(tmp_path, "/arch", SHA, retry_errors=True)
    assert len(index) == 75 and index.path.nbytes == index.stat.nbytes == 75 * 8
    assert list(index.path) == sorted(index.path)
    assert len(CommittedIndex.build(tmp_path, "/arch", SHA, retry_errors=False)) == 100
    assert len(CommittedIndex.build(tmp_path, "/elsewhere", SHA, retry_errors=False)) == 0
    assert CommittedIndex.empty().count(FileEntry("x.mp4", 1, 2, 3) for _ in range(5)) == 5
