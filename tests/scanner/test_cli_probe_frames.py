"""`dfscan probe` and `dfscan frames` (scanner/cli.py) on every codec the kernels read."""

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from scanner.cli import app
from tests.media import read_index, write_corrupt_corpus, write_index_video

runner = CliRunner()


@pytest.mark.parametrize("codec, name", [("h264", "h264"), ("hevc", "hevc"), ("vp9", "vp9"), ("vp8", "vp8"),
                                         ("av1", "av1"), ("mpeg4", "mpeg4"), ("mjpeg", "mjpeg"),
                                         ("prores", "prores")])
def test_probe_names_every_codec(tmp_path, codec, name):
    video = write_index_video(tmp_path / "c", 12, codec)
    result = runner.invoke(app, ["probe", str(video), "--json"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert (record["codec"], record["frame_count"], record["width"], record["height"]) == (name, 12, 128, 96)


def test_probe_json_reports_facts_and_error_classes(tmp_path):
    video = write_index_video(tmp_path / "a", 30, "h264")
    write_corrupt_corpus(tmp_path / "bad")
    result = runner.invoke(app, ["probe", str(video), str(tmp_path / "bad" / "audio_only.mp4"), "--json"])
    assert result.exit_code == 1  # one file was refused
    first, second = [json.loads(line) for line in result.stdout.splitlines()]
    assert first["ok"] and first["codec"] == "h264" and first["frame_count"] == 30
    assert first["keyframes"] == [0, 12, 24]
    assert second == {"ok": False, "path": str(tmp_path / "bad" / "audio_only.mp4"),
                      "error_class": "NOT_VIDEO", "error_message": "no video stream (streams: audio)"}


@pytest.mark.parametrize("codec", ["h264", "hevc", "vp9", "vp8", "av1", "mpeg4", "mjpeg", "prores"])
def test_frames_writes_exact_frames_and_sheet(tmp_path, codec):
    video = write_index_video(tmp_path / "v", 40, codec)
    out = tmp_path / "frames"
    result = runner.invoke(app, ["frames", str(video), "--out", str(out), "--frames", "5", "--size", "32"])
    assert result.exit_code == 0, result.output
    expected = [0, 10, 20, 29, 39]
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"frame_{i:06d}.png" for i in expected] + ["sheet.png"]
    for i in expected:
        assert read_index(np.asarray(Image.open(out / f"frame_{i:06d}.png"))) == i
    assert Image.open(out / "sheet.png").size == (5 * 32 + 4 * 2, 32)


def test_frames_bad_arguments_get_one_line_and_exit_2(tmp_path):
    video = write_index_video(tmp_path / "v", 10, "h264")
    for args in (["--sampling", "random"], ["--decoder", "cuda"], ["--size", "0"]):
        result = runner.invoke(app, ["frames", str(video), "--out", str(tmp_path / "o"), *args])
        assert result.exit_code == 2
        assert len(result.stderr.strip().splitlines()) == 1


def test_frames_on_corrupt_file_exits_1_with_error_class(tmp_path):
    write_corrupt_corpus(tmp_path)
    result = runner.invoke(app, ["frames", str(tmp_path / "random.mp4"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1
    assert "CONTAINER_INVALID" in result.stderr
