"""Hostile output folders (hostile-archives issue 11, items 3, 6 and 9; night-safety item 4): links
planted in OUT_DIR, an OUT_DIR others can write while root runs, the archive inside OUT_DIR or OUT_DIR
inside the archive, look-alikes of dfscan's temporaries, and writes that fail (no permission, full disk).
No write of dfscan's follows a link or lands outside OUT_DIR; each refusal or failure is one line;
committed parts are never touched."""

from __future__ import annotations

import errno
import json
import os
import stat

import pytest
from typer.testing import CliRunner

from dfscan.scanner import report as report_module
from dfscan.scanner import sink, verdicts
from dfscan.cli import app
from dfscan.scanner.report import build_report, write_report
from dfscan.scanner.run import ScanError, UsageError, run_scan
from tests.scanner.conftest import make_videos, scan_config
from tests.scanner.rows import row

RUN = "20240101T000000Z-0badc0de"
HEX = "0123456789abcdef"
runner = CliRunner()


@pytest.fixture
def victim(tmp_path):
    path = tmp_path / "victim.txt"
    path.write_bytes(b"precious")
    return path


@pytest.fixture
def out(tmp_path):
    path = tmp_path / "out"
    path.mkdir()
    return path


def _names(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    return lines[0]


# --- item 3: links planted in OUT_DIR --------------------------------------------------------------

@pytest.mark.parametrize("plant", ["link", "dangling link", "hard link", "fifo", "folder"])
def test_a_lock_name_that_is_not_a_plain_file_is_refused_and_nothing_written(out, victim, tmp_path, plant):
    lock = out / sink.LOCK_NAME
    created = tmp_path / "created-by-open"
    if plant == "link":
        lock.symlink_to(victim)
    elif plant == "dangling link":
        lock.symlink_to(created)
    elif plant == "hard link":
        os.link(victim, lock)
    elif plant == "fifo":
        os.mkfifo(lock)
    else:
        lock.mkdir()
    with pytest.raises(sink.OutDirRefused, match=r"_lock is .*, not dfscan's lock file; remove it"):
        sink.OutDirLock(out, RUN).acquire()
    assert victim.read_bytes() == b"precious" and not created.exists()


def test_runs_that_is_a_link_is_refused_before_anything_is_written(out, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "theirs.json").write_bytes(b"{}")
    (out / sink.RUNS_DIR).symlink_to(elsewhere)
    with pytest.raises(sink.OutDirRefused, match=r"_runs is not a folder but a symbolic link; .*remove it"):
        sink.prepare_out_dir(out)
    assert _names(elsewhere) == ["theirs.json"]


def test_runs_swapped_for_a_link_mid_run_gets_no_manifest(out, tmp_path):
    """_runs replaced by a link after the checks: the manifest is refused, not written elsewhere."""
    sink.prepare_out_dir(out)
    writer = sink.PartWriter(out, RUN)
    writer.add([row("a.mp4")])
    writer.flush()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (out / sink.RUNS_DIR).rmdir()
    (out / sink.RUNS_DIR).symlink_to(elsewhere)
    with pytest.raises(sink.OutDirFailed, match=rf"^cannot record run {RUN} as complete \({RUN}.json\): "):
        sink.commit_run(out, RUN, writer.parts, "a" * 64, "tiny", {}, {}, [])
    assert list(elsewhere.iterdir()) == [] and not (out / sink.SUCCESS_NAME).exists()


def test_an_out_dir_that_is_a_link_is_refused(tmp_path, out):
    archive = tmp_path / "archive"
    archive.mkdir()
    (tmp_path / "link").symlink_to(out)
    with pytest.raises(sink.OutDirRefused, match=rf"^out dir is a symbolic link: {tmp_path / 'link'}; give the"):
        sink.check_out_dir(tmp_path / "link", archive)
    with pytest.raises(sink.OutDirRefused, match="out dir is a symbolic link"):
        sink.prepare_out_dir(tmp_path / "link")
    writer = sink.PartWriter(tmp_path / "link", RUN)  # swapped in after the checks: no part lands there
    writer.add([row("a.mp4")])
    with pytest.raises(sink.OutDirFailed, match="cannot commit 1 verdict rows"):
        writer.flush()
    assert list(out.iterdir()) == []


def test_links_planted_at_final_names_are_replaced_never_written_through(out, victim):
    """A planted link at a part's, a manifest's or a marker's final name is replaced by the rename
    (refusing it would let anyone who can write OUT_DIR stop the nightly run); its target is untouched."""
    sink.prepare_out_dir(out)
    finals = [out / f"part-{RUN}-000000.parquet", out / sink.RUNS_DIR / f"{RUN}.json",
              out / sink.RUNS_DIR / f"{RUN}.SUCCESS", out / sink.SUCCESS_NAME]
    for final in finals:
        final.symlink_to(victim)
    writer = sink.PartWriter(out, RUN)
    writer.add([row("a.mp4")])
    writer.flush()
    sink.commit_run(out, RUN, writer.parts, "a" * 64, "tiny", {}, {}, [])
    assert victim.read_bytes() == b"precious"
    assert all(stat.S_ISREG(os.lstat(final).st_mode) for final in finals)
    assert verdicts.read_table(out)["path"].to_pylist() == ["a.mp4"] and sink.completed_runs(out) == {RUN}


@pytest.mark.parametrize("euid, mode, refused", [(0, 0o777, True), (0, 0o775, True), (0, 0o1777, False),
                                                 (0, 0o755, False), (1000, 0o777, False)])
def test_root_refuses_an_out_dir_others_can_write(tmp_path, out, monkeypatch, euid, mode, refused):
    archive = tmp_path / "archive"
    archive.mkdir()
    monkeypatch.setattr(sink.os, "geteuid", lambda: euid)
    out.chmod(mode)
    if refused:
        with pytest.raises(sink.OutDirRefused, match=rf"^{out} is writable by other users \(mode {mode:o}\) and "
                                                     rf"dfscan runs as root, .*; run chmod go-w {out} "):
            sink.check_out_dir(out, archive)
    else:
        sink.check_out_dir(out, archive)


def test_root_refuses_a_runs_folder_others_can_write(out, monkeypatch):
    (out / sink.RUNS_DIR).mkdir()
    (out / sink.RUNS_DIR).chmod(0o777)
    monkeypatch.setattr(sink.os, "geteuid", lambda: 0)
    with pytest.raises(sink.OutDirRefused, match=r"_runs is writable by other users"):
        sink.prepare_out_dir(out)


def test_the_cli_refuses_a_linked_out_dir_in_one_line(tmp_path, tiny_model, out):
    archive = tmp_path / "archive"
    archive.mkdir()
    (tmp_path / "link").symlink_to(out)
    result = runner.invoke(app, ["run", str(archive), "--model", str(tiny_model), "--out", str(tmp_path / "link")])
    assert result.exit_code == 2
    assert _one_line(result.stderr).startswith("dfscan: error: out dir is a symbolic link:")
    assert list(out.iterdir()) == []


# --- item 6: the archive inside OUT_DIR; only dfscan's own temporaries are deleted -----------------

@pytest.mark.parametrize("where", ["archive", "parent", "parent spelled with .."])
def test_an_out_dir_that_is_or_holds_the_archive_is_refused(tmp_path, tiny_model, where):
    archive = tmp_path / "photos" / "archive"
    archive.mkdir(parents=True)
    mine = archive / ".part-notes.parquet.draft.tmp"  # the user's own file, which a run used to delete
    mine.write_bytes(b"draft")
    out = {"archive": archive, "parent": tmp_path / "photos", "parent spelled with ..": archive / ".." / ".."}[where]
    with pytest.raises(UsageError, match=r"is the archive or contains it; write the verdicts to a folder outside"):
        run_scan(scan_config(archive, tiny_model, out))
    assert mine.read_bytes() == b"draft"
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == [
        "photos", "photos/archive", f"photos/archive/{mine.name}"]  # no _lock, no _runs: nothing written


@pytest.mark.parametrize("where", ["subfolder", "deeper, not yet made", "spelled with ..", "through a link"])
def test_an_out_dir_inside_the_archive_is_refused_and_nothing_written(tmp_path, tiny_model, where):
    """Night-safety item 4: the people who fill the archive could plant or replace dfscan's own files
    in an OUT_DIR inside it."""
    archive = tmp_path / "archive"
    make_videos(archive, ["a.mp4"])
    (archive / "b").mkdir()
    (tmp_path / "elsewhere").symlink_to(archive / "b")  # a folder outside that is really inside
    out = {"subfolder": archive / "verdicts", "deeper, not yet made": archive / "b" / "c" / "verdicts",
           "spelled with ..": tmp_path / "x" / ".." / "archive" / "verdicts",
           "through a link": tmp_path / "elsewhere" / "verdicts"}[where]
    before = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    with pytest.raises(UsageError, match=r"is inside the archive .*; write the verdicts to a folder outside"):
        run_scan(scan_config(archive, tiny_model, out))
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == before  # nothing created


def test_the_cli_refuses_an_out_dir_inside_the_archive_in_one_line(tmp_path, tiny_model):
    archive = tmp_path / "archive"
    make_videos(archive, ["a.mp4"])
    result = runner.invoke(app, ["run", str(archive), "--model", str(tiny_model), "--out", str(archive / "verdicts"),
                                 "--gpus", "0"])
    assert result.exit_code == 2, result.output
    assert _one_line(result.stderr) == (f"dfscan: error: out dir {archive / 'verdicts'} is inside the archive "
                                        f"{archive}; write the verdicts to a folder outside the archive "
                                        f"(e.g. --out /verdicts beside /archive)")
    assert not (archive / "verdicts").exists()


def test_an_out_dir_beside_the_archive_with_a_similar_name_is_fine(tmp_path):
    archive = tmp_path / "archive"
    archive.mkdir()
    sink.check_out_dir(tmp_path / "archive-verdicts", archive)  # a prefix of the name, not a folder inside
    assert (tmp_path / "archive-verdicts").is_dir()


def test_only_dfscans_own_temporaries_are_cleared(out, victim):
    runs = out / sink.RUNS_DIR
    runs.mkdir()
    ours = [out / f".part-{RUN}-000003.parquet.{HEX}.tmp", out / f"._SUCCESS.{HEX}.tmp",
            runs / f".{RUN}.json.{HEX}.tmp", runs / f".{RUN}.SUCCESS.{HEX}.tmp"]
    for path in ours:
        path.write_bytes(b"half")
    theirs = [out / ".part-notes.tmp", out / f".part-{RUN}-000003.parquet.draft.tmp",
              out / f".part-{RUN}-000003.parquet.{HEX}.tmp.bak", runs / f".notes.json.{HEX}.tmp"]
    for path in theirs:
        path.write_bytes(b"keep me")
    link = out / f".part-{RUN}-000004.parquet.{HEX}.tmp"  # our name, but a link: never ours
    link.symlink_to(victim)
    folder = out / f".part-{RUN}-000005.parquet.{HEX}.tmp"
    folder.mkdir()
    sink.prepare_out_dir(out)
    assert not any(path.exists() for path in ours)
    assert all(path.read_bytes() == b"keep me" for path in theirs)
    assert link.is_symlink() and folder.is_dir() and victim.read_bytes() == b"precious"


# --- item 9: failed writes are one line, exit 1, and leave committed parts alone --------------------

def _fail_open_of(name: str, error: OSError, monkeypatch) -> None:
    real_open = os.open

    def open_or_fail(path, *args, **kwargs):
        if os.path.basename(os.fspath(path)) == name:
            raise error
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(sink.os, "open", open_or_fail)


def test_a_read_only_lock_is_one_line_and_exit_1(tmp_path, tiny_model, out, monkeypatch):
    """As root chmod cannot make _lock read-only: the open fails as it would for another user."""
    archive = tmp_path / "archive"
    archive.mkdir()
    (out / sink.LOCK_NAME).write_bytes(b"")
    _fail_open_of(sink.LOCK_NAME, PermissionError(errno.EACCES, "Permission denied"), monkeypatch)
    with pytest.raises(ScanError, match=rf"^cannot open the lock file {out / '_lock'}: Permission denied$"):
        run_scan(scan_config(archive, tiny_model, out))
    result = runner.invoke(app, ["run", str(archive), "--model", str(tiny_model), "--out", str(out)])
    assert result.exit_code == 1
    assert _one_line(result.stderr) == f"dfscan: scan failed: cannot open the lock file {out / '_lock'}: " \
                                       f"Permission denied"
    assert _names(out) == ["_lock"]


def test_a_full_disk_while_taking_the_lock_is_one_line(out, monkeypatch):
    def full(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(sink.os, "pwrite", full)
    with pytest.raises(sink.OutDirFailed, match=r"^cannot write the lock file .*: No space left on device$"):
        sink.OutDirLock(out, RUN).acquire()
    monkeypatch.undo()
    sink.OutDirLock(out, RUN).acquire().release()  # the descriptor was closed and the flock dropped with it


def _one_committed_part(out):
    """A writer of RUN that has committed a.mp4's row, and that part's bytes."""
    sink.prepare_out_dir(out)
    writer = sink.PartWriter(out, RUN)
    writer.add([row("a.mp4")])
    writer.flush()
    return writer, (out / f"part-{RUN}-000000.parquet").read_bytes()


def test_a_full_disk_mid_part_keeps_committed_parts_and_the_next_run_carries_on(out, monkeypatch):
    writer, committed = _one_committed_part(out)
    real_write = sink.pq.write_table

    def full(table, where, **kwargs):
        where.write(b"PAR1 half a part")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(sink.pq, "write_table", full)
    writer.add([row("b.mp4")])
    with pytest.raises(sink.OutDirFailed, match=r"^cannot commit 1 verdict rows to .*: No space left on device; "
                                                r"the parts committed so far stay"):
        writer.flush()
    assert _names(out) == ["_runs", f"part-{RUN}-000000.parquet"]  # no temporary left behind
    assert (out / f"part-{RUN}-000000.parquet").read_bytes() == committed
    monkeypatch.setattr(sink.pq, "write_table", real_write)  # space again: the next flush commits
    writer.flush()
    assert sorted(verdicts.read_table(out)["path"].to_pylist()) == ["a.mp4", "b.mp4"]


def test_a_read_only_runs_keeps_the_parts_and_the_next_run_adopts_them(out, monkeypatch):
    writer, committed = _one_committed_part(out)
    real_write = sink.atomic_write_bytes

    def read_only(path, data, **kwargs):
        if path.parent.name == sink.RUNS_DIR:
            raise PermissionError(errno.EACCES, "Permission denied")
        real_write(path, data, **kwargs)

    monkeypatch.setattr(sink, "atomic_write_bytes", read_only)
    with pytest.raises(sink.OutDirFailed, match=rf"^cannot record run {RUN} as complete \({RUN}.json\): "
                                                rf"Permission denied; its 1 parts are committed, and the next"):
        sink.commit_run(out, RUN, writer.parts, "a" * 64, "tiny", {}, {}, [])
    assert (out / f"part-{RUN}-000000.parquet").read_bytes() == committed
    assert sink.orphan_parts(out) == [f"part-{RUN}-000000.parquet"]
    monkeypatch.setattr(sink, "atomic_write_bytes", real_write)
    sink.prepare_out_dir(out)
    assert sink.orphan_parts(out) == [f"part-{RUN}-000000.parquet"]  # still there for the next run to adopt
    assert not [p for p in out.rglob(".*") if p.name.endswith(".tmp")]


def test_a_runs_folder_without_write_permission_is_refused_before_any_part(out, monkeypatch):
    (out / sink.RUNS_DIR).mkdir()
    real_access = os.access
    monkeypatch.setattr(sink.os, "access", lambda path, mode: (
        False if os.path.basename(os.fspath(path)) == sink.RUNS_DIR else real_access(path, mode)))
    with pytest.raises(sink.OutDirFailed, match=r"^cannot record runs in .*_runs: it is not writable$"):
        sink.prepare_out_dir(out)


def test_a_report_export_replaces_a_planted_link_and_a_failed_write_is_one_line(out, victim, tmp_path, monkeypatch):
    sink.prepare_out_dir(out)
    writer = sink.PartWriter(out, RUN)
    writer.add([row("a.mp4")])
    writer.flush()
    report = build_report(out)
    dest = tmp_path / "newest.csv"
    dest.symlink_to(victim)
    write_report(report, dest)
    assert victim.read_bytes() == b"precious" and not dest.is_symlink()
    assert dest.read_text().splitlines()[1].startswith("a.mp4,")

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(report_module, "atomic_write_bytes", full)
    with pytest.raises(ValueError, match=rf"^cannot write {dest}: No space left on device$"):
        write_report(report, dest)


def test_a_full_disk_then_a_read_only_runs_fail_in_one_line_and_the_next_runs_carry_on(ray_cluster, tiny_model,
                                                                                       tmp_path, monkeypatch):
    """The scan end to end: the faults land in the driver's sink, the library raises one line (the CLI's
    exit 1), committed parts stay byte for byte, and the next run completes with no temporary left."""
    archive, out = tmp_path / "archive", tmp_path / "out"
    names = make_videos(archive, [f"v{i}.mp4" for i in range(6)])
    config = scan_config(archive, tiny_model, out, batch_size=2, commit_rows=2, commit_seconds=3600, address=ray_cluster)
    real_write_table, real_atomic_write = sink.pq.write_table, sink.atomic_write_bytes

    def disk_full_after_one_part(table, where, **kwargs):
        if not sink.committed_parts(out):
            return real_write_table(table, where, **kwargs)
        where.write(b"PAR1 half a part")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(sink.pq, "write_table", disk_full_after_one_part)
    with pytest.raises(ScanError, match=r"^cannot commit 2 verdict rows to .*: No space left on device; the parts"):
        run_scan(config)
    (first,) = sink.committed_parts(out)
    committed = (out / first).read_bytes()
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]
    monkeypatch.setattr(sink.pq, "write_table", real_write_table)

    second = run_scan(config)
    assert (second.scanned, second.skipped) == (4, 2)
    assert sorted(verdicts.read_table(out)["path"].to_pylist()) == names  # one row per file, none twice
    assert (out / first).read_bytes() == committed
    manifest = json.loads((out / "_runs" / f"{second.run_id}.json").read_text())
    assert manifest["adopted_parts"] == [first]

    touched = archive / names[0]
    st = touched.stat()
    os.utime(touched, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))

    def runs_read_only(path, data, **kwargs):
        if path.parent.name == sink.RUNS_DIR:
            raise PermissionError(errno.EACCES, "Permission denied")
        real_atomic_write(path, data, **kwargs)

    monkeypatch.setattr(sink, "atomic_write_bytes", runs_read_only)
    before = {name: (out / name).read_bytes() for name in sink.committed_parts(out)}
    with pytest.raises(ScanError, match=r"^cannot record run .* Permission denied; its 1 parts are committed"):
        run_scan(config)
    (kept,) = set(sink.committed_parts(out)) - set(before)  # the touched file's row, committed before the fault
    assert all((out / name).read_bytes() == data for name, data in before.items())
    monkeypatch.setattr(sink, "atomic_write_bytes", real_atomic_write)

    last = run_scan(config)
    assert (last.scanned, last.skipped) == (0, 6)
    assert json.loads((out / "_runs" / f"{last.run_id}.json").read_text())["adopted_parts"] == sorted([first, kept])
    assert json.loads((out / "_SUCCESS").read_text()) == {"run_id": last.run_id}
    assert sorted(verdicts.read_table(out)["path"].to_pylist()) == sorted(names + [names[0]])
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]
