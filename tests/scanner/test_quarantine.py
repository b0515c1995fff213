"""Night-safety item 1: a damaged committed part never stops a night. The run moves it to
OUT_DIR/_quarantine/ (recorded in its manifest, one line on stderr) and scans its files again; the
readers (`dfscan report`, the web app) read around it, move nothing, and say so. No command shows a
traceback for a damaged part, manifest or marker."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from dfscan.kernels.artifact import sha256_file

from dfscan.kernels.card import card_path
from dfscan.scanner import quarantine, sink, verdicts
from dfscan.cli import app
from dfscan.scanner.report import build_report, format_report
from tests.scanner.conftest import REPO, child_env, make_videos
from tests.scanner.rows import row

runner = CliRunner()
MAGIC = "Parquet magic bytes not found in footer"


def _commit(out, run_id, *parts_rows, archive="/arch"):
    """One completed run of ``out``: a part per list of rows."""
    sink.prepare_out_dir(out)
    writer = sink.PartWriter(out, run_id)
    for rows in parts_rows:
        writer.add([{**r, "archive": archive} for r in rows])
        writer.flush()
    sink.commit_run(out, run_id, writer.parts, "a" * 64, "tiny", {}, {}, [])
    return [out / part.name for part in writer.parts]


def _truncate(part, keep=0.6):
    """What bit rot or a lost tail leaves: the part cut off, its footer gone."""
    data = part.read_bytes()
    part.write_bytes(data[: int(len(data) * keep)])


def _rot_middle(part):
    """Bytes flipped inside a column chunk, the footer intact: only reading the data finds it."""
    data = bytearray(part.read_bytes())
    footer = int.from_bytes(data[-8:-4], "little") + 8
    for i in range(4, len(data) - footer):
        data[i] ^= 0x5A
    part.write_bytes(bytes(data))


def _listing(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.fixture
def out(tmp_path):
    """Two completed runs: a.mp4, b.mp4 in run1's first part, c.mp4 in its second, d.mp4 in run2's."""
    out = tmp_path / "verdicts"
    _commit(out, "run1", [row("a.mp4"), row("b.mp4")], [row("c.mp4")])
    _commit(out, "run2", [row("d.mp4", minutes=5)])
    return out


def _first_part(out):
    return out / "part-run1-000000.parquet"


# --- reading around a damaged part ---------------------------------------------------------------

@pytest.mark.parametrize("damage", [_truncate, _rot_middle, lambda part: part.write_bytes(b"")],
                         ids=["cut off", "rotten middle", "empty"])
def test_readers_skip_a_damaged_part_and_name_it(out, damage):
    damage(_first_part(out))
    read = verdicts.read_parts(out)
    assert sorted(read.table["path"].to_pylist()) == ["c.mp4", "d.mp4"]
    assert [part.name for part in read.damaged] == ["part-run1-000000.parquet"]
    assert [p.name for p in read.readable] == ["part-run1-000001.parquet", "part-run2-000000.parquet"]
    assert "\n" not in read.damaged[0].reason and len(read.damaged[0].reason) <= 300
    assert [part.name for part in verdicts.damaged_parts(out)] == ["part-run1-000000.parquet"]


def test_a_cut_off_part_says_what_pyarrow_said(out):
    _truncate(_first_part(out))
    (damaged,) = verdicts.damaged_parts(out)
    assert damaged.reason.startswith("ArrowInvalid: ") and MAGIC in damaged.reason


def test_sound_parts_are_read_in_one_pass_and_none_is_damaged(out):
    read = verdicts.read_parts(out, columns=["path"])
    assert read.damaged == [] and read.table.column_names == ["path"] and read.table.num_rows == 4
    assert verdicts.damaged_parts(out) == []


# --- the run's quarantine ----------------------------------------------------------------------------

def test_quarantine_moves_a_damaged_part_out_and_records_when_and_why(out):
    _truncate(_first_part(out))
    damaged_bytes = _first_part(out).read_bytes()
    (record,) = quarantine.quarantine_damaged(out, "run3")
    assert record["part"] == "part-run1-000000.parquet" and record["run_id"] == "run3"
    assert record["moved_to"] == "_quarantine/part-run1-000000.parquet" and MAGIC in record["reason"]
    assert record["at"].startswith("20") and record["at"].endswith("+00:00")
    assert (out / record["moved_to"]).read_bytes() == damaged_bytes  # moved, never deleted or rewritten
    assert not _first_part(out).exists()
    # The dataset reads whole again; its files have no row left, so the incremental filter scans them.
    assert verdicts.read_parts(out).damaged == []
    assert verdicts.newest_rows(verdicts.read_table(out, archive="/arch"))["path"].to_pylist() == ["c.mp4", "d.mp4"]
    assert quarantine.quarantine_damaged(out, "run4") == []  # nothing left to move


def test_a_second_part_of_the_same_name_does_not_overwrite_the_first(out):
    folder = out / quarantine.QUARANTINE_DIR
    folder.mkdir()
    (folder / "part-run1-000000.parquet").write_bytes(b"moved before")
    _truncate(_first_part(out))
    (record,) = quarantine.quarantine_damaged(out, "run3")
    assert record["moved_to"] == "_quarantine/part-run1-000000.parquet.1"
    assert (folder / "part-run1-000000.parquet").read_bytes() == b"moved before"


def test_a_link_at_the_quarantine_name_is_refused_and_nothing_moved(out, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (out / quarantine.QUARANTINE_DIR).symlink_to(elsewhere)
    _truncate(_first_part(out))
    with pytest.raises(sink.OutDirRefused, match="_quarantine is not a folder"):
        quarantine.quarantine_damaged(out, "run3")
    assert _first_part(out).exists() and list(elsewhere.iterdir()) == []


def test_the_manifest_lists_the_moved_parts_and_readers_show_them(out):
    _truncate(_first_part(out))
    moved = quarantine.quarantine_damaged(out, "run3")
    sink.commit_run(out, "run3", [], "a" * 64, "tiny", {}, {}, [], quarantined=moved)
    manifest = json.loads((out / sink.RUNS_DIR / "run3.json").read_text())
    assert manifest["quarantined"] == moved
    assert quarantine.quarantined(out) == moved
    text = format_report(build_report(out))
    assert "damaged parts moved to _quarantine/ by earlier runs: 1" in text
    assert f"_quarantine/part-run1-000000.parquet at {moved[0]['at']} by run run3: ArrowInvalid: " in text


# --- dfscan report and the web app: read around, move nothing, say so ---------------------------

def test_report_reads_around_a_damaged_part_moves_nothing_and_says_so(out, tmp_path):
    _truncate(_first_part(out))
    before = _listing(out)
    result = runner.invoke(app, ["report", str(out), "--json", str(tmp_path / "r.json")])
    assert result.exit_code == 0, result.output
    assert "files: 2   rows: 2" in result.stdout
    assert ("damaged parts skipped: 1 (their rows are not counted; the next dfscan run moves them to _quarantine/ "
            "and scans their files again)") in result.stdout
    assert "  part-run1-000000.parquet: ArrowInvalid: " in result.stdout and MAGIC in result.stdout
    assert _listing(out) == before  # nothing moved, nothing written there
    exported = json.loads((tmp_path / "r.json").read_text())
    assert [part["name"] for part in exported["damaged_parts"]] == ["part-run1-000000.parquet"]


DAMAGES = {
    "manifest cut off": lambda out: (out / "_runs" / "run1.json").write_text('{"run_id": "ru'),
    "manifest not UTF-8": lambda out: (out / "_runs" / "run1.json").write_bytes(b"\xff\xfe{"),
    "manifest a list": lambda out: (out / "_runs" / "run1.json").write_text("[1, 2]"),
    "manifest's trust rotten": lambda out: (out / "_runs" / "run1.json").write_text(json.dumps(
        {"model_sha256": "a" * 64, "model_trust": {"summary": 3, "warnings": "x"}, "quarantined": "x"})),
    "manifest's quarantine rotten": lambda out: ((out / "_runs" / "run1.json").write_text(json.dumps(
        {"quarantined": [1, {"moved_to": 3}, {"moved_to": "_quarantine/part-x.parquet", "at": None}]})),
        (out / "_quarantine").mkdir(), (out / "_quarantine" / "part-x.parquet").write_bytes(b"rotten")),
    "manifest a folder": lambda out: ((out / "_runs" / "run1.json").unlink(), (out / "_runs" / "run1.json").mkdir()),
    "_SUCCESS garbage": lambda out: (out / "_SUCCESS").write_bytes(b"\x00\xff garbage"),
    "run SUCCESS garbage": lambda out: (out / "_runs" / "run1.SUCCESS").write_bytes(b"\x00\xff"),
    "_lock garbage": lambda out: (out / "_lock").write_bytes(b"\xff" * 5000),
    "quarantine a file": lambda out: (out / "_quarantine").write_bytes(b"x"),
}


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_report_survives_damaged_manifests_and_markers(out, damage):
    DAMAGES[damage](out)
    result = runner.invoke(app, ["report", str(out)])
    assert result.exit_code == 0 and result.exception is None, result.output
    assert "files: 4   rows: 4" in result.stdout and "Traceback" not in result.output


def test_the_web_app_reads_around_a_damaged_part_and_moves_nothing(out):
    pytest.importorskip("pandas", reason="the web app needs the app extra")
    from dfscan.scanner.webapp import verdicts as vd

    _truncate(_first_part(out))
    before = _listing(out)
    data = vd.load(out)
    assert data.files == 2 and sorted(data.newest["path"]) == ["c.mp4", "d.mp4"]
    assert [part.name for part in data.damaged] == ["part-run1-000000.parquet"]
    (note,) = vd.damage_notes(data)
    assert note.startswith("1 damaged verdict part(s) could not be read and were skipped")
    assert _listing(out) == before
    row_c = data.newest[data.newest["path"] == "c.mp4"].iloc[0].to_dict()
    assert vd.recorded_indices(out, row_c) == [0, 3, 5]  # a row's frames are still found around the damage
    quarantine.quarantine_damaged(out, "run3")  # what the next run does
    assert vd.damage_notes(vd.load(out)) == [
        "1 damaged part(s) were moved to _quarantine/ by earlier runs, and their files scanned again."]


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_the_web_app_survives_damaged_manifests_and_markers(out, damage):
    pytest.importorskip("pandas", reason="the web app needs the app extra")
    from dfscan.scanner.webapp import verdicts as vd

    DAMAGES[damage](out)
    data = vd.load(out)
    assert data.files == 4 and data.damaged == []
    assert vd.damage_notes(data) == ([] if damage != "manifest's quarantine rotten" else [
        "1 damaged part(s) were moved to _quarantine/ by earlier runs, and their files scanned again."])


def test_the_web_app_says_so_when_every_part_is_damaged(tmp_path):
    pytest.importorskip("pandas", reason="the web app needs the app extra")
    from dfscan.scanner.webapp import verdicts as vd

    out = tmp_path / "verdicts"
    (part,) = _commit(out, "run1", [row("a.mp4")])
    _truncate(part)
    with pytest.raises(vd.VerdictsError, match=r"every verdict part is damaged \(1 parts cannot be read\); the next "
                                                r"`dfscan run` moves them to _quarantine/"):
        vd.load(out)


# --- the run, end to end (one Ray scan, in a child process as a user runs it) -------------------

@pytest.mark.ray
def test_a_run_over_a_damaged_part_quarantines_it_rescans_its_files_and_finishes(tmp_path, tiny_model):
    archive, out = tmp_path / "archive", tmp_path / "verdicts"
    names = make_videos(archive, ["a.mp4", "b.mp4", "c.mp4"])
    sha = sha256_file(tiny_model)
    assert json.loads(card_path(tiny_model).read_text())["sha256"] == sha

    def committed(name):  # the row a finished night left: this file, this model, so a rerun skips it
        info = os.stat(archive / name)
        return row(name, size=info.st_size, mtime_ns=info.st_mtime_ns, inode=info.st_ino, sha=sha,
                   path_bytes=name.encode())

    first, second = _commit(out, "20240101T000000Z-00000001", [committed("a.mp4"), committed("b.mp4")],
                            [committed("c.mp4")], archive=str(archive))
    _truncate(first)
    (out / "_runs" / "20240101T000000Z-00000001.json").write_text('{"run_id": "2024')  # and the rest rots too
    (out / "_SUCCESS").write_bytes(b"\x00\xff")
    (out / "_lock").write_bytes(b"\xff" * 100)
    damaged_bytes = first.read_bytes()
    result = subprocess.run([sys.executable, "-c", "from dfscan.cli import app; app()", "run", str(archive),
                             "--model", str(tiny_model), "--out", str(out), "--gpus", "0", "--workers", "1",
                             "--batch-size", "2", "--json"], cwd=REPO, env=child_env(), capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    notice = [line for line in result.stderr.splitlines() if "cannot be read" in line]
    assert notice == [f"dfscan: the committed part {first.name} cannot be read (ArrowInvalid: Could not open Parquet "
                      f"input source '{first}': {MAGIC}. Either the file is corrupted or this is not a parquet "
                      f"file.); moved it to {out / '_quarantine' / first.name} and its files are scanned again"]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["scanned"] == 2 and summary["skipped"] == 1  # a and b again; c's row was sound
    assert (out / "_quarantine" / first.name).read_bytes() == damaged_bytes and not first.exists()
    manifest = json.loads((out / "_runs" / f"{summary['run_id']}.json").read_text())
    (record,) = manifest["quarantined"]
    assert record["part"] == first.name and MAGIC in record["reason"] and record["run_id"] == summary["run_id"]
    newest = verdicts.newest_rows(verdicts.read_table(out))
    assert sorted(newest["path"].to_pylist()) == names and second.exists()
    assert {r["path"]: r["run_id"] for r in newest.select(["path", "run_id"]).to_pylist()} == {
        "a.mp4": summary["run_id"], "b.mp4": summary["run_id"], "c.mp4": "r1"}
    report = runner.invoke(app, ["report", str(out)])
    assert report.exit_code == 0 and "damaged parts moved to _quarantine/ by earlier runs: 1" in report.stdout
