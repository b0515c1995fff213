"""The verdict row of a face-crop model for the inputs face crops find hard (issue 13, bad input):
several faces, none, a tiny one, a face cut by the border, a portrait-shaped video, a rotated phone
video and a one-frame video. Each case's row is defined here.

The rows come from the scanner's own worker (``ScanWorker.scan``: ClipReader, the predictor,
``verdicts.clip_row``), all cases in one batch as a scan batches them, so the face-less videos sit in
the detector's batch beside videos of other shapes (which is how mtcnn's padding bug showed, see
``test_mtcnn_keeps_each_image_s_boxes_in_a_batch_of_shapes_and_empty_images``)."""

from __future__ import annotations

import numpy as np
import pytest

from dfscan.kernels.artifact import decide_model
from dfscan.kernels.clips import ClipReader, ClipSpec
from dfscan.kernels.scope import UNTESTED_NO_FACE
from dfscan.scanner.workers import ScanWorker
from tests.face_media import (BACKGROUND, Placement, moving_lefts, pasted_face_box, skip_without_mtcnn_weights,
                               write_face_video, write_portraits_video)
from tests.models import save_tiny_model

FRAMES, SIZE = 4, 32  # the tiny model's F and S; it detects on all 4 frames (detect_frames = min(8, F))
VIDEO_FRAMES = 8  # uniform sampling of 4 of 8 frames: indices 0, 2, 5, 7
LARGE = Placement(tuple(moving_lefts(VIDEO_FRAMES, 60, 200)), 100)  # 128 x 150: its face about 44 x 55
SMALL = Placement((460,), 60, (80, 94))  # its face about 27 x 34, also found by MTCNN
TALL = Placement(tuple(moving_lefts(VIDEO_FRAMES, 10, 60)), 120, (96, 112))  # in 180 x 320: face about 32 x 41


def write_cases(folder) -> dict[str, str]:
    """Every case's video, by name; the face-less ones first, so they precede the others in the batch."""
    paths = {
        "no_face": write_portraits_video(folder / "no_face", [], VIDEO_FRAMES),
        # 24 x 28 pixels: its face about 8 x 10, and 6 x 8 at the detector's 480 px: below MTCNN's 20 px.
        "tiny_face": write_portraits_video(folder / "tiny_face", [Placement((300,), 150, (24, 28))], VIDEO_FRAMES),
        "portrait_video": write_portraits_video(folder / "portrait_video", [TALL], VIDEO_FRAMES, frame_size=(180, 320)),
        "several_faces": write_portraits_video(folder / "several_faces", [LARGE, SMALL], VIDEO_FRAMES),
        # Coded 320 x 180, displayed 180 x 320 (rotation 90): the same picture as portrait_video.
        "rotated": write_face_video(folder / "rotated", VIDEO_FRAMES, "h264", top=TALL.top, frame_size=(180, 320),
                                    portrait_size=TALL.size, lefts=(10, 60), rotation=90),
        "one_frame": write_face_video(folder / "one_frame", 1, "h264"),  # the portrait at (60, 100), 128 x 150
        # The portrait 60 px past the left edge: of its face (44 px wide) 28 px remain in the frame.
        "left_border": write_portraits_video(folder / "left_border", [Placement((-60,), 100)], VIDEO_FRAMES),
        # 40 px past the top: of its face (55 px high) 43 px remain.
        "top_border": write_portraits_video(folder / "top_border", [Placement((300,), -40)], VIDEO_FRAMES),
    }
    return {name: path.name for name, path in paths.items()}


class RecordingPredictor:
    """The worker's predictor, keeping each batch of frames it is given."""

    def __init__(self, inner):
        self.inner, self.fed = inner, []

    def predict(self, frames) -> np.ndarray:
        self.fed.append(np.asarray(frames))
        return self.inner.predict(frames)


@pytest.fixture(scope="module")
def scanned(tmp_path_factory):
    """(rows by case, the frames the model saw by case, the path of each case) from one batch of every case."""
    skip_without_mtcnn_weights()
    from dfscan.benchmarks.bench import with_crop

    root = tmp_path_factory.mktemp("face_rows")
    archive = root / "archive"
    archive.mkdir()
    names = write_cases(archive)
    model = with_crop(save_tiny_model(root / "frame_model", "tiny", FRAMES, SIZE), "face", root / "face_model")
    worker = ScanWorker(decide_model(model), str(archive), batch_size=len(names))
    assert (worker.spec.crop, worker.spec.face_detect_frames) == ("face", FRAMES)
    worker.predictor = recording = RecordingPredictor(worker.predictor)
    rows = worker.scan(list(names.values()))["rows"]
    (frames,) = recording.fed  # (B, F, S, S, 3): one batch
    return ({name: row for name, row in zip(names, rows)}, {name: frames[i] for i, name in enumerate(names)},
            {name: archive / file for name, file in names.items()})


def expected_box(placement: Placement, indices, display) -> np.ndarray:
    """The median of the face's true boxes at the sampled frames, as fractions of the display (x, y, w, h)."""
    width, height = display
    boxes = np.array([placement.face_box(i) for i in indices])
    return np.median(boxes, axis=0) / np.array([width, height, width, height])


