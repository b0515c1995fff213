"""Hostile archives: a file name that is not UTF-8 (Linux names are bytes) must get its row like any
other, with the name kept losslessly, and must not stop the scan (it used to crash every run in the
sink, forever: a UnicodeEncodeError before any row was committed)."""

import os

import pyarrow.dataset as pads

from dfscan.scanner.run import run_scan
from dfscan.scanner.verdicts import display_path
from tests.scanner.conftest import make_videos, scan_config

RAW_NAME = b"m\xff\xfe.mp4"


def test_a_name_that_is_not_utf8_gets_its_row_and_reruns_skip_it(ray_cluster, tiny_model, tmp_path):
    root, out = tmp_path / "archive", tmp_path / "out"
    make_videos(root, ["good_a.mp4", "good_b.mp4"])
    os.rename(root / "good_b.mp4", os.path.join(os.fsencode(root), RAW_NAME))  # a real video under a byte name

    summary = run_scan(scan_config(root, tiny_model, out, batch_size=4))
    assert (summary.scanned, summary.ok, summary.errors) == (2, 2, 0)
    rows = {row["path_bytes"]: row for row in pads.dataset(str(out)).to_table().to_pylist()}
    assert set(rows) == {b"good_a.mp4", RAW_NAME}
    assert rows[RAW_NAME]["path"] == "m\\xff\\xfe.mp4" == display_path(os.fsdecode(RAW_NAME))
    assert rows[b"good_a.mp4"]["path"] == "good_a.mp4"
    assert rows[RAW_NAME]["status"] == "ok"

    again = run_scan(scan_config(root, tiny_model, out, batch_size=4))
    assert (again.scanned, again.skipped) == (0, 2)  # the committed index finds the byte name again


def test_an_archive_of_every_hostile_name_scans_to_one_row_per_video(ray_cluster, tiny_model, tmp_path):
    """The issue's whole list at once, through the command line: exit 0 and one row per video file,
    each under its exact name; links to files outside the archive are not followed."""
    import json

    from typer.testing import CliRunner

    from dfscan.cli import app

    root, out = tmp_path / "archive", tmp_path / "out"
    names = [b"plain.mp4", RAW_NAME, b"m\\xff\\xfe.mp4", b"..mp4", b"...mp4", b"-rf.mp4", b"new\nline.mp4",
             b"![x](https:127.0.0.1:8811/p.png).mp4", b"<img src=x onerror=alert(1)>.mp4", b" spaced .mp4",
             b"x" * 251 + b".mp4", b"sub/.hidden.mp4"]
    make_videos(root, ["seed.mp4"])
    for name in names:
        target = os.path.join(os.fsencode(root), name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        os.link(root / "seed.mp4", target)
    os.remove(root / "seed.mp4")
    (tmp_path / "secret.mp4").write_bytes(b"outside")
    os.symlink(tmp_path / "secret.mp4", root / "link.mp4")  # a link out of the archive: not followed
    os.symlink(root / "sub", root / "sub" / "loop")  # a folder link loop: not followed either
    result = CliRunner().invoke(app, ["run", str(root), "--model", str(tiny_model), "--out", str(out), "--gpus", "0",
                                      "--workers", "1", "--batch-size", "4", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert (summary["scanned"], summary["ok"], summary["errors"]) == (len(names), len(names), 0)
    rows = pads.dataset([str(p) for p in out.glob("part-*.parquet")]).to_table().to_pylist()
    assert sorted(row["path_bytes"] for row in rows) == sorted(names)
    assert all(row["path"] == display_path(os.fsdecode(row["path_bytes"])) for row in rows)
