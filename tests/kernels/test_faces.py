"""kernels/faces.py: the track (linking, smoothing, interpolation, fallback) and the crop square with
exact numbers from a stand-in detector's boxes; the crop's pixels (kernels/resize.py); and the real
MTCNN on matplotlib's portrait of Grace Hopper."""

import numpy as np
import pytest

from dfscan.kernels.faces import (MIN_CONFIDENCE, Detections, MtcnnDetector, build_track, detect_positions, iou, link_track,
                           smooth, square_crop)
from dfscan.kernels.resize import crop_resize, resize_frames
from tests.face_media import PORTRAIT_FACE, frame_with_portrait, pasted_face_box, portrait


def faces(*boxes, score=0.99):
    """Detections of one frame from (x, y, w, h) boxes."""
    if not boxes:
        return Detections.empty()
    return Detections(np.array(boxes, dtype=np.float64), np.full(len(boxes), score))


def test_detect_positions_spread_evenly_first_and_last_included():
    assert detect_positions(20, 8).tolist() == [0, 3, 5, 8, 11, 14, 16, 19]
    assert detect_positions(6, 4).tolist() == [0, 2, 3, 5]
    assert detect_positions(3, 8).tolist() == [0, 1, 2]  # never more than F
    assert detect_positions(1, 8).tolist() == [0]


def test_square_crop_margin_exact_and_never_moved_or_shrunk():
    # Centred on the box, 1.5 x its longer side.
    assert square_crop(np.array([100.0, 50, 40, 60]), 1.5).tolist() == [75.0, 35.0, 90.0, 90.0]
    # At the border it reaches past the frame (the crop pads it), still centred on the face.
    assert square_crop(np.array([0.0, 0, 40, 60]), 1.5).tolist() == [-25.0, -15.0, 90.0, 90.0]
    assert square_crop(np.array([610.0, 320, 30, 40]), 1.5).tolist() == [595.0, 310.0, 60.0, 60.0]
    # Larger than the frame (640 x 360): as large as the margin says.
    assert square_crop(np.array([600.0, 300, 100, 200]), 2.0).tolist() == [450.0, 200.0, 400.0, 400.0]


def test_a_track_near_the_border_keeps_its_square_centred_on_the_face():
    detections = {p: faces([-10.0 + 5 * p, 300, 40, 40]) for p in range(4)}  # leaving by the left edge
    track = build_track(detections, np.arange(4), (640, 360), margin=1.5)
    np.testing.assert_allclose(track.crop_boxes, [[-20.0 + 5 * p, 290, 60, 60] for p in range(4)], atol=1e-9)


def test_iou_exact():
    box = np.array([0.0, 0, 10, 10])
    assert iou(box, np.array([[0.0, 0, 10, 10], [5, 0, 10, 10], [20, 20, 5, 5]])).tolist() == [1.0, 50 / 150, 0.0]


def test_steady_motion_is_interpolated_exactly_between_detections():
    """A face moving 10 px a frame, seen at 4 of 10 frames: every frame's box is where the face is."""
    detections = {p: faces([80.0 + 10 * p, 60, 40, 40]) for p in (0, 3, 6, 9)}
    track = build_track(detections, np.arange(10), (640, 360), margin=1.5)
    expected = np.array([[80.0 + 10 * p, 60, 40, 40] for p in range(10)])
    np.testing.assert_allclose(track.boxes, expected, atol=1e-9)
    np.testing.assert_allclose(track.crop_boxes, [[70.0 + 10 * p, 50, 60, 60] for p in range(10)], atol=1e-9)
    assert track.detected.tolist() == [p in (0, 3, 6, 9) for p in range(10)]
    assert np.isnan(track.confidences[[1, 2, 4, 5, 7, 8]]).all()
    assert track.confidences[[0, 3, 6, 9]].tolist() == [0.99] * 4
    assert (track.face_frames, track.detected_on, track.found) == (4, 4, True)


