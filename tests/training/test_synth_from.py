"""`dfscan synth --from` in the library: a real video with a face becomes a real clip and its
self-blended fake, made and encoded alike; a video without a face and a corrupt file are skipped,
each with its own line, and the rest go on."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from PIL import Image

from dfscan.kernels.faces import Detections, iou
from dfscan.kernels.probe import probe
from tests.face_media import (BACKGROUND, frame_with_portrait, moving_lefts, pasted_face_box,
                               skip_without_mtcnn_weights, write_face_video)
from dfscan.training.layouts import SYNTHETIC_MARKER, scan_dataset
from dfscan.training.synth import encode_archive_video
from dfscan.training.synth_from import NO_FACE, FromConfig, decode_frames, synth_from

FRAME_SIZE, PORTRAIT_SIZE, TOP = (320, 180), (96, 112), 30


class PortraitFinder:
    """A stand-in for MTCNN on these videos: the box of whatever is not the plain grey backdrop."""

    name, version = "portrait-finder", "1"

    def __init__(self):
        self.images = 0

    def detect(self, images):
        self.images += len(images)
        found = []
        for image in images:
            ys, xs = np.nonzero(np.abs(image.astype(int) - BACKGROUND).max(axis=-1) > 40)
            if len(xs) < 50:
                found.append(Detections.empty())
                continue
            box = [xs.min(), ys.min(), xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min()]
            found.append(Detections(np.array([box], dtype=np.float64), np.array([0.99])))
        return found


def _source(root):
    """Two portrait videos (one in a subfolder), a video of a wall, a corrupt file."""
    (root / "day2").mkdir(parents=True)
    write_face_video(root / "anchor", 12, "h264", top=TOP, frame_size=FRAME_SIZE, portrait_size=PORTRAIT_SIZE,
                     lefts=(20, 200))
    write_face_video(root / "day2" / "guest", 10, "vp9", top=TOP + 20, frame_size=FRAME_SIZE,
                     portrait_size=PORTRAIT_SIZE, lefts=(180, 40))
    wall = np.full((10, 96, 160, 3), BACKGROUND, dtype=np.uint8)
    wall[:, 40:56, :] = BACKGROUND + 20  # a shelf: something, but no face
    encode_archive_video(root / "wall.mp4", wall)
    (root / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 20)
    return ["anchor.mp4", "broken.mp4", "day2/guest.webm", "wall.mp4"]


def test_pairs_are_written_and_bad_files_skipped_with_a_line_each(tmp_path):
    source, out = tmp_path / "footage", tmp_path / "out"
    paths = _source(source)
    lines: list[str] = []
    result = synth_from(source, paths, out, FromConfig(face_detect_frames=4), detector=PortraitFinder(),
                        say=lines.append)
    assert [(v.path, v.label) for v in result.videos] == [
        ("real/anchor.mp4.mp4", "real"), ("fake/anchor.mp4.mp4", "fake"),
        ("real/day2__guest.webm.mp4", "real"), ("fake/day2__guest.webm.mp4", "fake")]
    assert [(s.path, s.problem) for s in result.skipped] == [("broken.mp4", "CONTAINER_INVALID"),
                                                             ("wall.mp4", NO_FACE)]
    assert result.sources == 4 and result.counts() == {"CONTAINER_INVALID": 1, NO_FACE: 1}
    assert lines == [f"{s.path}: skipped: {s.problem}: {s.message}" for s in result.skipped]
    assert lines[1] == "wall.mp4: skipped: NO_FACE: no face found: a face in 0 of the 4 frames detected on"
    with open(out / "labels.csv") as handle:
        assert [(r["path"], r["label"]) for r in csv.DictReader(handle)] == [(v.path, v.label) for v in result.videos]
    marker = json.loads((out / SYNTHETIC_MARKER).read_text())
    assert (marker["generator"], marker["kind"], marker["sources"], marker["pairs"]) == \
        ("dfscan synth --from", "self-blend", 4, 2)
    assert [s["path"] for s in marker["skipped"]] == ["broken.mp4", "wall.mp4"]
    dataset = scan_dataset(out)  # what `dfscan train` reads
    assert dataset.synthetic and sorted((i.path, i.label) for i in dataset.items) == sorted(
        (v.path, int(v.label == "fake")) for v in result.videos)
    assert sorted(p.name for p in out.rglob("*tmp*")) == []


def test_the_fake_differs_from_its_real_only_about_the_face(tmp_path):
    source, out = tmp_path / "footage", tmp_path / "out"
    _source(source)
    synth_from(source, ["anchor.mp4"], out, FromConfig(face_detect_frames=4), detector=PortraitFinder())
    real_info, fake_info = probe(out / "real" / "anchor.mp4.mp4"), probe(out / "fake" / "anchor.mp4.mp4")
    assert (real_info.codec, real_info.width, real_info.height, real_info.frame_count) == ("h264", 320, 180, 12)
    assert (fake_info.codec, fake_info.width, fake_info.height, fake_info.frame_count) == ("h264", 320, 180, 12)
    real, fake = decode_frames(real_info, 100, 640).astype(int), decode_frames(fake_info, 100, 640).astype(int)
    near, far = [], []
    for t, left in enumerate(moving_lefts(12, 20, 200)):
        x, y, w, h = (int(v) for v in pasted_face_box(left, TOP, *PORTRAIT_SIZE))
        difference = np.abs(fake[t] - real[t]).max(axis=-1)  # (H, W)
        near.append(difference[y + h // 4: y + 3 * h // 4, x + w // 4: x + 3 * w // 4].mean())
        away = np.ones_like(difference, dtype=bool)
        away[max(0, y - h): y + 2 * h, max(0, x - w): x + 2 * w] = False
        far.append(difference[away].mean())
    assert min(near) > 2.0 and max(far) < 0.5, (near, far)


def test_reads_the_frames_as_displayed_and_scaled_down(tmp_path):
    """A phone video coded sideways (180 x 320) with a display rotation: read upright, 320 x 180,
    scaled to a long side of 160, the portrait where a player shows it."""
    video = write_face_video(tmp_path / "turned", 6, "h264", frame_size=FRAME_SIZE, portrait_size=PORTRAIT_SIZE,
                             top=TOP, lefts=(20, 200), rotation=90)
    info = probe(video)
    assert (info.width, info.height, info.rotation) == (180, 320, 90)
    frames = decode_frames(info, max_frames=4, max_side=160)
    assert frames.shape == (4, 90, 160, 3)
    shown = np.asarray(Image.fromarray(frame_with_portrait(20, TOP, FRAME_SIZE, PORTRAIT_SIZE)).resize((160, 90)))
    assert np.abs(frames[0].astype(int) - shown).mean() < 6


@pytest.mark.parametrize("bad", [dict(max_frames=1), dict(max_side=32), dict(crf=60), dict(codec="mpeg2"),
                                 dict(face_detect_frames=0), dict(blend_strength=0), dict(blend_strength=5)])
def test_config_checks(bad):
    with pytest.raises(ValueError):
        FromConfig(**bad)


def test_mtcnn_finds_the_faces_it_blends(tmp_path):
    """With the real detector: the fake's blend sits on the face MTCNN found."""
    skip_without_mtcnn_weights()
    from dfscan.kernels.faces import MtcnnDetector

    source, out = tmp_path / "footage", tmp_path / "out"
    _source(source)
    result = synth_from(source, ["anchor.mp4", "wall.mp4"], out, FromConfig(face_detect_frames=3),
                        detector=MtcnnDetector())
    assert [v.path for v in result.videos] == ["real/anchor.mp4.mp4", "fake/anchor.mp4.mp4"]
    assert [(s.path, s.problem) for s in result.skipped] == [("wall.mp4", NO_FACE)]
    real = decode_frames(probe(out / "real" / "anchor.mp4.mp4"), 100, 640).astype(int)
    fake = decode_frames(probe(out / "fake" / "anchor.mp4.mp4"), 100, 640).astype(int)
    changed = np.abs(fake[0] - real[0]).max(axis=-1) > 8  # (H, W)
    ys, xs = np.nonzero(changed)
    blended = np.array([xs.min(), ys.min(), xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min()], dtype=np.float64)
    face = np.array(pasted_face_box(moving_lefts(12, 20, 200)[0], TOP, *PORTRAIT_SIZE))
    assert iou(face, blended[None])[0] > 0.3, (face, blended)


