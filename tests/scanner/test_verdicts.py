"""The verdict row: the rule, rows as the worker and the driver made them, newest row per file, counts,
and a folder holding parts of two schema versions."""

from __future__ import annotations

import csv
import datetime as dt
import os
import random

import numpy as np
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

from dfscan.kernels.clips import Clip
from dfscan.kernels.errors import ErrorClass, VideoError
from dfscan.kernels.probe import Probe
from dfscan.scanner import sink, verdicts
from dfscan.scanner.index import CommittedIndex
from dfscan.scanner.policy import CrashVerdict
from dfscan.scanner.report import build_report, write_report
from dfscan.scanner.walk import FileEntry
from tests.scanner.rows import T0, V1_SCHEMA, row, write_two_versions

PROBE = Probe(path="/arch/a.mp4", size_bytes=3000, container="mp4", codec="h264", profile="High", width=128,
              height=96, pix_fmt="yuv420p", bit_depth=8, chroma="420", frame_count=30, frame_count_source="packets",
              fps=25.0, duration_s=1.2, has_audio=False, keyframes=(0, 12, 24))


# --- the rows, written out: the columns each schema version added, with the values they must hold ------
# Version 1's columns of a worker's row, for the four clips of test_clip_rows_are_the_rows_the_worker_built.
FACTS_V1 = {"codec": "h264", "width": 128, "height": 96, "frame_count": 30, "fps": 25.0, "duration_s": 1.2}
NO_FACTS_V1 = dict.fromkeys(FACTS_V1)
WORKER_ROWS_V1 = [
    {"path": "a.mp4", "threshold": 0.5, "frame_indices": [0, 10, 19, 29], **FACTS_V1, "decoder": "pyav",
     "sampling": "keyframe", "worker": "host:1234/gpu0", "status": "ok", "error_class": None, "error_message": None,
     "p_fake": 0.5, "verdict": "fake"},
    {"path": "b.mp4", "threshold": 0.5, "frame_indices": [0, 12, 24, 29], **FACTS_V1, "decoder": "dali-cpu",
     "sampling": "keyframe", "worker": "host:1234/gpu0", "status": "ok", "error_class": None, "error_message": None,
     "p_fake": 0.25, "verdict": "real"},
    {"path": "c.mp4", "threshold": 0.5, "frame_indices": None, **NO_FACTS_V1, "decoder": None, "sampling": "keyframe",
     "worker": "host:1234/gpu0", "status": "error", "error_class": "NOT_VIDEO",
     "error_message": "c.mp4: no video stream", "p_fake": None, "verdict": None},
    {"path": "d.mp4", "threshold": 0.5, "frame_indices": None, **FACTS_V1, "decoder": "pyav", "sampling": "keyframe",
     "worker": "host:1234/gpu0", "status": "error", "error_class": "DECODE_ERROR", "error_message": "frame 12: bad",
     "p_fake": None, "verdict": None},
]
# What versions 2 to 6 added to the same rows (the ok ones read band 0, so their conclusion is the verdict;
# Clip's crop is None: these clips were made by hand, not read).
ADDED_LATER = [
    {"rotation": 0, "display_width": 128, "display_height": 96, "frames_replaced": 0, "crop": None,
     "face_found": None, "face_frames": None, "face_box": None, "fallback_from": None, "fallback_reason": None,
     "conclusion": "fake", "inconclusive_band": 0.0, "untested_reason": None},
    {"rotation": 0, "display_width": 128, "display_height": 96, "frames_replaced": 0, "crop": None,
     "face_found": None, "face_frames": None, "face_box": None, "fallback_from": None, "fallback_reason": None,
     "conclusion": "real", "inconclusive_band": 0.0, "untested_reason": None},
    {"rotation": None, "display_width": None, "display_height": None, "frames_replaced": None, "crop": None,
     "face_found": None, "face_frames": None, "face_box": None, "fallback_from": None, "fallback_reason": None,
     "conclusion": None},
    {"rotation": 0, "display_width": 128, "display_height": 96, "frames_replaced": None, "crop": None,
     "face_found": None, "face_frames": None, "face_box": None, "fallback_from": None, "fallback_reason": None,
     "conclusion": None},
]


