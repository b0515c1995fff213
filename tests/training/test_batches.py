"""Class-balanced batches, and that every video is read through kernels.clips.ClipReader (via the clip
cache)."""

import numpy as np
import pytest

from dfscan.kernels.clips import ClipReader, ClipSpec
from dfscan.training.augment import AugmentConfig
from dfscan.training.batches import ClipBatches, balanced_indices
from dfscan.training.clip_cache import ClipSource
from dfscan.training.layouts import FAKE, REAL, scan_dataset
from dfscan.training.synth import SynthConfig, synth


def test_balanced_batches_with_ten_percent_real():
    labels = np.array([REAL] * 10 + [FAKE] * 90)
    rng = np.random.default_rng(0)
    for _ in range(50):
        rows = balanced_indices(labels, 16, rng)
        assert (labels[rows] == REAL).sum() == 8


@pytest.fixture(scope="module")
def small_archive(tmp_path_factory):
    root = tmp_path_factory.mktemp("small")
    synth(root, SynthConfig(videos=6, frames_per_video=12, width=64, height=64, seed=4))
    return root


def test_batches_read_through_kernels_and_augment_only_training(small_archive, monkeypatch):
    calls = []
    original = ClipReader.read

    def counting(self, paths, offsets=None):
        calls.append((list(paths), None if offsets is None else [int(o) for o in offsets]))
        return original(self, paths, offsets)

    monkeypatch.setattr(ClipReader, "read", counting)
    dataset = scan_dataset(small_archive)
    source = ClipSource(ClipReader(ClipSpec(frames=4, size=32, decoder="pyav")), small_archive)
    items = source.readable(list(dataset.items))
    assert len(items) == 6 and len(calls) == 1 and calls[0][1] == [0] * 6

    plain = np.stack(source.get([i.path for i in items]))  # (6, F, S, S, 3) uint8
    x, y = ClipBatches(source, items, 6)[0]
    assert x.dtype == np.uint8 and x.shape == (6, 4, 32, 32, 3)
    np.testing.assert_array_equal(x, plain)  # evaluation batches are never augmented
    np.testing.assert_array_equal(y.argmax(1), [i.label for i in items])
    assert len(calls) == 1  # served from the cache

    train = ClipBatches(source, items, 6, balanced=True, augment=AugmentConfig(max_offset=2), seed=1)
    xs = [train[step][0] for step in range(4)]
    assert any(len(c) and c[1] is not None and any(c[1]) for c in calls[1:])  # temporal jitter via kernels
    assert all(all(abs(o) <= 2 for o in c[1]) for c in calls[1:] if c[1] is not None)
    assert not any(np.array_equal(batch, plain) for batch in xs)
    train.on_epoch_end()
    np.testing.assert_array_equal(train[0][1].sum(0), [3, 3])  # balanced: 3 real, 3 fake
    # seeded by (seed, epoch, step): the same batch comes back for the same coordinates
    again = ClipBatches(source, items, 6, balanced=True, augment=AugmentConfig(max_offset=2), seed=1)
    np.testing.assert_array_equal(again[2][0], xs[2])
