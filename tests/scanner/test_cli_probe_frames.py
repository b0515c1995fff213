"""`dfscan probe` and `dfscan frames` (scanner/cli.py) on every codec the kernels read; `frames --crop face`."""

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from dfscan.kernels.export import DETECTED, FALLBACK
from dfscan.cli import app
from tests.face_media import moving_lefts, pasted_face_box, write_face_video
from tests.media import read_index, write_corrupt_corpus, write_index_video
from tests.models import write_face_card

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


def test_frames_crop_face_writes_crops_faces_json_and_boxed_sheet(tmp_path):
    video = write_face_video(tmp_path / "face", 30, "vp9")
    out = tmp_path / "frames"
    result = runner.invoke(app, ["frames", str(video), "--out", str(out), "--frames", "4", "--size", "48",
                                 "--crop", "face", "--face-margin", "1.5"])
    assert result.exit_code == 0, result.output
    expected = [0, 10, 19, 29]
    assert sorted(p.name for p in out.iterdir()) == ["faces.json"] + [f"frame_{i:06d}.png" for i in expected] + \
        ["sheet.png"]
    assert "face in 4 of 4 frames detected on, crop face" in result.stdout
    document = json.loads((out / "faces.json").read_text())
    assert (document["crop"], document["face_found"], document["face_frames"], document["detected_on"]) == \
        ("face", True, 4, 4)
    assert (document["margin"], document["detector"], document["display_size"]) == (1.5, "mtcnn 1.0.0", [640, 360])
    assert [row["index"] for row in document["frames"]] == expected
    lefts = moving_lefts(30)
    for row in document["frames"]:
        assert row["detected"] is True and 0.9 <= row["confidence"] <= 1.0
        x, y, w, h = row["box"]
        tx, ty, tw, th = pasted_face_box(lefts[row["index"]], 100, 128, 150)
        assert abs(x + w / 2 - tx - tw / 2) < 6 and abs(y + h / 2 - ty - th / 2) < 6
        assert row["crop_box"][2] == row["crop_box"][3] == pytest.approx(1.5 * max(w, h), abs=0.02)  # 2 decimals
    for i in expected:
        assert Image.open(out / f"frame_{i:06d}.png").size == (48, 48)
    sheet = np.asarray(Image.open(out / "sheet.png").convert("RGB"))
    assert sheet.shape == (144, 4 * 256 + 3 * 2, 3)  # whole frames at the display's shape, long side 256
    green = np.all(sheet == DETECTED, axis=2)
    for tile in range(4):
        assert green[:, tile * 258: tile * 258 + 256].sum() > 100  # each frame shows its detected square


def test_frames_crop_face_without_a_face_says_so(tmp_path):
    video = write_index_video(tmp_path / "grid", 30, "vp9", width=256, height=192)
    out = tmp_path / "frames"
    result = runner.invoke(app, ["frames", str(video), "--out", str(out), "--frames", "4", "--size", "32",
                                 "--crop", "face"])
    assert result.exit_code == 0, result.output
    document = json.loads((out / "faces.json").read_text())
    assert (document["crop"], document["face_found"], document["face_frames"], document["face_box"]) == \
        ("frame", False, 0, None)
    assert [(row["confidence"], row["detected"]) for row in document["frames"]] == [(None, False)] * 4
    assert [row["crop_box"] for row in document["frames"]] == [[0.0, 0.0, 256.0, 192.0]] * 4
    sheet = np.asarray(Image.open(out / "sheet.png").convert("RGB"))
    assert not np.all(sheet == DETECTED, axis=2).any() and np.all(sheet == FALLBACK, axis=2).sum() > 100
    for i in [0, 10, 19, 29]:  # the whole frame, squashed: the index still reads
        assert read_index(np.asarray(Image.open(out / f"frame_{i:06d}.png"))) == i


def test_frames_bad_face_arguments_get_one_line_and_exit_2(tmp_path):
    video = write_index_video(tmp_path / "v", 10, "h264")
    for args in (["--crop", "head"], ["--crop", "face", "--face-margin", "5"], ["--crop", "face", "--size", "2048"]):
        result = runner.invoke(app, ["frames", str(video), "--out", str(tmp_path / "o"), *args])
        assert result.exit_code == 2, args
        assert len(result.stderr.strip().splitlines()) == 1
        assert result.stderr.startswith("dfscan: error: ")


def test_frames_reads_the_clip_as_a_models_card_says(tmp_path):
    """`--model`: F, S, sampling, the crop and its face settings come from the card, not from flags."""
    video = write_face_video(tmp_path / "face", 30, "vp9")
    run = write_face_card(tmp_path / "run", frames=3, size=40, margin=1.4)
    out = tmp_path / "frames"
    result = runner.invoke(app, ["frames", str(video), "--out", str(out), "--model", str(run), "--frames", "9"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.glob("frame_*.png")) == [f"frame_{i:06d}.png" for i in (0, 14, 29)]
    assert Image.open(out / "frame_000014.png").size == (40, 40)
    assert json.loads((out / "faces.json").read_text())["margin"] == 1.4
    refused = runner.invoke(app, ["frames", str(video), "--out", str(out), "--model", str(tmp_path / "none")])
    assert refused.exit_code == 2 and refused.output.startswith("dfscan: error: no model card")
