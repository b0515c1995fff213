"""`dfscan report`: counts from the newest row per file, CSV and JSON exports."""

from __future__ import annotations

import csv
import json

import pytest

from scanner import sink, verdicts
from scanner.report import build_report, format_report, write_report
from tests.scanner.test_sink import row


@pytest.fixture
def out_dir(tmp_path):
    verdicts = tmp_path / "verdicts"  # reports go beside it, never inside
    verdicts.mkdir()
    sink.prepare_out_dir(verdicts)
    writer = sink.PartWriter(verdicts, "run1")
    writer.add([row("a.mp4", minutes=0, status="error"), row("b.mp4", minutes=0),
                row("c.mp4", minutes=0, p_fake=0.9, verdict="fake"), row("d.mp4", minutes=0, status="error")])
    writer.flush()
    sink.commit_run(verdicts, "run1", writer.parts, "a" * 64, "tiny", {}, {}, [])
    late = sink.PartWriter(verdicts, "run2")  # a rescan fixed a.mp4; run2 never completed
    late.add([row("a.mp4", minutes=10, p_fake=0.75, verdict="fake")])
    late.flush()
    return verdicts


def test_report_counts_newest_rows(out_dir):
    report = build_report(out_dir)
    assert report.files == 4 and report.rows == 5
    assert report.verdicts == {"error": 1, "fake": 2, "real": 1}
    assert report.error_classes == {"DECODE_ERROR": 1}
    assert report.runs == ["run1"] and report.incomplete_runs == ["run2"]
    text = format_report(report)
    assert "files: 4" in text and "fake 2" in text and "DECODE_ERROR 1" in text


def test_report_csv(out_dir, tmp_path):
    dest = write_report(build_report(out_dir), tmp_path / "exports" / "report.csv")
    with open(dest, newline="") as fh:
        rows = list(csv.DictReader(fh))
        fh.seek(0)
        header = next(csv.reader(fh))
    # Every column of the row, in the schema's order, but the host-local inode.
    assert header == [c for c in verdicts.VERDICT_SCHEMA.names if c not in ("inode", "path_bytes")]
    assert len(header) == 34 and header[-1] == "face_box"
    assert [r["path"] for r in rows] == ["a.mp4", "b.mp4", "c.mp4", "d.mp4"]
    assert rows[0]["verdict"] == "fake" and float(rows[0]["p_fake"]) == 0.75
    assert rows[0]["frame_indices"] == "0 3 5"
    assert rows[3]["error_class"] == "DECODE_ERROR" and rows[3]["verdict"] == ""


def test_report_json(out_dir, tmp_path):
    dest = write_report(build_report(out_dir), tmp_path / "exports" / "report.json")
    data = json.loads(dest.read_text())
    assert data["files"] == 4 and data["verdicts"]["fake"] == 2
    assert [r["path"] for r in data["newest"]] == ["a.mp4", "b.mp4", "c.mp4", "d.mp4"]
    assert data["newest"][0]["scanned_at"].startswith("2024-01-01T00:10:00")


def test_report_rejects_unknown_format(out_dir, tmp_path):
    with pytest.raises(ValueError, match="csv or json"):
        write_report(build_report(out_dir), tmp_path / "elsewhere" / "r.xml")
    with pytest.raises(ValueError, match="outside the verdict dataset"):
        write_report(build_report(out_dir), out_dir / "report.csv")
    with pytest.raises(ValueError, match="outside the verdict dataset"):  # pyarrow reads subfolders too
        write_report(build_report(out_dir), out_dir / "reports" / "report.csv")
    assert not (out_dir / "reports").exists()