def test_box_is_held_at_the_ends():
    detections = {0: faces(), 2: faces([100.0, 50, 40, 40]), 4: faces([120.0, 50, 40, 40]), 6: faces([140.0, 50, 40, 40]),
                  8: faces()}
    track = build_track(detections, np.arange(9), (640, 360), margin=1.0)
    assert track.boxes[:, 0].tolist() == [100.0, 100.0, 100.0, 110.0, 120.0, 130.0, 140.0, 140.0, 140.0]
    assert (track.face_frames, track.detected_on, track.found) == (3, 5, True)  # 3 of 5: at least half


def test_smoothing_damps_jitter_and_drops_a_single_wrong_box():
    jittery = np.array([[100.0], [104], [100], [104], [100], [104], [100], [104]])
    smoothed = smooth(jittery, np.arange(8))
    assert np.abs(np.diff(smoothed[:, 0])).max() < np.abs(np.diff(jittery[:, 0])).max() / 2
    assert smoothed[:, 0].tolist() == [100.0, 101.0, 102.0, 102.0, 102.0, 102.0, 103.0, 104.0]
    # One box twice the size (a misdetection) leaves the size untouched.
    assert smooth(np.array([[40.0], [40], [80], [40], [40]]), np.arange(5))[:, 0].tolist() == [40.0] * 5


def test_steady_motion_at_uneven_times_passes_smoothing_unchanged():
    """Frames detected on are unevenly spaced in time (source frames 0, 12, 17, 29): a face moving
    steadily keeps its positions; averaging in sample order would pull them 30 px off."""
    times = np.array([0, 12, 17, 29])
    centres = (60.0 + 13 * times)[:, None]
    np.testing.assert_allclose(smooth(centres, times), centres)
    detections = {p: faces([60.0 + 13 * t, 100, 40, 40]) for p, t in zip((0, 2, 3, 5), times)}
    track = build_track(detections, np.array([0, 6, 12, 17, 23, 29]), (640, 360), margin=1.0)
    np.testing.assert_allclose(track.boxes[:, 0], 60.0 + 13 * np.array([0, 6, 12, 17, 23, 29]))


def test_track_keeps_the_largest_face_and_skips_frames_without_it():
    big, small = [100.0, 100, 80, 80], [500.0, 100, 50, 50]
    detections = {0: faces(big, small), 1: faces([104.0, 100, 80, 80], small), 2: faces(small),
                  3: faces(small, [108.0, 100, 80, 80])}
    track = link_track(detections)
    assert sorted(track) == [0, 1, 3]  # frame 2 shows only the other face: a gap, not a jump
    assert [track[p][0][0] for p in (0, 1, 3)] == [100.0, 104.0, 108.0]


def test_track_starts_from_the_largest_face_and_follows_it_both_ways():
    detections = {0: faces([50.0, 50, 60, 60]), 1: faces([60.0, 50, 60, 60]), 2: faces([70.0, 50, 90, 90], [400, 50, 60, 60]),
                  3: faces([400.0, 50, 60, 60], [90, 50, 60, 60])}
    track = link_track(detections)
    assert [track[p][0][0] for p in sorted(track)] == [50.0, 60.0, 70.0, 90.0]


def test_a_face_that_moved_far_between_detections_is_followed_by_its_size():
    """Frames detected on may be seconds apart: no overlap, but the frame's largest face is about the
    track's size, so the track continues; a face 1.67 times smaller than the last does not."""
    detections = {0: faces([100.0, 100, 40, 40]), 1: faces([300.0, 100, 40, 40], [10, 10, 20, 20]),
                  2: faces([500.0, 100, 30, 30]), 3: faces([300.0, 100, 18, 18])}
    track = link_track(detections)
    assert sorted(track) == [0, 1, 2]
    assert [track[p][0][0] for p in (0, 1, 2)] == [100.0, 300.0, 500.0]


def test_unconfident_detections_are_ignored():
    detections = {0: faces([100.0, 100, 40, 40], score=MIN_CONFIDENCE - 0.01), 1: faces([100.0, 100, 40, 40])}
    assert sorted(link_track(detections)) == [1]


