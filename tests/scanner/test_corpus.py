"""A hostile archive: corrupt files get their error class, odd entries get no row, nothing hangs."""

from __future__ import annotations

import os

from dfscan.scanner.run import run_scan
from tests.media import write_corrupt_corpus
from tests.scanner.conftest import make_videos, rows_by_path, scan_config


def test_corrupt_and_odd_corpus(ray_cluster, tiny_model, tmp_path):
    root, out = tmp_path / "archive", tmp_path / "out"
    good = make_videos(root, ["good/one.mp4", "good/two.mp4", "good/three.mp4"])
    expected = {f"bad/{name}": cls.value for name, cls in write_corrupt_corpus(root / "bad").items()}
    # Odd entries that must never become rows (nor be opened):
    os.symlink("..", root / "good" / "cycle")  # a symlink cycle
    outside = tmp_path / "outside"
    make_videos(outside, ["elsewhere.mp4"])
    os.symlink(outside / "elsewhere.mp4", root / "link_out.mp4")  # a link out of the archive
    os.symlink(outside, root / "link_out_dir")
    os.mkfifo(root / "fifo.mp4")  # reading it would block forever
    (root / "x.mp4").mkdir()  # a directory named like a video
    (root / "notes.txt").write_text("not a video")
    (root / "good" / "poster.jpg").write_bytes(b"\xff\xd8\xff")

    summary = run_scan(scan_config(root, tiny_model, out, batch_size=4))
    rows = rows_by_path(out)
    assert sorted(rows) == sorted([*good, *expected])  # exactly the regular video files
    assert all(len(v) == 1 for v in rows.values())
    for path, cls in expected.items():
        (row,) = rows[path]
        assert (row["status"], row["error_class"]) == ("error", cls), path
        assert row["error_message"] and row["p_fake"] is None and row["verdict"] is None
    for path in good:
        assert rows[path][0]["status"] == "ok"
    assert (summary.ok, summary.errors) == (3, 6)
    assert summary.errors_by_class == {"CONTAINER_INVALID": 3, "EMPTY": 1, "LIMIT_EXCEEDED": 1, "NOT_VIDEO": 1}

    # --retry-errors rescans exactly the files whose newest row is an error.
    retry = run_scan(scan_config(root, tiny_model, out, batch_size=4, retry_errors=True))
    assert (retry.scanned, retry.skipped, retry.errors) == (6, 3, 6)
    assert {p: len(v) for p, v in rows_by_path(out).items()} == {p: 1 if p in good else 2 for p in rows}
