"""The scale benchmark's own arithmetic and archive (the benchmark itself runs by hand: benchmarks/scale.py)."""

from __future__ import annotations

from dfscan.benchmarks.scale import extrapolate, make_archive
from dfscan.scanner.walk import walk_archive


def test_make_archive_numbers_empty_files_in_folders_of_a_thousand(tmp_path):
    make_archive(tmp_path, 1001)
    make_archive(tmp_path, 2, start=10 ** 8)  # files added later never clash with the first ones
    paths = [entry.path for entry in walk_archive(tmp_path)]
    assert len(paths) == 1003 and paths[:2] == ["d00000/v00000000.mp4", "d00000/v00000001.mp4"]
    assert "d00001/v00001000.mp4" in paths and "d100000/v100000001.mp4" in paths
    assert all(entry.size == 0 for entry in walk_archive(tmp_path))


def test_extrapolation_uses_the_slope_between_two_sizes():
    small = {"files": 100_000, "rerun": {"wall_s": 3.0, "peak_rss_mb": 200.0}, "compact": {"wall_s": 2.0},
             "read_after": {"read_table_s": 0.1}}
    large = {"files": 1_000_000, "rerun": {"wall_s": 21.0, "peak_rss_mb": 236.0}, "compact": {"wall_s": 20.0},
             "read_after": {"read_table_s": 1.0}}
    out = extrapolate(small, large)
    assert out["rerun_wall_s"] == {"per_million": 20.0, "at_10M": 201.0}
    assert out["rerun_peak_rss_mb"] == {"per_million": 40.0, "at_10M": 596.0}
    assert out["read_after_s"] == {"per_million": 1.0, "at_10M": 10.0}