def test_boxes_without_area_are_no_faces(recwarn):
    """A zero-wide box (a detector clamping to the edge) is neither the track's start nor a link to follow
    by size, which would divide by its area."""
    detections = {0: faces([639.0, 100, 0, 40]), 1: faces([100.0, 100, 40, 40], [600.0, 300, 60, 0]),
                  2: faces([400.0, 200, 40, 40])}
    assert sorted(link_track(detections)) == [1, 2]
    assert link_track({0: faces([639.0, 100, 0, 40]), 1: faces([639.0, 100, 0, 41])}) == {}
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_too_few_faces_fall_back_to_whole_frames():
    detections = {p: faces() for p in range(8)}
    detections[3] = faces([100.0, 100, 40, 40])  # 1 of 8 frames
    track = build_track(detections, np.arange(20), (640, 360), margin=1.3)
    assert (track.found, track.face_frames, track.detected_on) == (False, 1, 8)
    assert (track.crop_boxes == [0.0, 0.0, 640.0, 360.0]).all()
    nothing = build_track({p: faces() for p in range(8)}, np.arange(20), (640, 360), margin=1.3)
    assert (nothing.found, nothing.face_frames, nothing.median_box) == (False, 0, None)
    assert (nothing.crop_boxes == [0.0, 0.0, 640.0, 360.0]).all()


def test_median_box_and_records():
    detections = {0: faces([64.0, 36, 64, 72]), 1: faces([96.0, 36, 64, 72]), 2: faces([128.0, 36, 64, 72])}
    track = build_track(detections, np.array([10, 20, 30]), (640, 360), margin=1.0)
    assert track.median_box == (0.15, 0.1, 0.1, 0.2)
    rows = track.records([10, 20, 30])
    assert rows[1] == {"index": 20, "box": [96.0, 36.0, 64.0, 72.0], "crop_box": [92.0, 36.0, 72.0, 72.0],
                       "confidence": 0.99, "detected": True}


def test_crop_resize_cuts_the_rectangle_and_resizes_it():
    frames = np.zeros((2, 100, 200, 3), dtype=np.uint8)
    frames[0, 10:30, 40:60] = 200  # frame 0: a 20 x 20 square at (40, 10)
    frames[1, 50:90, 100:140] = 100  # frame 1: a 40 x 40 square at (100, 50)
    crops = crop_resize(frames, np.array([[40, 10, 60, 30], [100, 50, 140, 90]]), 16)
    assert crops.shape == (2, 16, 16, 3) and crops.dtype == np.uint8
    assert (crops[0] == 200).all() and (crops[1] == 100).all()


def test_a_crop_half_outside_the_frame_is_black_there_and_the_inside_resized_alone():
    """Exact pixels: the outside half of the output is 0, the inside half is the inside part resized
    to its share of S, on every side of the frame."""
    frames = np.random.default_rng(1).integers(1, 256, (4, 60, 80, 3), dtype=np.uint8)  # no pixel is 0
    rects = np.array([[-20, 10, 20, 50],  # the left half outside
                      [60, 0, 100, 40],  # the right half outside
                      [30, -20, 70, 20],  # the top half outside
                      [30, 40, 70, 80]])  # the bottom half outside
    crops = crop_resize(frames, rects, 16)  # (4, 16, 16, 3)
    assert crops.shape == (4, 16, 16, 3) and crops.dtype == np.uint8
    assert (crops[0, :, :8] == 0).all() and (crops[1, :, 8:] == 0).all()
    assert (crops[2, :8] == 0).all() and (crops[3, 8:] == 0).all()
    np.testing.assert_array_equal(crops[0, :, 8:], resize_frames(frames[:1, 10:50, 0:20], 16, 8)[0])
    np.testing.assert_array_equal(crops[1, :, :8], resize_frames(frames[1:2, 0:40, 60:80], 16, 8)[0])
    np.testing.assert_array_equal(crops[2, 8:], resize_frames(frames[2:3, 0:20, 30:70], 8, 16)[0])
    np.testing.assert_array_equal(crops[3, :8], resize_frames(frames[3:4, 40:60, 30:70], 8, 16)[0])
    assert (crops[:, 4:12, 4:12].min(axis=-1) > 0).sum() > 0  # the inside is the picture, not black


