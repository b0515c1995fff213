"""The synthetic archive: layout, labels, codecs, determinism, and that fakes carry swap traces; the
portrait kind: a real face MTCNN finds, filmed differently per video, fakes self-blended."""

import csv
import dataclasses
import hashlib
import json

import numpy as np
import pytest

from dfscan.kernels.faces import iou
from dfscan.kernels.probe import probe
from dfscan.training.layouts import SYNTHETIC_MARKER, scan_dataset
from dfscan.training.metrics import roc_auc
from dfscan.training.splits import make_split, summarise
from dfscan.training.portrait import CRF_RANGE, render_portrait_video
from dfscan.training.synth import SynthConfig, parse_size, render_video, synth
from tests.face_media import skip_without_mtcnn_weights


def _digests(root):
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("codec,extension,codec_name", [("h264", ".mp4", "h264"), ("vp9", ".webm", "vp9")])
def test_layout_labels_and_codec(tmp_path, codec, extension, codec_name):
    config = SynthConfig(videos=5, frames_per_video=10, width=64, height=48, codec=codec, seed=3)
    videos = synth(tmp_path, config)
    assert [v.label for v in videos].count("real") == 3 and [v.label for v in videos].count("fake") == 2
    with open(tmp_path / "labels.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["path"], r["label"]) for r in rows] == [(v.path, v.label) for v in videos]
    # Marked synthetic, so a model card trained on it says its model never saw a real deepfake.
    assert json.loads((tmp_path / SYNTHETIC_MARKER).read_text())["generator"] == "dfscan synth"
    dataset = scan_dataset(tmp_path)
    assert dataset.synthetic and summarise(dataset, make_split(dataset, seed=0))["synthetic"] is True
    (tmp_path / SYNTHETIC_MARKER).unlink()
    assert not scan_dataset(tmp_path).synthetic
    for row in rows:
        assert row["path"].startswith(row["label"] + "/") and row["path"].endswith(extension)
        info = probe(tmp_path / row["path"])
        assert (info.codec, info.width, info.height, info.frame_count) == (codec_name, 64, 48, 10)
    # no temporary files left behind
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file() and "tmp" in p.name) == []


@pytest.mark.parametrize("codec", ["h264", "vp9"])
def test_same_seed_same_bytes_other_seed_differs(tmp_path, codec):
    config = SynthConfig(videos=4, frames_per_video=8, width=64, height=64, seed=7, codec=codec)
    synth(tmp_path / "a", config)
    # other encodes in between: x264's lookahead once made the bytes depend on what ran before
    synth(tmp_path / "other", SynthConfig(videos=2, frames_per_video=10, width=64, height=48, seed=3, codec=codec))
    synth(tmp_path / "b", config)
    synth(tmp_path / "c", dataclasses.replace(config, seed=8))
    a, b, c = (_digests(tmp_path / name) for name in "abc")
    assert a == b
    assert set(a.values()).isdisjoint(c.values())


def test_fakes_carry_the_traces_of_a_swap():
    """Fakes flicker in the face region relative to the frame, and their faces are blurrier: both
    measured on raw rendered pixels, both must separate the classes."""
    flicker, sharpness, labels = [], [], []
    for i in range(8):
        for fake in (False, True):
            x = render_video(11, i, fake, frames=12, height=64, width=64).astype(np.float32)  # (T, H, W, 3)
            centre = x[:, 22:42, 22:42].mean(axis=(1, 2, 3)) - x.mean(axis=(1, 2, 3))
            flicker.append(np.std(np.diff(centre)))
            lap = np.abs(4 * x[:, 1:-1, 1:-1] - x[:, 2:, 1:-1] - x[:, :-2, 1:-1] - x[:, 1:-1, 2:] - x[:, 1:-1, :-2])
            sharpness.append(lap[:, 22:42, 22:42].mean())
            labels.append(int(fake))
    assert roc_auc(labels, flicker) >= 0.9
    assert roc_auc(labels, [-s for s in sharpness]) >= 0.9


def test_config_checks():
    assert parse_size("128x96") == (128, 96)
    with pytest.raises(ValueError):
        parse_size("128")
    with pytest.raises(ValueError):
        SynthConfig(codec="mpeg2")
    with pytest.raises(ValueError):
        SynthConfig(width=63)


