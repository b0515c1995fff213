"""The synthetic archive: layout, labels, codecs, determinism, and that fakes carry swap traces."""

import csv
import dataclasses
import hashlib
import json

import numpy as np
import pytest

from kernels.probe import probe
from training.layouts import SYNTHETIC_MARKER, scan_dataset
from training.metrics import roc_auc
from training.splits import make_split, summarise
from training.synth import SynthConfig, parse_size, render_video, synth


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
