"""Reading a verdicts folder for the "Browse results" page: newest row per file, counts, filters,
one-line refusals, and re-reading a row's frames."""

from __future__ import annotations

import csv
import io
import re

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dfscan.kernels.sampling import plan_indices
from dfscan.scanner.verdicts import VERDICT_SCHEMA, rows_to_table
from tests.webapp.data import UNIFORM_4_OF_30, verdict_row, write_verdicts

pytest.importorskip("pandas", reason="the web app needs the app extra (streamlit brings pandas)")

from dfscan.scanner.webapp import verdicts as vd  # noqa: E402


def test_verdicts_newest_row_per_file_counts_and_filters(tmp_path):
    out = tmp_path / "out"
    expected = write_verdicts(out, tmp_path / "archive")
    data = vd.load(out)
    assert data.rows == expected["rows"] and data.files == expected["files"]
    assert vd.counts(data) == {"files": 6, "real": 1, "fake": 3, "inconclusive": 0, "untested": 0, "error": 2}
    assert vd.error_counts(data).to_dict("records") == [
        {"error_class": "DECODE_ERROR", "files": 1}, {"error_class": "NOT_VIDEO", "files": 1}]
    hist = vd.histogram(data.newest)
    assert hist["files"].sum() == 4 and hist.loc[hist["start"].round(2) == 0.9, "files"].item() == 2
    newest = data.newest.set_index("path")
    assert newest.loc["keep/real.mp4", "verdict"] == "real"  # the older "fake" row lost
    assert newest.loc["bad/decode.mkv", "status"] == "error"  # the older "ok" row lost
    assert data.newest.path.tolist() == ["bad/decode.mkv", "bad/notvideo.mp4", "keep/fake.mp4", "keep/real.mp4",
                                         "other/f2.mp4", "other/f3.mp4"]
    assert set(vd.TABLE_COLUMNS) <= set(data.newest.columns) <= set(VERDICT_SCHEMA.names)
    f = vd.filter_rows
    assert len(f(data.newest, ["ok", "error"], ["real", "fake"], (0.0, 1.0))) == 6  # rows of version 2: verdicts
    assert len(f(data.newest, ["error"], ["real", "fake"], (0.0, 1.0))) == 2
    assert f(data.newest, ["ok"], ["fake"], (0.5, 0.92)).path.tolist() == ["keep/fake.mp4", "other/f2.mp4"]
    assert f(data.newest, ["ok", "error"], ["real"], (0.0, 1.0), "KEEP/").path.tolist() == ["keep/real.mp4"]
    assert f(data.newest, ["ok"], ["real", "fake"], (0.0, 1.0), "[").empty  # plain text, not a regex


def test_verdicts_folder_problems_are_one_line_messages(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "file").write_text("x")
    (tmp_path / "other").mkdir()
    pq.write_table(pa.table({"name": ["a"]}), tmp_path / "other" / "part-x-000000.parquet")
    (tmp_path / "foreign").mkdir()
    pq.write_table(pa.table({"name": ["a"]}), tmp_path / "foreign" / "x.parquet")
    cases = {"": "type the path of a verdicts folder", str(tmp_path / "nope"): "no such folder",
             str(tmp_path / "file"): "not a folder", str(tmp_path / "empty"): "no verdicts yet",
             str(tmp_path / "other"): "not a dfscan verdicts dataset (no path, status column)",
             str(tmp_path / "foreign"): "not a dfscan verdicts dataset (no part-*.parquet files of dfscan's)"}
    for folder, message in cases.items():
        with pytest.raises(vd.VerdictsError, match=re.escape(message)):
            vd.load(folder)


def test_row_frames_are_reread_with_the_rows_sampling_and_compared(tmp_path):
    out = tmp_path / "out"
    write_verdicts(out, tmp_path / "archive")
    newest = vd.load(out).newest.set_index("path", drop=False)
    assert "frame_indices" not in newest.columns  # read per row, on demand
    row = newest.loc["keep/real.mp4"].to_dict()
    assert vd.recorded_indices(out, row) == UNIFORM_4_OF_30
    clip, match = vd.read_row_frames(out, row, {"size": 32})
    assert match is True and clip.frames.shape == (4, 32, 32, 3)
    assert clip.indices.tolist() == plan_indices("uniform", 30, (0, 12, 24), 4).tolist() == UNIFORM_4_OF_30

    rescan = dict(verdict_row(tmp_path / "archive", "keep/real.mp4", "ok", 0.12, hours=1), frame_indices=[0, 1, 2, 3])
    pq.write_table(rows_to_table([rescan]), out / "part-later-000000.parquet")
    assert vd.recorded_indices(out, row) == [0, 1, 2, 3]  # the newest row's indices
    assert vd.read_row_frames(out, row, {"size": 32})[1] is False

    missing = dict(row, path="keep/gone.mp4")
    clip, match = vd.read_row_frames(out, missing, {"size": 32})
    assert match is None and clip.error.error_class.value == "NOT_FOUND"


