"""Augmentation: flips and photometric jitter are drawn once per clip, spatial crops once per frame, and
each one does what it says."""

import numpy as np
import pytest

from dfscan.training.augment import AugmentConfig, augment_clip

CLIP = np.tile(np.arange(32, dtype=np.uint8)[None, None, :, None] * 4 + 60, (3, 32, 1, 3))  # (3, 32, 32, 3) ramp


def test_a_flip_mirrors_about_half_of_the_clips_and_nothing_else():
    rng = np.random.default_rng(0)
    draws = [augment_clip(CLIP, rng, AugmentConfig(flip=True, brightness=0, contrast=0)) for _ in range(40)]
    mirrored = [np.array_equal(d, CLIP[:, :, ::-1]) for d in draws]
    untouched = [np.array_equal(d, CLIP) for d in draws]
    assert all(m != u for m, u in zip(mirrored, untouched))  # each clip is exactly one of the two
    assert 10 <= sum(mirrored) <= 30  # probability 1/2 (seeded: the count is fixed)
    off = [augment_clip(CLIP, rng, AugmentConfig(flip=False, brightness=0, contrast=0)) for _ in range(10)]
    assert all(np.array_equal(d, CLIP) for d in off)


def test_jitter_moves_brightness_and_contrast_once_per_clip_within_its_bounds():
    rng = np.random.default_rng(1)
    slopes, shifts = [], []
    for _ in range(20):
        jittered = augment_clip(CLIP, rng, AugmentConfig(flip=False, brightness=0.1, contrast=0.1))
        shift = jittered.astype(int) - CLIP.astype(int)
        # one change for the whole clip: every frame moves alike (no added flicker)
        assert np.array_equal(shift[0], shift[1]) and np.array_equal(shift[1], shift[2])
        slope, _ = np.polyfit(CLIP[0, 0, :, 0].astype(float), jittered[0, 0, :, 0].astype(float), 1)
        slopes.append(slope)
        shifts.append(jittered.mean() - CLIP.mean())
    assert all(0.89 <= s <= 1.11 for s in slopes) and max(abs(s - 1) for s in slopes) > 0.02  # contrast acts
    assert all(abs(s) <= 0.1 * 255 + 1 for s in shifts) and max(abs(s) for s in shifts) > 5  # brightness acts


def test_spatial_crops_cut_a_square_of_each_frame_at_its_own_place():
    rng = np.random.default_rng(2)
    clip = np.random.default_rng(5).integers(0, 256, (6, 24, 24, 3), dtype=np.uint8)  # (F, S, S, 3), all distinct
    config = AugmentConfig(flip=False, brightness=0, contrast=0, spatial_crop=10)
    crops = augment_clip(clip, rng, config)
    assert crops.shape == (6, 10, 10, 3)
    places = []
    for frame, crop in zip(clip, crops):
        found = [(top, left) for top in range(15) for left in range(15)
                 if np.array_equal(frame[top:top + 10, left:left + 10], crop)]
        assert len(found) == 1  # a true square of its own frame, unchanged
        places.append(found[0])
    assert len(set(places)) > 1  # drawn per frame, not once per clip
    again = augment_clip(clip, np.random.default_rng(2), config)
    assert np.array_equal(again, crops)  # seeded
    with pytest.raises(ValueError, match="does not fit"):
        augment_clip(clip, rng, AugmentConfig(spatial_crop=25))
