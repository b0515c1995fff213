"""Faces: detect on a few frames of a clip, link the detections into one track, and the square crop
the model sees in every frame.

Every box here is (x, y, w, h) in pixels of the displayed frame (after rotation), as floats. The
detector is injectable (``FaceDetector``: images in, boxes and scores out), so the tracking and the
crop boxes are plain numpy, tested with exact numbers; ``MtcnnDetector`` wraps the ``mtcnn`` package
(MIT; its P/R/O-net weights ship inside the wheel, nothing is downloaded).

Why a track and not a box per frame: the model's LSTM reads frame-to-frame changes, and a crop that
jumps with the detector's jitter looks exactly like a manipulation artefact. So the track keeps one
face (the largest, followed by overlap, or by its size where it moved far), smooths its centre and size over time, interpolates it
between the frames detected on and holds it at the ends.
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Protocol, Sequence

import numpy as np

MIN_CONFIDENCE = 0.9  # below this MTCNN's O-net answers are mostly ears, hands and textures
MIN_LINK_IOU = 0.1  # a detection overlapping the track's last box at least this much continues it
LINK_SIZE_RATIO = 1.5  # ... or, none overlapping, the largest face if its side is within this factor
MIN_FACE_SHARE = 0.5  # a face in fewer than this share of the frames detected on: whole frames instead


@dataclasses.dataclass(frozen=True)
class Detections:
    """One image's faces: boxes (n, 4) float (x, y, w, h) in that image's pixels, scores (n,) float."""

    boxes: np.ndarray
    scores: np.ndarray

    @staticmethod
    def empty() -> "Detections":
        return Detections(np.zeros((0, 4), dtype=np.float64), np.zeros((0,), dtype=np.float64))

    def scaled(self, factor_x: float, factor_y: float) -> "Detections":
        return Detections(self.boxes * np.array([factor_x, factor_y, factor_x, factor_y]), self.scores)


class DetectionCache:
    """Detections per video and source frame, for readers that read the same videos again (training:
    epochs, temporal offsets). A video is its (path, size, mtime) plus the detector's settings, so an
    edited file or another detector never reuses stale boxes. A frame within ``near`` frames of one
    detected on reuses that detection: the offsets training draws (a frame or two) move a face by
    less than the detector's own jitter, so epochs after the first never detect again."""

    def __init__(self, near: int = 2):
        self.near = near
        self._videos: dict[tuple, dict[int, Detections]] = {}

    @staticmethod
    def key(path: str, settings: tuple) -> tuple | None:
        try:
            st = os.stat(path)
        except OSError:
            return None
        return (path, st.st_size, st.st_mtime_ns, settings)

    def lookup(self, key: tuple | None, frames: Sequence[int]) -> list[Detections] | None:
        """The detections at each of ``frames`` (source indices), or None if any is missing."""
        known = self._videos.get(key) if key is not None else None
        if not known:
            return None
        found = []
        for frame in frames:
            nearest = min(known, key=lambda k: abs(k - frame))
            if abs(nearest - frame) > self.near:
                return None
            found.append(known[nearest])
        return found

    def store(self, key: tuple | None, frames: Sequence[int], detections: Sequence[Detections]) -> None:
        if key is not None:
            self._videos.setdefault(key, {}).update(zip((int(f) for f in frames), detections))

    def __len__(self) -> int:
        return len(self._videos)


class FaceDetector(Protocol):
    name: str
    version: str

    def detect(self, images: Sequence[np.ndarray]) -> list[Detections]:
        """Faces in each (H, W, 3) uint8 RGB image; images may differ in size."""


class MtcnnDetector:
    """MTCNN (P-, R- and O-net) with the ``mtcnn`` package's weights, run as Keras 3 models on whatever
    backend and device Keras uses (``kernels.mtcnn_keras``: the package's boxes, without TensorFlow).
    The networks are built once per process, on first use; ``detect`` runs images in batches of
    ``batch``, those of one size together, so an image's faces do not depend on its batch."""

    name = "mtcnn"

    def __init__(self, batch: int = 16):
        from importlib.metadata import version

        self.version = version("mtcnn")  # the weights' package: cards and caches name it as before
        self.batch = batch

    def warm_up(self, images: int = 0, detect_size: int = 320) -> None:
        """Build the networks and read their weights now (a worker's start-up), not in its first batch;
        with ``images``, also trace the passes for that many 16:9 frames at ``detect_size``, the shape
        a full batch of landscape clips gives, and for one frame (a batch's remainder), and R- and O-net
        for any number of patches (a trace costs about 0.5 s on a CPU: three of them in a scan's first
        batch cut a 24-video bench run from 7.9 to 5.0 videos/s)."""
        from dfscan.kernels.mtcnn_keras import networks, trace_patch_passes

        networks()
        if images:
            black = np.zeros((round(detect_size * 9 / 16), detect_size, 3), dtype=np.uint8)
            self.detect([black] * min(images, self.batch))
            self.detect([black])
            trace_patch_passes()

    def detect(self, images: Sequence[np.ndarray]) -> list[Detections]:
        from dfscan.kernels.mtcnn_keras import detect_faces

        found: list[Detections] = []
        for start in range(0, len(images), self.batch):
            chunk = [np.ascontiguousarray(image) for image in images[start:start + self.batch]]
            found.extend(Detections(boxes.reshape(-1, 4), scores) for boxes, scores in detect_faces(chunk))
        return found


