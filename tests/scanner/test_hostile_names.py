"""Hostile archives: a file name that is not UTF-8 (Linux names are bytes) must get its row like any
other, with the name kept losslessly, and must not stop the scan (it used to crash every run in the
sink, forever: a UnicodeEncodeError before any row was committed)."""

import os

import pyarrow.dataset as pads

from scanner.run import run_scan
from scanner.verdicts import display_path
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