def test_the_command_walks_the_folder_reports_each_skip_and_leaves_its_own_output_out(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    import dfscan.kernels.faces
    from dfscan.cli import app

    monkeypatch.setattr(dfscan.kernels.faces, "MtcnnDetector", PortraitFinder)
    source = tmp_path / "footage"
    _source(source)
    (source / "notes.txt").write_text("not a video")
    out = source / "training-set"  # inside the folder walked: the second run must not read the first's output
    for _ in range(2):
        result = CliRunner().invoke(app, ["synth", str(out), "--from", str(source), "--max-frames", "8"])
        assert result.exit_code == 0, result.output
        assert result.stdout.strip() == (f"wrote 2 pairs (a real clip and its self-blended fake) from 4 videos to "
                                         f"{out}; skipped 2 (CONTAINER_INVALID 1, NO_FACE 1)")
        lines = result.stderr.strip().splitlines()
        assert [line.split(":")[:3] for line in lines] == [["dfscan", " broken.mp4", " skipped"],
                                                           ["dfscan", " wall.mp4", " skipped"]]
        assert probe(out / "fake" / "day2__guest.webm.mp4").frame_count == 8


def test_the_command_refuses_bad_arguments_and_an_empty_harvest(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    import dfscan.kernels.faces
    from dfscan.cli import app

    monkeypatch.setattr(dfscan.kernels.faces, "MtcnnDetector", PortraitFinder)
    runner = CliRunner()
    result = runner.invoke(app, ["synth", str(tmp_path / "out"), "--from", str(tmp_path / "missing")])
    assert result.exit_code == 2 and result.stderr.strip() == f"dfscan: error: --from: folder not found: {tmp_path / 'missing'}"
    (tmp_path / "src").mkdir()
    result = runner.invoke(app, ["synth", str(tmp_path / "out"), "--from", str(tmp_path / "src"), "--max-side", "10"])
    assert result.exit_code == 2 and result.stderr.strip() == "dfscan: error: max side must be between 64 and 4096 " \
                                                              "pixels, got 10"
    encode_archive_video(tmp_path / "src" / "wall.mp4", np.full((4, 64, 64, 3), BACKGROUND, dtype=np.uint8))
    result = runner.invoke(app, ["synth", str(tmp_path / "out"), "--from", str(tmp_path / "src")])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1] == (f"dfscan: error: no video under {tmp_path / 'src'} gave a pair: "
                                                      "nothing to train on")
    result = runner.invoke(app, ["synth", str(tmp_path / "s"), "--kind", "anime"])
    assert result.exit_code == 2 and result.stderr.strip() == ("dfscan: error: unknown kind 'anime'; expected one of "
                                                               "cartoon, portrait")
