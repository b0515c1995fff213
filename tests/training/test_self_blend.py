"""Self-blending (after SBI): what the blend may touch, what it changes, and that a video's blend is
one draw that moves smoothly, not a new fake every frame."""

import dataclasses

import numpy as np

from dfscan.training.self_blend import BLEND_RATIOS, blend_frame, blend_mask, draw_params, self_blend_video

BOX = np.array([40.0, 30.0, 48.0, 60.0])  # x, y, w, h


def _frame(seed=0, height=128, width=128):
    """Texture everywhere, so any displacement or colour change shows.  (H, W, 3) uint8"""
    return np.random.default_rng(seed).integers(30, 226, (height, width, 3), dtype=np.uint8)


def test_pixels_outside_the_mask_are_unchanged_and_inside_they_differ():
    frame = _frame()
    for seed in range(6):
        params = draw_params(np.random.default_rng(seed))
        out, mask = blend_frame(frame, BOX, params, t=3)
        assert out.dtype == np.uint8 and out.shape == frame.shape
        np.testing.assert_array_equal(out[mask == 0], frame[mask == 0])
        assert (mask == 0).mean() > 0.6  # most of the frame is outside the face
        strong = mask >= 0.5 * params.ratio
        assert (out[strong] != frame[strong]).any(axis=-1).mean() > 0.9


def test_the_mask_is_soft_peaks_at_the_ratio_and_stays_near_the_face():
    for seed in range(6):
        params = draw_params(np.random.default_rng(seed))
        mask = blend_mask(BOX, params, 128, 128)
        assert params.ratio in BLEND_RATIOS and mask.max() == params.ratio and mask.min() == 0.0
        ys, xs = np.nonzero(mask)
        x, y, w, h = BOX
        assert xs.min() >= x - w / 2 and xs.max() < x + 1.5 * w and ys.min() >= y - h / 2 and ys.max() < y + 1.5 * h
        assert mask[int(y + h * 0.55), int(x + w / 2)] > 0.9 * params.ratio  # the face's middle is blended
        # soft: no step between neighbours anywhere near the ratio (a hard paste would have one)
        assert max(np.abs(np.diff(mask, axis=0)).max(), np.abs(np.diff(mask, axis=1)).max()) < 0.35 * params.ratio


def test_a_large_face_is_masked_on_a_coarse_grid_with_the_same_shape():
    params = dataclasses.replace(draw_params(np.random.default_rng(2)), ratio=1.0)
    small = blend_mask(BOX, params, 128, 128)
    large = blend_mask(BOX * 8, params, 1024, 1024)  # the same face, 8 times larger: a 64-cell grid
    coarse = large.reshape(128, 8, 128, 8).mean(axis=(1, 3))
    assert np.abs(coarse - small).mean() < 0.01 and np.abs(coarse - small).max() < 0.2  # edges differ a little
    assert large.max() > 0.99 and (large[:, :8 * 16] == 0).all()  # still exact zeros away from the face


def test_same_seed_same_fake_other_seed_differs():
    frames = np.stack([_frame(t) for t in range(4)])
    boxes = np.tile(BOX, (4, 1))
    a = self_blend_video(frames, boxes, np.random.default_rng([5, 1]))
    b = self_blend_video(frames, boxes, np.random.default_rng([5, 1]))
    c = self_blend_video(frames, boxes, np.random.default_rng([5, 2]))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_a_video_is_blended_smoothly_and_the_mask_follows_the_face():
    """A still camera: the blend's change from frame to frame is a small part of the blend itself
    (no flicker, which would be a second, easier trace); a moved box moves the mask with it."""
    still = np.repeat(_frame(1)[None], 12, axis=0)  # (T, H, W, 3)
    boxes = np.tile(BOX, (12, 1))
    for seed in range(4):
        fake = self_blend_video(still, boxes, np.random.default_rng(seed)).astype(np.float64)
        blend = np.abs(fake - still).mean()
        step = np.abs(np.diff(fake, axis=0)).mean()
        assert blend > 0 and step < 0.25 * blend
    params = dataclasses.replace(draw_params(np.random.default_rng(0)), ratio=1.0)
    here = blend_mask(BOX, params, 128, 128)
    moved = blend_mask(BOX + np.array([20.0, 10.0, 0.0, 0.0]), params, 128, 128)
    np.testing.assert_allclose(moved[10:, 20:], here[:-10, :-20], atol=1e-9)


def test_a_stronger_blend_changes_the_face_more_and_never_past_a_full_paste():
    frame = _frame(2)
    weak, strong = [], []
    for seed in range(8):
        for strength, changes in ((1.0, weak), (3.0, strong)):
            params = draw_params(np.random.default_rng(seed), strength)
            assert 0.0 < params.ratio <= 1.0
            out, _ = blend_frame(frame, BOX, params, t=0)
            changes.append(np.abs(out.astype(int) - frame).mean())
    assert np.mean(strong) > 1.4 * np.mean(weak)
    assert sum(s > w for s, w in zip(strong, weak)) >= 6