def test_the_verdict_rule_is_fake_at_or_above_the_threshold_and_inconclusive_near_it():
    def outcome(p, threshold, band):
        made = verdicts.ok_outcome(p, threshold, band)
        return made["verdict"], made["conclusion"]

    assert outcome(0.5, 0.5, 0.0) == ("fake", "fake")
    assert outcome(0.4999, 0.5, 0.0) == ("real", "real")
    assert outcome(0.0, 0.0, 0.0) == ("fake", "fake") and outcome(1.0, 1.0, 0.0) == ("fake", "fake")
    # The band is open: 0.4 and 0.6 are outside a band of 0.1 around 0.5; the verdict column keeps the call.
    assert [outcome(p, 0.5, 0.1) for p in (0.39, 0.4, 0.41, 0.5, 0.59, 0.6)] == [
        ("real", "real"), ("real", "real"), ("real", "inconclusive"), ("fake", "inconclusive"),
        ("fake", "inconclusive"), ("fake", "fake")]
    assert verdicts.ok_outcome(np.float32(0.75), 0.8, 0.1) == {
        "status": "ok", "error_class": None, "error_message": None, "p_fake": 0.75, "verdict": "real",
        "conclusion": "inconclusive", "inconclusive_band": 0.1, "untested_reason": None}
    # Version 6: a clip outside the model's scope is untested whatever p_fake says; the verdict keeps the call.
    assert verdicts.ok_outcome(0.99, 0.5, 0.1, "trained on synthetic videos only") == {
        "status": "ok", "error_class": None, "error_message": None, "p_fake": 0.99, "verdict": "fake",
        "conclusion": "untested", "inconclusive_band": 0.1, "untested_reason": "trained on synthetic videos only"}
    assert verdicts.error_outcome(ErrorClass.NOT_VIDEO, "x: not a video") == {
        "status": "error", "error_class": "NOT_VIDEO", "error_message": "x: not a video", "p_fake": None,
        "verdict": None, "conclusion": None}
    assert type(verdicts.error_outcome(ErrorClass.NOT_VIDEO, "m")["error_class"]) is str  # the value, not the enum


def test_clip_rows_are_the_rows_the_worker_built():
    p_fake = np.array([0.5, 0.25, 0.0, 0.875], dtype=np.float32)
    threshold = float(np.float32(0.5))
    clips = [
        Clip("/arch/a.mp4", probe=PROBE, indices=np.array([0, 10, 19, 29]), decoder="pyav"),  # p == threshold
        Clip("/arch/b.mp4", probe=PROBE, indices=np.array([0, 12, 24, 29]), decoder="dali-cpu"),
        Clip("/arch/c.mp4", error=VideoError(ErrorClass.NOT_VIDEO, "c.mp4: no video stream")),  # no probe
        Clip("/arch/d.mp4", probe=PROBE, decoder="pyav", error=VideoError(ErrorClass.DECODE_ERROR, "frame 12: bad")),
    ]
    for i, clip in enumerate(clips):
        rel = clip.path.rsplit("/", 1)[1]
        made = verdicts.clip_row(rel, clip, float(p_fake[i]) if clip.ok else None, threshold=threshold,
                                 band=0.0, sampling="keyframe", worker="host:1234/gpu0")
        # Version 1's columns in the order version 1 wrote them, and what later versions added.
        assert [k for k in made if k in WORKER_ROWS_V1[i]] == list(WORKER_ROWS_V1[i])
        assert made == {**WORKER_ROWS_V1[i], **ADDED_LATER[i]}
    assert verdicts.clip_row("a.mp4", clips[0], 0.5, threshold=0.5, band=0.1, sampling="uniform", worker="w")["verdict"] == "fake"
    retried = Clip("/arch/e.mp4", probe=PROBE, indices=np.array([0, 10, 19, 29]), decoder="pyav",
                   fallback_from="dali-gpu", fallback_reason="DECODE_ERROR: DALI: no decoder left")
    made = verdicts.clip_row("e.mp4", retried, 0.5, threshold=0.5, band=0.1, sampling="uniform", worker="w")
    assert (made["decoder"], made["fallback_from"], made["fallback_reason"]) == (
        "pyav", "dali-gpu", "DECODE_ERROR: DALI: no decoder left")
    assert verdicts.clip_row("c.mp4", clips[2], None, threshold=0.5, band=0.1, sampling="uniform", worker="w")["codec"] is None