def assert_scored(row: dict, conclusions=("real", "fake", "inconclusive")) -> None:
    """Every case is read and scored: a probability from the model, never an error or a stand-in."""
    assert row["status"] == "ok" and row["error_class"] is None, row
    assert isinstance(row["p_fake"], float) and 0.0 <= row["p_fake"] <= 1.0
    assert row["conclusion"] in conclusions


def assert_face_row(row: dict, box: np.ndarray, tolerance: float = 0.02) -> None:
    assert_scored(row)
    assert (row["crop"], row["face_found"], row["face_frames"]) == ("face", True, FRAMES), row
    assert np.allclose(row["face_box"], box, atol=tolerance), (row["face_box"], box)


def assert_fallback_row(row: dict) -> None:
    """No face found: whole frames, and the row says so; a face model never measured on whole frames
    concludes untested (kernels.scope), its p_fake and verdict kept."""
    assert_scored(row, ("untested",))
    assert row["untested_reason"] == UNTESTED_NO_FACE and row["verdict"] in ("real", "fake")
    assert (row["crop"], row["face_found"], row["face_frames"], row["face_box"]) == ("frame", False, 0, None), row


def test_several_faces_keep_the_largest(scanned):
    rows, _, _ = scanned
    row = rows["several_faces"]
    assert_face_row(row, expected_box(LARGE, row["frame_indices"], (640, 360)))
    assert row["face_box"][0] < 0.5  # not the small face at the right (x about 0.76)


def test_no_face_falls_back_to_whole_frames_and_is_still_scored(scanned):
    rows, fed, _ = scanned
    assert_fallback_row(rows["no_face"])
    # The model saw the whole grey frame (a failed or empty clip would be zeros), and scored it.
    assert np.abs(fed["no_face"].astype(int) - BACKGROUND).max() <= 2


def test_a_face_too_small_to_detect_is_no_face(scanned):
    rows, fed, paths = scanned
    assert_fallback_row(rows["tiny_face"])
    (whole,) = ClipReader(ClipSpec(frames=FRAMES, size=SIZE), gpu=False).read([str(paths["tiny_face"])])
    # What the model saw is the whole frame, as a whole-frame model sees it (two resize paths: a grey level apart).
    assert np.abs(fed["tiny_face"].astype(int) - whole.frames.astype(int)).mean() < 2


def test_a_portrait_shaped_video(scanned):
    rows, _, _ = scanned
    row = rows["portrait_video"]
    assert (row["width"], row["height"], row["display_width"], row["display_height"]) == (180, 320, 180, 320)
    assert_face_row(row, expected_box(TALL, row["frame_indices"], (180, 320)))


def test_a_rotated_phone_video_boxes_the_displayed_frame(scanned):
    rows, _, _ = scanned
    row = rows["rotated"]
    assert (row["width"], row["height"], row["rotation"]) == (320, 180, 90)
    assert (row["display_width"], row["display_height"]) == (180, 320)
    assert_face_row(row, expected_box(TALL, row["frame_indices"], (180, 320)))
    assert np.allclose(row["face_box"], rows["portrait_video"]["face_box"], atol=0.01)  # the same picture


def test_a_one_frame_video_detects_its_one_frame_each_time(scanned):
    rows, _, _ = scanned
    row = rows["one_frame"]
    assert (row["frame_count"], row["frame_indices"]) == (1, [0] * FRAMES)
    assert_face_row(row, expected_box(Placement((60,), 100), [0], (640, 360)))


def test_a_face_cut_by_the_border_is_boxed_at_the_border(scanned):
    rows, _, _ = scanned
    left = rows["left_border"]
    assert_scored(left)
    assert (left["crop"], left["face_found"], left["face_frames"]) == ("face", True, FRAMES)
    x, y, w, h = left["face_box"]
    # The box starts at the frame's edge and ends where the face does: the part inside the frame.
    true_x, true_y, true_w, true_h = pasted_face_box(-60, 100, 128, 150)
    assert x == 0.0 and abs(x + w - (true_x + true_w) / 640) < 0.01 and abs(y - true_y / 360) < 0.02
    top = rows["top_border"]
    assert_scored(top)
    assert (top["crop"], top["face_found"], top["face_frames"]) == ("face", True, FRAMES)
    x, y, w, h = top["face_box"]
    true_x, true_y, true_w, true_h = pasted_face_box(300, -40, 128, 150)
    assert y == 0.0 and abs(y + h - (true_y + true_h) / 360) < 0.02 and abs(x - true_x / 640) < 0.02


def test_mtcnn_keeps_each_image_s_boxes_in_a_batch_of_shapes_and_empty_images():
    """mtcnn 1.0.0 pads a batch of mixed shapes and, after an image without a face, took the next
    image's padding from the wrong image: the portrait-shaped frame's face came back as a zero-wide box
    at its right edge. kernels.faces.MtcnnDetector batches one shape at a time."""
    skip_without_mtcnn_weights()
    from dfscan.benchmarks.portrait import paste_portrait
    from dfscan.kernels.faces import MtcnnDetector

    empty = np.full((270, 480, 3), BACKGROUND, dtype=np.uint8)
    tall = paste_portrait(np.full((320, 180, 3), BACKGROUND, dtype=np.uint8), 20, 120, TALL.size)
    found = MtcnnDetector().detect([empty, tall])
    assert len(found[0].scores) == 0 and len(found[1].scores) == 1
    assert np.allclose(found[1].boxes[0], pasted_face_box(20, 120, *TALL.size), atol=4), found[1].boxes
