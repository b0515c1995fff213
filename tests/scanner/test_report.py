"""`dfscan report`: counts from the newest row per file, CSV and JSON exports."""

from __future__ import annotations

import csv
import json

import pytest

from dfscan.scanner import sink, verdicts
from dfscan.scanner.report import build_report, format_report, write_report
from tests.scanner.rows import row


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
    # A rescan fixed a.mp4 (on PyAV, after dali-gpu failed it); run2 never completed.
    late = sink.PartWriter(verdicts, "run2")
    late.add([row("a.mp4", minutes=10, p_fake=0.75, verdict="fake", decoder="pyav", fallback_from="dali-gpu",
                  fallback_reason="DECODE_ERROR: DALI: stand-in")])
    late.flush()
    return verdicts


def test_report_counts_newest_rows(out_dir):
    report = build_report(out_dir)
    assert report.files == 4 and report.rows == 5
    assert report.verdicts == {"error": 1, "fake": 2, "real": 1}
    assert report.error_classes == {"DECODE_ERROR": 1} and report.fallbacks == {"dali-gpu": 1}
    assert report.runs == ["run1"] and report.incomplete_runs == ["run2"]
    text = format_report(report)
    assert "files: 4" in text and "fake 2" in text and "DECODE_ERROR 1" in text
    assert "read by PyAV after their decoder failed them: dali-gpu 1 (fallback_reason says why)" in text


def test_report_csv(out_dir, tmp_path):
    dest = write_report(build_report(out_dir), tmp_path / "exports" / "report.csv")
    with open(dest, newline="") as fh:
        rows = list(csv.DictReader(fh))
        fh.seek(0)
        header = next(csv.reader(fh))
    # Every column of the row, in the schema's order, but the host-local inode.
    assert header == [c for c in verdicts.VERDICT_SCHEMA.names if c not in ("inode", "path_bytes")]
    assert len(header) == 37 and header[-1] == "untested_reason"
    assert [r["path"] for r in rows] == ["a.mp4", "b.mp4", "c.mp4", "d.mp4"]
    assert rows[0]["verdict"] == "fake" and float(rows[0]["p_fake"]) == 0.75
    assert rows[0]["frame_indices"] == "0 3 5"
    assert rows[3]["error_class"] == "DECODE_ERROR" and rows[3]["verdict"] == ""


HOSTILE_NAMES = ["=cmd|' -C calc'!A0.mp4", "+SUM(1,2).mp4", "@evil.mp4", "-x.mp4", "two\nlines.mp4"]


def test_report_csv_neutralises_formula_names_and_json_keeps_them(tmp_path):
    """Night-safety item 2: a cell a spreadsheet would run as a formula gets a leading quote in the CSV;
    the JSON export and path_bytes in the Parquet keep the exact name."""
    out = tmp_path / "verdicts"
    sink.prepare_out_dir(out)
    writer = sink.PartWriter(out, "run1")
    writer.add([row(name, error_message="=HYPERLINK(\"http://x\")", path_bytes=name.encode())
                for name in HOSTILE_NAMES])
    writer.flush()
    report = build_report(out)
    with open(write_report(report, tmp_path / "report.csv"), newline="") as fh:
        rows = list(csv.DictReader(fh))
    expected = {"=cmd|' -C calc'!A0.mp4": "'=cmd|' -C calc'!A0.mp4", "+SUM(1,2).mp4": "'+SUM(1,2).mp4",
                "@evil.mp4": "'@evil.mp4", "-x.mp4": "'-x.mp4", "two\nlines.mp4": "two\nlines.mp4"}
    assert sorted(r["path"] for r in rows) == sorted(expected.values())
    assert {r["error_message"] for r in rows} == {"'=HYPERLINK(\"http://x\")"}
    assert {r["p_fake"] for r in rows} == {"0.25"}
    exported = json.loads((write_report(report, tmp_path / "report.json")).read_text())["newest"]
    assert sorted(r["path"] for r in exported) == sorted(HOSTILE_NAMES)
    assert sorted(verdicts.read_table(out, columns=["path_bytes"])["path_bytes"].to_pylist()) == sorted(
        name.encode() for name in HOSTILE_NAMES)


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


def test_report_shows_each_models_card_quality_beside_its_verdicts(tmp_path):
    """What a run recorded of its model's card is shown with the files that model judged; a model no
    better than chance says so in plain words, and p_fake and the threshold are explained once."""
    from dfscan.kernels.trust import card_trust

    out = tmp_path / "verdicts"
    sink.prepare_out_dir(out)
    weak = {**card_trust({"metrics": {"test": {"roc_auc": 0.52, "accuracy": 0.5, "n_videos": 10,
                                               "confusion": [[5, 0], [5, 0]]}},
                          "dataset": {"root": "data/synth48", "synthetic": True}}).as_dict(),
            "threshold": 0.5, "inconclusive_band": 0.1}
    for run_id, sha, name, trust, paths in (("run1", "a" * 64, "weak", weak, ["a.mp4", "b.mp4"]),
                                            ("run2", "b" * 64, "old", None, ["c.mp4"])):
        writer = sink.PartWriter(out, run_id)
        writer.add([row(p, sha=sha, model_name=name) for p in paths])
        writer.flush()
        sink.commit_run(out, run_id, writer.parts, sha, name, {}, {}, [], model_trust=trust)
    report = build_report(out)
    assert [(m["model_name"], m["files"], m["trust"] is None) for m in report.models] == [
        ("weak", 2, False), ("old", 1, True)]
    text = format_report(report).splitlines()
    assert text[-7:-1] == [
        f"  model weak ({'a' * 12}): 2 files; test AUC 0.52, accuracy 0.50 on 10 videos of 'synth48' (synthetic)",
        "    warning: test AUC 0.52 is near chance (0.5): the model does not tell real from fake",
        "    warning: it calls every test video real",
        "    warning: measured on only 10 test videos",
        "    warning: trained and tested on synthetic videos only (dfscan synth), never on real deepfakes",
        f"  model old ({'b' * 12}): 1 files; its card was not recorded by the run that used it",
    ]
    assert text[-1].startswith("  p_fake is the model's estimate") and text[-1].endswith("not proof.")
    assert json.loads(json.dumps(report.as_dict(), default=str))["models"][0]["trust"]["untrusted"] is True