def test_driver_rows_and_the_stamp_are_the_rows_the_driver_built():
    file = dict(archive="/arch", size=3000, mtime_ns=17, inode=99)
    crashes = (CrashVerdict("bad.mkv", ErrorClass.DECODER_CRASH, "the file killed its worker 2 times: boom"),
               CrashVerdict("bad.mkv", ErrorClass.TIMEOUT, "scanning the file alone took longer than 60 s, 2 times"))
    for verdict in crashes:
        driver = verdicts.driver_row(verdict.path, verdict.error_class, verdict.message, sampling="uniform")
        made = verdicts.stamp(driver, model_name="tiny", model_sha256="ab" * 32, run_id="run1", scanned_at=T0, **file)
        assert made == {"path": "bad.mkv", "status": "error", "error_class": verdict.error_class.value,
                        "error_message": verdict.message, "p_fake": None, "verdict": None, "conclusion": None,
                        "threshold": None, "sampling": "uniform", "worker": "driver", "archive": "/arch", "size": 3000,
                        "mtime_ns": 17, "inode": 99, "model_name": "tiny", "model_sha256": "ab" * 32, "run_id": "run1",
                        "scanned_at": T0, "path_bytes": b"bad.mkv"}
        assert made["worker"] == verdicts.DRIVER_WORKER == "driver"
        table = verdicts.rows_to_table([made])  # every other column of the dataset row is null
        assert all(table[name][0].as_py() is None for name in table.column_names if name not in made)
    long = verdicts.driver_row("bad.mkv", ErrorClass.DECODER_CRASH, "x" * 900, sampling="uniform")
    assert long["error_message"] == "x" * 500  # a worker's last error may be a whole traceback


def test_newest_row_per_file():
    table = verdicts.rows_to_table([
        row("b.mp4", minutes=5), row("a.mp4", minutes=1, status="error"), row("a.mp4", minutes=9, size=2),
        row("a.mp4", minutes=3, size=3),
        row("a.mp4", minutes=1, archive="/other", size=4),  # another archive: another file
        row("t.mp4", minutes=7, size=5), row("t.mp4", minutes=7, size=6),  # a tie: the later read wins
        row("n.mp4", minutes=0, size=7), row("n.mp4", scanned_at=None, size=8),  # no time: the oldest
        row("z.mp4", archive=None, size=9), row("z.mp4", archive=None, minutes=-1, size=10),  # null archive as ""
    ])
    newest = verdicts.newest_rows(table)
    assert list(zip(newest["archive"].to_pylist(), newest["path"].to_pylist(), newest["size"].to_pylist())) == [
        (None, "z.mp4", 9), ("/arch", "a.mp4", 2), ("/arch", "b.mp4", 10), ("/arch", "n.mp4", 7),
        ("/arch", "t.mp4", 6), ("/other", "a.mp4", 4)]
    assert newest.schema == table.schema
    empty = verdicts.rows_to_table([])
    assert verdicts.newest_rows(empty).num_rows == 0


def test_a_name_with_a_stray_byte_and_its_escaped_spelling_are_two_files():
    """`m\xff.mp4` (the byte 0xff) is shown as the text `m\\xff.mp4`, which is also a valid name of its
    own: the rows' bytes keep them apart (hostile-archives issue, item 1)."""
    byte, spelled = b"m\xff.mp4", b"m\\xff.mp4"
    rows = [row(verdicts.display_path(os.fsdecode(name)), minutes=i, size=i, path_bytes=name)
            for i, name in enumerate((byte, spelled, byte))]
    assert rows[0]["path"] == rows[1]["path"]  # the trap: alike as text
    newest = verdicts.newest_rows(verdicts.rows_to_table(rows))
    assert sorted(zip(newest["path_bytes"].to_pylist(), newest["size"].to_pylist())) == [(spelled, 1), (byte, 2)]