@dataclasses.dataclass(frozen=True)
class FaceTrack:
    """One clip's face, per frame of its F: the face box, the square the model sees, and whether the
    box was detected there (with its confidence) or interpolated (confidence NaN)."""

    display_size: tuple[int, int]  # (width, height) of the displayed frame
    boxes: np.ndarray  # (F, 4) float: the smoothed face box per frame
    crop_boxes: np.ndarray  # (F, 4) float: what is cut per frame (may reach past the edge); the whole frame
    # when no face was found
    detector_boxes: np.ndarray  # (F, 4) float: the detector's own box of the track's face, NaN where none
    confidences: np.ndarray  # (F,) float: the detector's score where the track was detected, else NaN
    detected: np.ndarray  # (F,) bool: a detection of the track's face in this frame
    detected_on: int  # how many of the F frames the detector saw
    margin: float
    detector: str = ""  # the detector's name and version, "mtcnn 1.0.0"

    @property
    def face_frames(self) -> int:
        """Of the frames detected on, those where the track's face was found."""
        return int(self.detected.sum())

    @property
    def found(self) -> bool:
        return face_found(self.face_frames, self.detected_on)

    @property
    def median_box(self) -> tuple[float, float, float, float] | None:
        """The median of the detector's boxes as fractions of the displayed frame (x, y, w, h)."""
        if not self.detected.any():
            return None
        width, height = self.display_size
        median = np.median(self.detector_boxes[self.detected], axis=0) / np.array([width, height, width, height])
        return tuple(float(v) for v in median)

    def records(self, indices: Sequence[int]) -> list[dict]:
        """Per frame: source index, face box and crop square in display pixels, confidence or None."""
        rows = []
        for position, index in enumerate(indices):
            rows.append({"index": int(index),
                         "box": [round(float(v), 2) for v in self.boxes[position]],
                         "crop_box": [round(float(v), 2) for v in self.crop_boxes[position]],
                         "confidence": None if not self.detected[position] else
                         round(float(self.confidences[position]), 4),
                         "detected": bool(self.detected[position])})
        return rows


def face_found(face_frames: int, detected_on: int) -> bool:
    return detected_on > 0 and face_frames >= math.ceil(MIN_FACE_SHARE * detected_on)


def detect_positions(frames: int, count: int) -> np.ndarray:
    """Which of the F frames the detector sees: ``count`` spread evenly, first and last included.  # (K,)"""
    count = max(1, min(count, frames))
    return np.unique(np.round(np.linspace(0, frames - 1, count)).astype(np.int64))


def iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Intersection over union of one (4,) box with each of (n, 4) boxes, all (x, y, w, h).  # (n,)"""
    x0 = np.maximum(box[0], boxes[:, 0])
    y0 = np.maximum(box[1], boxes[:, 1])
    x1 = np.minimum(box[0] + box[2], boxes[:, 0] + boxes[:, 2])
    y1 = np.minimum(box[1] + box[3], boxes[:, 1] + boxes[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    union = box[2] * box[3] + boxes[:, 2] * boxes[:, 3] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def _link(previous: np.ndarray, candidates: Detections) -> int | None:
    """The candidate that continues a track whose last box is ``previous``: the one overlapping it
    most, if it overlaps enough; else the frame's largest face, if it is about the track's size (the
    frames detected on may be seconds apart, time enough to cross the frame). Else None."""
    if len(candidates.scores) == 0:
        return None
    overlaps = iou(previous, candidates.boxes)
    best = int(np.argmax(overlaps))
    if overlaps[best] >= MIN_LINK_IOU:
        return best
    sides = np.sqrt(candidates.boxes[:, 2] * candidates.boxes[:, 3])
    largest = int(np.argmax(sides))
    ratio = sides[largest] / math.sqrt(previous[2] * previous[3])
    return largest if 1 / LINK_SIZE_RATIO <= ratio <= LINK_SIZE_RATIO else None


def link_track(detections: dict[int, Detections]) -> dict[int, tuple[np.ndarray, float]]:
    """One face through the frames detected on: it starts from the largest confident face of any
    frame and continues forward and backward from there, each frame taking the face that overlaps
    the track's nearest linked box (or, none overlapping, its largest face if about the same size).
    A frame with no such face is left out (interpolated later).
    ``detections`` maps a frame position to its faces; returns position -> (box (4,), score)."""
    # A box with no area is no face (a detector clamping a box to the image edge can give one), and
    # linking by size would divide by it.
    usable = {p: (d.scores >= MIN_CONFIDENCE) & (d.boxes[:, 2] > 0) & (d.boxes[:, 3] > 0)
              for p, d in detections.items()}
    confident = {p: Detections(d.boxes[usable[p]], d.scores[usable[p]]) for p, d in detections.items()}
    areas = [(float(d.boxes[i, 2] * d.boxes[i, 3]), -p, i) for p, d in confident.items() for i in range(len(d.scores))]
    if not areas:
        return {}
    _, negative_start, first = max(areas)
    start = -negative_start  # the largest face; ties go to the earliest frame
    track = {start: (confident[start].boxes[first], float(confident[start].scores[first]))}
    positions = sorted(confident)
    for direction in (positions[positions.index(start) + 1:], positions[:positions.index(start)][::-1]):
        previous = track[start][0]
        for position in direction:
            chosen = _link(previous, confident[position])
            if chosen is not None:
                previous = confident[position].boxes[chosen]
                track[position] = (previous, float(confident[position].scores[chosen]))
    return dict(sorted(track.items()))


def smooth(values: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Along time (axis 0, at ``times``, increasing): a running median of 3 (drops a single wrong
    box), then each value averaged with what its two neighbours, drawn as a line, say at its time
    (halves alternating jitter). The ends stay as they are, and motion steady in time passes
    unchanged however unevenly the frames are spaced.  (K, C), (K,) -> (K, C)"""
    count = len(values)
    median = values.astype(np.float64).copy()
    for i in range(1, count - 1):
        median[i] = np.median(values[i - 1: i + 2], axis=0)
    smoothed = median.copy()
    for i in range(1, count - 1):
        before, after = float(times[i - 1]), float(times[i + 1])
        share = 0.5 if after == before else (float(times[i]) - before) / (after - before)
        smoothed[i] = (median[i] + (1 - share) * median[i - 1] + share * median[i + 1]) / 2
    return smoothed


def square_crop(box: np.ndarray, margin: float) -> np.ndarray:
    """The square the model sees: ``margin`` x the box's longer side, centred on the box. Near the
    frame's edge it reaches past it (the crop is padded with black there, ``kernels.resize.crop_resize``):
    moving it inside would put the face off-centre by an amount that depends on where it stands, and
    shrinking it would change the face's scale, both things the model would learn.  (4,) -> (4,)"""
    side = margin * max(box[2], box[3])
    centre_x, centre_y = box[0] + box[2] / 2, box[1] + box[3] / 2
    return np.array([centre_x - side / 2, centre_y - side / 2, side, side], dtype=np.float64)


def build_track(detections: dict[int, Detections], times: np.ndarray, display_size: tuple[int, int],
                margin: float) -> FaceTrack:
    """The clip's track over its F frames from the faces found at the positions detected on (boxes in
    display pixels). ``times`` (F,) places the frames in time (their source frame indices): motion is
    smoothed and interpolated in time, not in sample order. Where no face is found often enough,
    every crop box is the whole frame."""
    frames = len(times)
    width, height = display_size
    whole = np.tile(np.array([0.0, 0.0, width, height]), (frames, 1))  # (F, 4)
    linked = link_track(detections)
    detector_boxes = np.full((frames, 4), np.nan)
    confidences = np.full(frames, np.nan)
    detected = np.zeros(frames, dtype=bool)
    if not linked:
        return FaceTrack(display_size, whole, whole.copy(), detector_boxes, confidences, detected, len(detections),
                         margin)
    for position, (box, score) in linked.items():
        detector_boxes[position], confidences[position], detected[position] = box, score, True
    every = np.asarray(times, dtype=np.float64)  # (F,)
    linked_times = every[list(linked)]  # (L,) increasing: positions are in order, and so are their frames
    linked_boxes = np.stack([box for box, _ in linked.values()])  # (L, 4)
    centre_size = np.concatenate([linked_boxes[:, :2] + linked_boxes[:, 2:] / 2, linked_boxes[:, 2:]], axis=1)
    smoothed = smooth(centre_size, linked_times)  # (L, 4) cx, cy, w, h
    # Linear between the frames detected on, held flat before the first and after the last.
    interpolated = np.stack([np.interp(every, linked_times, smoothed[:, c]) for c in range(4)], axis=1)  # (F, 4)
    boxes = np.concatenate([interpolated[:, :2] - interpolated[:, 2:] / 2, interpolated[:, 2:]], axis=1)
    crops = np.stack([square_crop(box, margin) for box in boxes])
    if not face_found(int(detected.sum()), len(detections)):
        crops = whole.copy()
    return FaceTrack(display_size, boxes, crops, detector_boxes, confidences, detected, len(detections), margin)
