"""Self-blended twins: a real training video with a face is also trained on as a fake blended with itself;
the twin is the same blend every time it is read, only the face square changes, and nothing else is a twin."""

from __future__ import annotations

import numpy as np
import pytest

from dfscan.kernels.scope import ClipFacts
from dfscan.training.blend_twins import TWIN_SUFFIX, TwinSource, twin_items
from dfscan.training.fit import TrainConfig, train
from dfscan.training.layouts import FAKE, REAL, VideoItem
from tests.face_media import write_face_video

S, F = 40, 3


class StandInSource:
    """A ClipSource's interface over fixed clips; counts what it is asked for."""

    def __init__(self, clips: dict[str, np.ndarray]):
        self.clips, self.asked = clips, []
        self.errors, self.facts = {"broken.mp4": "DECODE_ERROR"}, {}

    def get(self, paths, offsets=None):
        self.asked.append((list(paths), list(offsets) if offsets is not None else None))
        return [None if p in self.errors else self.clips[p] for p in paths]


def _clip(seed: int) -> np.ndarray:
    ramp = np.linspace(40, 200, S, dtype=np.float32)[None, :, None] + np.linspace(0, 30, S)[:, None, None]
    noise = np.random.default_rng(seed).normal(0, 6, (F, S, S, 3))
    return np.clip(ramp + noise, 0, 255).astype(np.uint8)  # (F, S, S, 3)


def test_only_reals_with_a_face_get_a_twin():
    items = [VideoItem("a.mp4", REAL), VideoItem("b.mp4", REAL, "g"), VideoItem("c.mp4", FAKE),
             VideoItem("d.mp4", REAL)]
    facts = {"a.mp4": ClipFacts(640, True, 80.0), "b.mp4": ClipFacts(640, True, 90.0),
             "c.mp4": ClipFacts(640, True, 80.0), "d.mp4": ClipFacts(640, False, None)}
    assert twin_items(items, facts) == [VideoItem("a.mp4" + TWIN_SUFFIX, FAKE), VideoItem("b.mp4" + TWIN_SUFFIX, FAKE, "g")]


def test_a_twin_is_its_real_clip_blended_in_the_face_square_and_the_same_every_read():
    source = StandInSource({"a.mp4": _clip(1), "b.mp4": _clip(2)})
    twins = TwinSource(source, strength=1.0, margin=2.5, seed=0)
    real, twin, broken = twins.get(["a.mp4", "a.mp4" + TWIN_SUFFIX, "broken.mp4" + TWIN_SUFFIX])
    assert source.asked[0] == (["a.mp4", "a.mp4", "broken.mp4"], [0, 0, 0])  # twins read as their real video
    assert np.array_equal(real, _clip(1)) and broken is None
    changed = np.any(twin != real, axis=(0, 3))  # (S, S): where any frame changed
    assert changed.any()
    side = S / 2.5  # the face square, centred: the blend reaches at most half a square beyond it (self_blend)
    outside = np.ones((S, S), bool)
    low, high = int(np.floor((S - side) / 2 - side / 2)), int(np.ceil((S + side) / 2 + side / 2))
    outside[max(0, low):high, max(0, low):high] = False
    assert outside.sum() == S * S - 32 * 32 and not changed[outside].any()  # a 4-pixel border stays as it was
    again = TwinSource(StandInSource({"a.mp4": _clip(1)}), strength=1.0, margin=2.5, seed=0)
    assert np.array_equal(again.get(["a.mp4" + TWIN_SUFFIX])[0], twin)  # seeded by the run's seed and the path
    other_seed = TwinSource(StandInSource({"a.mp4": _clip(1)}), strength=1.0, margin=2.5, seed=1)
    assert not np.array_equal(other_seed.get(["a.mp4" + TWIN_SUFFIX])[0], twin)
    assert twins.errors is source.errors and twins.facts is source.facts


def test_twins_need_face_crops():
    with pytest.raises(ValueError, match="need face crops"):
        TrainConfig(data="d", out="o", self_blend=1.0).resolved()
    with pytest.raises(ValueError, match="between 0 and 3"):
        TrainConfig(data="d", out="o", crop="face", self_blend=4.0).resolved()


def test_training_with_twins_counts_them_and_its_scope_says_real_and_synthetic(tmp_path):
    data = tmp_path / "data"
    for label in ("real", "fake"):
        for i in range(2):
            (data / label).mkdir(parents=True, exist_ok=True)
            write_face_video(data / label / f"{label}{i}", 12, "vp9", top=60 + 40 * i)
    result = train(TrainConfig(data=str(data), out=str(tmp_path / "run"), arch="residual-cnn", frames=2, size=40,
                               width=0.25, batch_size=2, epochs=1, steps_per_epoch=2, test_fraction=0.5,
                               val_fraction=0, crop="face", face_margin=1.5, face_detect_size=400,
                               self_blend=1.0, verbose=0))
    train_reals = result.card["dataset"]["train"]["real"]
    assert train_reals == 1 and result.metrics["training"]["self_blended_twins"] == train_reals
    assert result.card["scope"]["data"] == "both"