def test_newest_rows_agree_with_the_apps_former_pandas_rule():
    """The web app kept its own pandas version; the one definition gives the same rows on random data."""
    pd = pytest.importorskip("pandas")
    rng = random.Random(7)
    rows = [row(f"{rng.randrange(40)}.mp4", minutes=rng.randrange(30), archive=rng.choice(["/a", "/b", None]),
                size=i, scanned_at=None if rng.random() < 0.05 else T0 + dt.timedelta(minutes=rng.randrange(30)))
            for i in range(2000)]
    table = verdicts.rows_to_table(rows)
    frame = table.to_pandas()
    keyed = frame.assign(_archive=frame["archive"].fillna(""), _order=np.arange(len(frame)))
    keyed = keyed.sort_values(["scanned_at", "_order"], na_position="first", kind="stable")
    keyed = keyed.drop_duplicates(["_archive", "path"], keep="last")
    expected = keyed.sort_values(["_archive", "path"])["size"].tolist()
    assert verdicts.newest_rows(table)["size"].to_pylist() == expected
    assert len(expected) == len({(r["archive"] or "", r["path"]) for r in rows})


def test_counts_of_the_newest_rows():
    newest = verdicts.rows_to_table([
        row("a.mp4"), row("b.mp4", p_fake=0.9, verdict="fake"), row("c.mp4", p_fake=0.7, verdict="fake"),
        row("d.mp4", status="error"), row("e.mp4", status="error", error_class="NOT_VIDEO"),
        row("f.mp4", status="error", error_class=None), row("g.mp4", status=None),  # no status: an error
        row("h.mp4", p_fake=0.55, verdict="fake", conclusion="inconclusive"),  # version 3: the conclusion counts
        row("i.mp4", p_fake=0.45, verdict="real", conclusion="inconclusive"),
    ])
    counts = verdicts.count(newest)
    assert counts == verdicts.Counts(files=9, outcomes={"error": 4, "fake": 2, "inconclusive": 2, "real": 1},
                                     error_classes={"DECODE_ERROR": 2, "NOT_VIDEO": 1, None: 1}, fallbacks={})
    fell_back = verdicts.rows_to_table([row("a.mp4", decoder="pyav", fallback_from="dali-gpu"), row("b.mp4"),
                                        row("c.mp4", status="error", fallback_from="nvdec"),
                                        row("d.mp4", decoder="pyav", fallback_from="dali-gpu")])
    assert verdicts.count(fell_back).fallbacks == {"dali-gpu": 2, "nvdec": 1}
    assert list(counts.error_classes) == ["DECODE_ERROR", "NOT_VIDEO", None]
    assert (counts.of("fake"), counts.of("error"), counts.of("real")) == (2, 4, 1)
    assert verdicts.count(verdicts.rows_to_table([])) == verdicts.Counts(files=0, outcomes={}, error_classes={})


def test_the_schema_only_grows_nullable_columns():
    assert verdicts.VERDICT_SCHEMA.metadata == {b"dfscan.schema_version": str(verdicts.SCHEMA_VERSION).encode()}
    assert all(field.nullable for field in verdicts.VERDICT_SCHEMA)  # an older part reads its new columns as null
    assert len(set(verdicts.VERDICT_SCHEMA.names)) == len(verdicts.VERDICT_SCHEMA) == 39
    assert verdicts.VERDICT_SCHEMA.names[-1] == "untested_reason" and verdicts.SCHEMA_VERSION == 6
    assert verdicts.VERDICT_SCHEMA.names[:2] == ["path", "archive"] and verdicts.VERDICT_SCHEMA.names[24] == "worker"