def test_inconclusive_rows_are_counted_filtered_and_their_models_judged(tmp_path):
    from tests.webapp.stubs import fake_run
    from dfscan.scanner.webapp.models import discover

    out, archive = tmp_path / "out", tmp_path / "archive"
    out.mkdir()
    known, unknown = "k" * 64, "u" * 64
    rows = [dict(verdict_row(archive, "a.mp4", "ok", 0.55), conclusion="inconclusive", inconclusive_band=0.1,
                 model_sha256=known, model_name="coin"),
            dict(verdict_row(archive, "b.mp4", "ok", 0.95), conclusion="fake", inconclusive_band=0.1,
                 model_sha256=known, model_name="coin"),
            dict(verdict_row(archive, "c.mp4", "ok", 0.05), conclusion="real", inconclusive_band=0.1,
                 model_sha256=unknown, model_name="elsewhere")]
    pq.write_table(rows_to_table(rows), out / "part-run-1-000000.parquet")
    data = vd.load(out)
    assert vd.counts(data) == {"files": 3, "real": 1, "fake": 1, "inconclusive": 1, "untested": 0, "error": 0}
    assert vd.filter_rows(data.newest, ["ok"], ["inconclusive"], (0.0, 1.0)).path.tolist() == ["a.mp4"]
    assert vd.filter_rows(data.newest, ["ok"], ["fake", "real"], (0.0, 1.0)).path.tolist() == ["b.mp4", "c.mp4"]
    metrics = {"test": {"roc_auc": 0.5, "accuracy": 0.5, "n_videos": 10, "confusion": [[5, 0], [5, 0]]}}
    fake_run(tmp_path / "models", "coin", sha256=known, metrics=metrics)
    found = vd.row_models(data, discover([str(tmp_path / "models")]).models)
    assert [(m.name, m.sha256, m.files) for m in found] == [("coin", known, 2), ("elsewhere", unknown, 1)]
    assert found[0].trust.untrusted and found[0].trust.summary() == "test AUC 0.50, accuracy 0.50 on 10 videos"
    assert found[1].trust is None  # no listed card: the page says its card is not available here


def test_the_folder_box_reads_only_the_folders_own_parts_and_names_nothing_else(tmp_path, capsys):
    out = tmp_path / "out"
    write_verdicts(out, tmp_path / "archive")
    deep = out / "a" / "b" / "c"
    deep.mkdir(parents=True)
    (deep / "part-deep-000000.parquet").write_bytes(b"not read")
    assert [entry[0] for entry in vd.signature(out)] == ["part-run-1-000000.parquet", "part-run-2-000000.parquet"]
    before = vd.signature(out)
    (deep / "other.txt").write_text("x")  # a tree below the folder is never walked
    assert vd.signature(out) == before
    pq.write_table(rows_to_table([verdict_row(tmp_path / "archive", "new.mp4", "ok", 0.2)]),
                   out / "part-run-3-000000.parquet")
    assert vd.signature(out) != before
    assert vd.signature(tmp_path / "nowhere") == ()

    # A damaged part is read around (night-safety item 1); the page counts it, the server's log names it.
    (out / "part-secret-name-000000.parquet").write_bytes(b"PAR1 damaged PAR1")
    capsys.readouterr()
    data = vd.load(out)
    assert data.files == 7 and [part.name for part in data.damaged] == ["part-secret-name-000000.parquet"]
    assert vd.damage_notes(data) == [
        "1 damaged verdict part(s) could not be read and were skipped: their rows are not counted here (the "
        "server's log names them). The next `dfscan run` moves them to _quarantine/ and scans their files again."]
    assert "part-secret-name-000000.parquet: ArrowInvalid: " in capsys.readouterr().err


def test_the_browse_csv_download_neutralises_formula_names(tmp_path):
    """Night-safety item 2: the Browse page's own CSV (Streamlit's table export is switched off)."""
    out, archive = tmp_path / "out", tmp_path / "archive"
    out.mkdir()
    names = ["=cmd|' -C calc'!A0.mp4", "+SUM(1,2).mp4", "@evil.mp4", "-x.mp4", "two\nlines.mp4"]
    pq.write_table(rows_to_table([verdict_row(archive, name, "ok", 0.25) for name in names]),
                   out / "part-run-1-000000.parquet")
    data = vd.load(out)
    rows = list(csv.DictReader(io.StringIO(vd.export_csv(data.newest), newline="")))
    assert sorted(r["path"] for r in rows) == sorted(["'=cmd|' -C calc'!A0.mp4", "'+SUM(1,2).mp4", "'@evil.mp4",
                                                      "'-x.mp4", "two\nlines.mp4"])
    assert list(rows[0]) == [c for c in vd.TABLE_COLUMNS] and {r["p_fake"] for r in rows} == {"0.25"}
    assert {r["error_class"] for r in rows} == {""}