def test_a_padded_crop_on_a_framework_tensor_equals_numpy():
    import keras

    frames = np.random.default_rng(2).integers(1, 256, (3, 60, 80, 3), dtype=np.uint8)
    rects = np.array([[-30, -10, 30, 50], [50, 30, 110, 90], [-200, 0, -100, 100]])  # corners; wholly outside
    on_host = crop_resize(frames, rects, 24)
    as_tensor = crop_resize(keras.ops.convert_to_tensor(frames), rects, 24)
    assert not isinstance(as_tensor, np.ndarray)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(as_tensor), on_host)
    assert (on_host[0, :4].max(), on_host[0, :, :12].max(), on_host[2].max()) == (0, 0, 0)
    np.testing.assert_array_equal(on_host[0, 4:, 12:], resize_frames(frames[:1, 0:50, 0:30], 20, 12)[0])


def test_crops_of_one_size_resized_together_equal_each_resized_alone():
    frames = np.random.default_rng(3).integers(0, 256, (4, 60, 80, 3), dtype=np.uint8)
    rects = np.array([[0, 0, 30, 30], [10, 5, 40, 35], [50, 30, 80, 60], [-10, 0, 20, 30]])  # the last padded
    crops = crop_resize(frames, rects, 12)
    for i, (x0, y0, x1, y1) in enumerate(rects[:3].tolist()):
        np.testing.assert_array_equal(crops[i], resize_frames(frames[i:i + 1, y0:y1, x0:x1], 12, 12)[0])
    np.testing.assert_array_equal(crops[3], crop_resize(frames[3:], rects[3:], 12)[0])


def test_crop_resize_on_a_framework_tensor_equals_numpy():
    import keras

    frames = np.random.default_rng(0).integers(0, 256, (3, 60, 80, 3), dtype=np.uint8)
    rects = np.array([[0, 0, 80, 60], [10, 5, 50, 45], [30, 20, 70, 60]])
    on_host = crop_resize(frames, rects, 24)
    as_tensor = crop_resize(keras.ops.convert_to_tensor(frames), rects, 24)
    assert not isinstance(as_tensor, np.ndarray)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(as_tensor), on_host)
    np.testing.assert_array_equal(on_host[0], resize_frames(frames[:1], 24, 24)[0])


@pytest.fixture(scope="module")
def mtcnn():
    return MtcnnDetector()


def test_mtcnn_finds_the_portrait_full_size_and_small(mtcnn):
    pasted = frame_with_portrait(300, 100)  # 640 x 360, the portrait at 128 x 150
    full, small = mtcnn.detect([portrait(), pasted])
    assert len(full.scores) >= 1 and full.scores.max() > 0.95
    best = full.boxes[np.argmax(full.scores)]
    assert iou(np.array(PORTRAIT_FACE), best[None])[0] > 0.8
    truth = np.array(pasted_face_box(300, 100, 128, 150))
    best = small.boxes[np.argmax(small.scores)]
    assert iou(truth, best[None])[0] > 0.6
    centre = best[:2] + best[2:] / 2
    assert 300 < centre[0] < 428 and 100 < centre[1] < 250  # over the pasted portrait
    assert (mtcnn.name, mtcnn.version) == ("mtcnn", "1.0.0")


def test_mtcnn_finds_nothing_in_plain_or_tiny_frames(mtcnn):
    plain = np.full((180, 320, 3), 90, dtype=np.uint8)
    tiny = np.full((4, 4, 3), 90, dtype=np.uint8)
    found = mtcnn.detect([plain, tiny])
    assert [len(d.scores) for d in found] == [0, 0]