def test_a_folder_with_parts_of_two_schema_versions_reads_as_one(tmp_path, monkeypatch):
    out = tmp_path / "verdicts"
    this_release = verdicts.VERDICT_SCHEMA
    write_two_versions(out, monkeypatch)
    v1_part, v2_part = sorted(out.glob("part-*.parquet"))
    assert pq.read_schema(v1_part).names == V1_SCHEMA.names
    assert pq.read_schema(v2_part).names == this_release.names and "rotation" in this_release.names
    assert pq.read_schema(v2_part).metadata[b"dfscan.schema_version"] == str(verdicts.SCHEMA_VERSION).encode()
    # The trap: pyarrow's discovery alone takes the first (oldest) part's schema, and the new column vanishes.
    assert "rotation" not in pads.dataset(str(out), format="parquet").schema.names

    # The next release reads both parts: the old rows' new column is null.
    table = verdicts.read_table(out)
    assert table.num_rows == 5 and table.schema.names == this_release.names
    newest = verdicts.newest_rows(table)
    assert newest["path"].to_pylist() == ["a.mp4", "b.mp4", "c.mp4", "d.mp4"]
    assert newest["rotation"].to_pylist() == [90, None, None, 0]
    assert newest["verdict"].to_pylist() == ["fake", None, "real", "real"]
    walk = [FileEntry(name, 10, 1, 7) for name in ("a.mp4", "b.mp4", "c.mp4", "d.mp4")]
    assert list(CommittedIndex.build(out, "/arch", "a" * 64, retry_errors=True).needs_scan(walk)) == [
        False, True, False, False]  # b's row is an error
    # `dfscan report` is unchanged, and exports the new column (empty for the old rows).
    report = build_report(out)
    assert (report.files, report.rows, report.schema_version) == (4, 5, verdicts.SCHEMA_VERSION)
    assert report.verdicts == {"error": 1, "fake": 1, "real": 2} and report.runs == sorted(report.runs)
    with open(write_report(report, tmp_path / "report.csv"), newline="") as fh:
        exported = list(csv.DictReader(fh))
    assert [r["rotation"] for r in exported] == ["90", "", "", "0"]

    # The previous release reads this one's folder too: every row, without the columns it does not know.
    monkeypatch.setattr(verdicts, "VERDICT_SCHEMA", V1_SCHEMA)
    monkeypatch.setattr(verdicts, "SCHEMA_VERSION", 1)
    table = verdicts.read_table(out)
    assert table.num_rows == 5 and table.schema.names == V1_SCHEMA.names
    report = build_report(out)
    assert (report.files, report.rows, report.schema_version) == (4, 5, 1)
    assert report.verdicts == {"error": 1, "fake": 1, "real": 2}


def test_the_app_reads_a_folder_with_parts_of_two_schema_versions(tmp_path, monkeypatch):
    pd = pytest.importorskip("pandas", reason="the web app needs the app extra (streamlit brings pandas)")
    from dfscan.scanner.webapp import verdicts as vd

    out = tmp_path / "verdicts"
    write_two_versions(out, monkeypatch)
    data = vd.load(out)
    assert data.rows == 5 and vd.counts(data) == {"files": 4, "real": 2, "fake": 1, "inconclusive": 0, "untested": 0, "error": 1}
    newest = data.newest.set_index("path")
    assert newest.loc["a.mp4", "rotation"] == 90 and pd.isna(newest.loc["b.mp4", "rotation"])
    assert vd.recorded_indices(out, data.newest.iloc[0].to_dict()) == [0, 3, 5]
    monkeypatch.setattr(verdicts, "VERDICT_SCHEMA", V1_SCHEMA)  # the previous release's app
    data = vd.load(out)
    assert data.rows == 5 and vd.counts(data) == {"files": 4, "real": 2, "fake": 1, "inconclusive": 0, "untested": 0, "error": 1}
    assert "rotation" not in data.newest.columns


def test_only_dfscans_own_parts_are_read(tmp_path):
    """A cron's `>> /verdicts/dfscan.log`, a user's file, a subfolder and a planted link in OUT_DIR
    used to break every read with `Parquet magic bytes not found` (hostile-archives issue, item 6)."""
    out = tmp_path / "verdicts"
    sink.prepare_out_dir(out)
    writer = sink.PartWriter(out, "20240101T000000Z-aaaa")
    writer.add([row("a.mp4", minutes=0), row("b.mp4", minutes=1)])
    writer.flush()
    (out / "dfscan.log").write_text("2024-01-01 dfscan run: 2 scanned\n")
    (out / "notes.parquet").write_bytes(b"not parquet at all")
    (out / "sub").mkdir()
    (out / "sub" / "part-x-000000.parquet").write_bytes(b"junk")
    elsewhere = tmp_path / "elsewhere.parquet"
    pq.write_table(verdicts.rows_to_table([row("planted.mp4", minutes=2)]), elsewhere)
    (out / "part-planted-000000.parquet").symlink_to(elsewhere)
    assert [p.name for p in verdicts.part_files(out)] == ["part-20240101T000000Z-aaaa-000000.parquet"]
    assert sorted(verdicts.read_table(out)["path"].to_pylist()) == ["a.mp4", "b.mp4"]
    assert build_report(out).files == 2
    assert verdicts.read_table(tmp_path / "empty").num_rows == 0
