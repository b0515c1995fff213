"""The archive walk: only regular video files, links handled safely, nothing special ever opened."""

from __future__ import annotations

import os
import types

import pytest

from dfscan.scanner import walk as walk_mod
from dfscan.scanner.walk import WalkStats, walk_archive


@pytest.fixture
def odd_tree(tmp_path):
    """Videos, non-videos, a FIFO and a directory with video names, a link cycle, links in and out."""
    root = tmp_path / "archive"
    (root / "sub" / "deeper").mkdir(parents=True)
    for name in ("a.mp4", "B.MOV", "sub/c.webm", "sub/deeper/d.mkv", "sub/x.Mp4"):
        (root / name).write_bytes(b"not really a video, the walk never reads it")
    for name in ("notes.txt", "sub/thumb.jpg", "mp4", "sub/archive.mp4.bak"):
        (root / name).write_text("x")
    os.mkfifo(root / "pipe.mp4")  # opening it would block forever
    (root / "dir.mp4").mkdir()  # a directory with a video name
    (root / "dir.mp4" / "inside.avi").write_bytes(b"x")
    os.symlink("..", root / "sub" / "loop")  # a cycle back to the archive root
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.mp4").write_bytes(b"x")
    os.symlink(outside, root / "out_dir_link")  # a link out of the archive (directory)
    os.symlink(outside / "secret.mp4", root / "out_file_link.mp4")  # ... and to a file outside
    os.symlink(root / "sub" / "c.webm", root / "in_link.webm")  # a link to a file inside
    os.symlink(root / "missing.mp4", root / "dangling.mp4")
    return root


def paths(root, **kwargs):
    return sorted(e.path for e in walk_archive(root, **kwargs))


def test_default_walk_yields_regular_videos_only(odd_tree):
    stats = WalkStats()
    got = paths(odd_tree, stats=stats)
    assert got == ["B.MOV", "a.mp4", "dir.mp4/inside.avi", "sub/c.webm", "sub/deeper/d.mkv", "sub/x.Mp4"]
    assert stats.files == 6
    assert stats.skipped_special == 1  # the FIFO (the directory named dir.mp4 is walked into)
    assert stats.skipped_links == 5  # no link is followed by default
    assert stats.skipped_other == 4


def test_follow_links_stays_inside_and_ends_cycles(odd_tree):
    stats = WalkStats()
    got = paths(odd_tree, follow_links=True, stats=stats)
    # in_link.webm is inside the archive; the loop back to the root is entered once (as the root).
    assert got == ["B.MOV", "a.mp4", "dir.mp4/inside.avi", "in_link.webm", "sub/c.webm", "sub/deeper/d.mkv",
                   "sub/x.Mp4"]
    assert not any("secret" in p for p in got)
    joined = "\n".join(stats.problems)
    assert "out_dir_link" in joined and "out_file_link.mp4" in joined and "dangling.mp4" in joined


def test_extensions_are_case_insensitive_and_configurable(odd_tree):
    assert paths(odd_tree, extensions=("MKV", ".webm")) == ["sub/c.webm", "sub/deeper/d.mkv"]


def test_unreadable_directory_is_reported_not_fatal(odd_tree, monkeypatch):
    real_scandir = os.scandir

    def scandir(path):  # as root, chmod 000 does not stop reads: simulate the refusal instead
        if str(path).endswith("sub"):
            raise PermissionError(13, "Permission denied")
        return real_scandir(path)

    monkeypatch.setattr(walk_mod.os, "scandir", scandir)
    stats = WalkStats()
    assert paths(odd_tree, stats=stats) == ["B.MOV", "a.mp4", "dir.mp4/inside.avi"]
    assert stats.problem_count == 1 and "cannot list directory sub" in stats.problems[0]


def test_walk_streams(tmp_path):
    root = tmp_path / "many"
    for d in range(20):
        (root / f"d{d:02d}").mkdir(parents=True)
        for f in range(50):
            (root / f"d{d:02d}" / f"{f:03d}.mp4").touch()
    gen = walk_archive(root)
    assert isinstance(gen, types.GeneratorType)
    first = next(gen)  # the first file comes before the walk has seen the other directories
    assert first.path == "d00/000.mp4" and first.size == 0 and first.inode > 0
    assert 1 + sum(1 for _ in gen) == 1000


def test_missing_archive_raises(tmp_path):
    with pytest.raises(FileNotFoundError):
        list(walk_archive(tmp_path / "nope"))


def test_names_made_of_dots_and_an_extension_are_videos_too(tmp_path):
    """'..mp4', '...mp4' and '.mp4' have an extension: os.path.splitext says they do not, and such
    files used to be skipped without a word, so content could hide from the scan under them."""
    for name in ("..mp4", "...mp4", ".mp4", "a..MOV", "plain.mp4", "mp4", "notes."):
        (tmp_path / name).write_bytes(b"x")
    stats = WalkStats()
    found = sorted(entry.path for entry in walk_archive(tmp_path, stats=stats))
    assert found == sorted(["..mp4", "...mp4", ".mp4", "a..MOV", "plain.mp4"])
    assert (stats.files, stats.skipped_other) == (5, 2)
