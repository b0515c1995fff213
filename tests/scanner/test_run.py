"""End to end on the session cluster: synth archive -> tiny model -> run -> Parquet -> report; reruns."""

from __future__ import annotations

import json
import os

import pyarrow.dataset as pads
import pytest

from dfscan.scanner import sink, verdicts
from dfscan.scanner.report import build_report
from dfscan.scanner.run import UsageError, run_scan
from tests.scanner.conftest import rows_by_path, scan_config
from dfscan.training.synth import SynthConfig, synth


def test_end_to_end_synth_archive(ray_cluster, tiny_model, tmp_path):
    root, out = tmp_path / "synth", tmp_path / "out"
    videos = synth(root, SynthConfig(videos=6, frames_per_video=10, width=64, height=64))
    names = sorted(v.path for v in videos)
    summary = run_scan(scan_config(root, tiny_model, out, batch_size=4, progress=True))  # the bar too

    table = pads.dataset(str(out)).to_table()
    assert sorted(table["path"].to_pylist()) == names  # one row per video; labels.csv is not a video
    assert table.schema.remove_metadata() == verdicts.VERDICT_SCHEMA.remove_metadata()
    assert set(table["status"].to_pylist()) == {"ok"}
    assert set(table["archive"].to_pylist()) == {str(root.resolve())}
    assert set(table["run_id"].to_pylist()) == {summary.run_id}
    assert set(table["model_name"].to_pylist()) == {"tiny-cnn-lstm"}
    card = json.loads(tiny_model.with_suffix(".json").read_text())
    assert set(table["model_sha256"].to_pylist()) == {card["sha256"]}
    assert all(ix == [0, 3, 6, 9] for ix in table["frame_indices"].to_pylist())  # uniform plan, F=4, n=10
    for row in table.to_pylist():
        assert 0.0 <= row["p_fake"] <= 1.0
        assert row["verdict"] == ("fake" if row["p_fake"] >= 0.5 else "real")
        assert (row["codec"], row["width"], row["height"], row["frame_count"]) == ("h264", 64, 64, 10)
        assert row["decoder"] == "pyav" and row["sampling"] == "uniform" and row["error_class"] is None
        assert row["worker"].endswith("/cpu") and row["scanned_at"].tzinfo is not None
        st = os.stat(root / row["path"])
        assert (row["size"], row["mtime_ns"], row["inode"]) == (st.st_size, st.st_mtime_ns, st.st_ino)

    assert summary.as_dict().keys() == {"run_id", "archive", "files_seen", "scanned", "skipped", "ok", "errors",
                                        "errors_by_class", "conclusions", "alarms", "seconds", "videos_per_s",
                                        "startup_seconds", "stage_seconds", "out"}
    assert 0 < summary.startup_seconds < summary.seconds
    assert (summary.files_seen, summary.scanned, summary.skipped, summary.ok, summary.errors) == (6, 6, 0, 6, 0)
    assert summary.stage_seconds.keys() == {"probe", "decode", "faces", "inference", "write"}
    assert summary.stage_seconds["decode"] > 0 and summary.stage_seconds["inference"] > 0
    assert sum(summary.workers.values()) == 6

    manifest = json.loads((out / "_runs" / f"{summary.run_id}.json").read_text())
    assert sum(manifest["row_counts"].values()) == 6 and manifest["schema_version"] == verdicts.SCHEMA_VERSION
    assert sorted(manifest["files"]) == sink.committed_parts(out)
    assert (out / "_runs" / f"{summary.run_id}.SUCCESS").exists()

    report = build_report(out)
    assert report.files == 6 and report.rows == 6 and report.runs == [summary.run_id]
    # The report counts what a person reads: an untrained model's p_fake near 0.5 is inconclusive.
    said = [("inconclusive" if 0.4 < p < 0.6 else "fake" if p >= 0.5 else "real") for p in table["p_fake"].to_pylist()]
    assert table["conclusion"].to_pylist() == said
    assert report.verdicts == {k: said.count(k) for k in sorted(set(said))}


def test_reruns_are_incremental(ray_cluster, tiny_model, archive, tmp_path):
    root, names = archive
    out = tmp_path / "out"
    first = run_scan(scan_config(root, tiny_model, out))
    assert first.scanned == 10

    again = run_scan(scan_config(root, tiny_model, out))  # nothing changed: no rows, no workers
    assert (again.files_seen, again.scanned, again.skipped) == (10, 0, 10)
    assert sum(len(v) for v in rows_by_path(out).values()) == 10
    assert (out / "_runs" / f"{again.run_id}.SUCCESS").exists()

    st = os.stat(root / names[3])
    os.utime(root / names[3], ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # touch one file
    touched = run_scan(scan_config(root, tiny_model, out))
    assert (touched.scanned, touched.skipped) == (1, 9)
    rows = rows_by_path(out)
    assert sum(len(v) for v in rows.values()) == 11 and len(rows[names[3]]) == 2

    full = run_scan(scan_config(root, tiny_model, out, full=True))
    assert (full.scanned, full.skipped) == (10, 0)
    assert all(len(v) == (3 if p == names[3] else 2) for p, v in rows_by_path(out).items())
    assert build_report(out).files == 10

    # --compact-after: the nightly parts become one, and the next rerun still skips every file.
    rows, parts = verdicts.read_table(out), sink.committed_parts(out)
    compacted = run_scan(scan_config(root, tiny_model, out, compact_after=len(parts) - 1))
    assert compacted.scanned == 0 and compacted.compaction.parts_before == len(parts) > 1
    assert len(sink.committed_parts(out)) == compacted.compaction.parts_after == 1
    assert verdicts.read_table(out).equals(rows)
    assert run_scan(scan_config(root, tiny_model, out, compact_after=1)).skipped == 10


def test_usage_errors(tiny_model, archive, tmp_path):
    root, _ = archive
    with pytest.raises(UsageError, match="archive not found"):
        run_scan(scan_config(tmp_path / "missing", tiny_model, tmp_path / "out"))
    bad = tmp_path / "bad.keras"
    bad.write_text("not a model")
    with pytest.raises(UsageError, match="refused model .*not a Keras 3 archive"):
        run_scan(scan_config(root, bad, tmp_path / "out"))
    legacy = tmp_path / "legacy.h5"
    legacy.write_bytes(b"\x89HDF\r\n\x1a\n")
    with pytest.raises(UsageError, match="legacy HDF5"):  # refused by the driver, before any worker starts
        run_scan(scan_config(root, legacy, tmp_path / "out"))
    swapped = tmp_path / "swapped"
    swapped.mkdir()
    for name in ("model.keras", "model.json"):
        (swapped / name).write_bytes((tiny_model.parent / name).read_bytes())
    with open(swapped / "model.keras", "ab") as fh:
        fh.write(b"tampered")
    with pytest.raises(UsageError, match="does not match"):
        run_scan(scan_config(root, swapped, tmp_path / "out"))
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(UsageError, match="cannot create out dir"):
        run_scan(scan_config(root, tiny_model, blocker / "out"))


def test_second_run_into_a_locked_out_dir_is_refused(tiny_model, archive, tmp_path):
    root, _ = archive
    out = tmp_path / "out"
    out.mkdir()
    with sink.OutDirLock(out, "nightly"):
        with pytest.raises(sink.OutDirLocked, match="another dfscan run"):
            run_scan(scan_config(root, tiny_model, out))
    assert sink.committed_parts(out) == []