def test_portrait_archive_is_marked_with_its_kind_and_compressed_differently_per_video(tmp_path):
    config = SynthConfig(videos=4, frames_per_video=6, width=96, height=80, seed=2, kind="portrait")
    videos = synth(tmp_path, config)
    assert [(v.path, v.label) for v in videos] == [
        ("real/real_0002_0000.mp4", "real"), ("real/real_0002_0001.mp4", "real"),
        ("fake/fake_0002_0000.mp4", "fake"), ("fake/fake_0002_0001.mp4", "fake")]
    marker = json.loads((tmp_path / SYNTHETIC_MARKER).read_text())
    assert (marker["generator"], marker["kind"], marker["blend_strength"]) == ("dfscan synth", "portrait", 1.0)
    for video in videos:
        info = probe(tmp_path / video.path)
        assert (info.codec, info.width, info.height, info.frame_count) == ("h264", 96, 80, 6)
    crfs = {render_portrait_video(2, i, fake, 1, 80, 96).crf for i in range(6) for fake in (False, True)}
    assert len(crfs) > 3 and min(crfs) >= CRF_RANGE[0] and max(crfs) <= CRF_RANGE[1]


def test_portrait_same_seed_same_bytes(tmp_path):
    config = SynthConfig(videos=2, frames_per_video=4, width=64, height=64, seed=4, kind="portrait")
    synth(tmp_path / "a", config)
    synth(tmp_path / "b", config)
    synth(tmp_path / "c", dataclasses.replace(config, seed=5))
    a, b, c = (_digests(tmp_path / name) for name in "abc")
    assert a == b
    assert set(v for k, v in a.items() if k.endswith(".mp4")).isdisjoint(c.values())


def test_portrait_videos_vary_and_each_fake_is_its_real_twin_self_blended():
    """Videos differ in place, size and light; fake i is real i self-blended: pixels away from the
    face are the same, the face is not, and both are compressed alike."""
    first = render_portrait_video(3, 0, False, 4, 96, 96)
    second = render_portrait_video(3, 1, False, 4, 96, 96)
    assert np.abs(first.face_boxes[0] - second.face_boxes[0]).max() > 3
    assert np.abs(first.pixels.astype(int) - second.pixels).mean() > 10
    assert first.pixels.shape == (4, 96, 96, 3) and first.face_boxes.shape == (4, 4)
    assert np.abs(np.diff(first.face_boxes[:, :2], axis=0)).max() < 4  # the face moves smoothly
    fake = render_portrait_video(3, 0, True, 4, 96, 96)
    np.testing.assert_array_equal(fake.face_boxes, first.face_boxes)
    assert fake.crf == first.crf
    for t, (x, y, w, h) in enumerate(first.face_boxes):
        away = np.ones((96, 96), dtype=bool)
        away[max(0, int(y - h / 2)): int(y + 1.5 * h) + 1, max(0, int(x - w / 2)): int(x + 1.5 * w) + 1] = False
        np.testing.assert_array_equal(fake.pixels[t][away], first.pixels[t][away])
        face = (slice(int(y + h / 3), int(y + 2 * h / 3)), slice(int(x + w / 3), int(x + 2 * w / 3)))
        assert (fake.pixels[t][face] != first.pixels[t][face]).any(axis=-1).mean() > 0.5


@pytest.fixture(scope="module")
def mtcnn():
    skip_without_mtcnn_weights()
    from dfscan.kernels.faces import MtcnnDetector

    return MtcnnDetector()


def test_mtcnn_finds_the_portrait_where_it_was_drawn_in_real_and_fake_videos(mtcnn):
    images, drawn = [], []
    for index in range(3):
        for fake in (False, True):
            video = render_portrait_video(6, index, fake, 5, 128, 128, blend_strength=3.0)
            images += [video.pixels[0], video.pixels[4]]
            drawn += [video.face_boxes[0], video.face_boxes[4]]
    for found, box in zip(mtcnn.detect(images), drawn):
        assert len(found.scores) >= 1 and found.scores.max() > 0.9
        assert iou(box, found.boxes).max() > 0.5, (box, found.boxes)


def test_portrait_config_checks():
    with pytest.raises(ValueError):
        SynthConfig(kind="anime")
    with pytest.raises(ValueError):
        SynthConfig(kind="portrait", blend_strength=0)
