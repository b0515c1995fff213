"""Augmentation: flips and photometric jitter are drawn once per clip."""

import numpy as np

from training.augment import AugmentConfig, augment_clip


def test_augment_clip_flip_and_jitter_are_per_clip():
    rng = np.random.default_rng(0)
    clip = np.tile(np.arange(32, dtype=np.uint8)[None, None, :, None] * 4, (3, 32, 1, 3))  # (3, 32, 32, 3)
    flipped = augment_clip(clip, rng, AugmentConfig(flip=True, brightness=0, contrast=0))
    while np.array_equal(flipped, clip):  # flips with probability 1/2
        flipped = augment_clip(clip, rng, AugmentConfig(flip=True, brightness=0, contrast=0))
    np.testing.assert_array_equal(flipped, clip[:, :, ::-1])
    jittered = augment_clip(clip, rng, AugmentConfig(flip=False, brightness=0.1, contrast=0.1))
    shift = jittered.astype(int) - clip.astype(int)
    # one brightness/contrast change for the whole clip: every frame moves alike (no added flicker)
    assert np.array_equal(shift[0], shift[1]) and np.array_equal(shift[1], shift[2])
