"""The face stage of ``gpu_check``, alone: MTCNN as Keras models on the device's backend
(``kernels.mtcnn_keras``, what ``MtcnnDetector`` runs) on K frames per video at the detect size,
batched across videos as ``ClipReader`` batches them. The frames are 1080p with the portrait pasted
at a place of its own per video, so every face must be found where it was pasted: a check, not only
a rate.
"""

from __future__ import annotations

import time

import numpy as np

from dfscan.benchmarks.gpu_e2e import CheckFailed
from dfscan.benchmarks.portrait import pasted_face_box, resized_portrait

FACE_TOLERANCE = 6.0  # detect-size pixels: a face found further than this from where it was pasted fails


def face_frames(videos: int, frames: int, detect_size: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per video, ``frames`` grey 1080p frames with matplotlib's portrait (scaled to 300 x 352) pasted
    at a place of its own, moving 10 px a frame, resized as ``ClipReader`` resizes them for the
    detector: the images (K, h, w, 3) uint8 and the face's expected box in each, (K, 4) detect-size px."""
    from dfscan.kernels.resize import resize_frames

    width, height, (face_width, face_height) = 1920, 1080, (300, 352)
    portrait = resized_portrait(face_width, face_height)
    face = np.array(pasted_face_box(0, 0, face_width, face_height))
    scale = detect_size / max(width, height)
    rng = np.random.default_rng(7)
    images, boxes = [], []
    for _ in range(videos):
        left, top = int(rng.integers(0, width - face_width - 10 * frames)), int(rng.integers(0, height - face_height))
        full = np.full((frames, height, width, 3), 90, dtype=np.uint8)
        for k in range(frames):
            full[k, top:top + face_height, left + 10 * k:left + 10 * k + face_width] = portrait
        images.append(np.asarray(resize_frames(full, round(height * scale), round(width * scale))))
        boxes.append(np.array([face + [left + 10 * k, top, 0, 0] for k in range(frames)]) * scale)
    return images, boxes


def face_rate(videos: int, frames: int, detect_size: int, batch: int) -> dict:
    """The face stage: ``batch`` videos' K frames to the detector at once. The first pass compiles
    (one program per input shape on JAX) and is reported apart; the second is timed."""
    from dfscan.kernels.faces import MtcnnDetector

    images, expected = face_frames(videos, frames, detect_size)
    detector = MtcnnDetector(batch=batch * frames)

    def one_pass() -> list:
        found = []
        for start in range(0, videos, batch):
            found.extend(detector.detect([frame for video in images[start:start + batch] for frame in video]))
        return found

    started = time.perf_counter()
    one_pass()
    compile_s = time.perf_counter() - started
    started = time.perf_counter()
    found = one_pass()
    seconds = time.perf_counter() - started
    wanted = np.concatenate(expected)  # (videos * K, 4)
    misses = [f"frame {i}: {d.boxes.round(1).tolist()} where the face is {box.round(1).tolist()}"
              for i, (d, box) in enumerate(zip(found, wanted))
              if len(d.scores) != 1 or np.abs(d.boxes[0] - box).max() > FACE_TOLERANCE]
    if misses:
        raise CheckFailed(f"the face stage missed {len(misses)} of {len(found)} faces: {misses[0]}")
    import keras

    return {"videos_per_s": videos / seconds, "frames_detected_per_s": len(found) / seconds,
            "ms_per_video": 1000 * seconds / videos, "seconds": seconds, "warm_up_s": compile_s,
            "videos": videos, "frames_per_video": frames, "detect_size": list(images[0].shape[1:3]),
            "videos_per_call": batch, "backend": keras.config.backend(),
            "detector": f"{detector.name} {detector.version}"}
