"""From file paths to clips: probe -> plan -> decode (-> faces -> crop), the one input pipeline of
scanning and training.

A ``ClipReader`` is built once per worker. It owns its decoders (and so its DALI pipelines), never
raises for a bad file, and returns one ``Clip`` per path, each with its exact frame indices.

With ``crop="face"`` the decoders do not squash: each clip's frames arrive upright at display
resolution, aspect kept, (F, H, W, 3) uint8 with H and W differing between clips, the long side
capped at ``face_work_size``. A few frames per clip, downsized, go to the face detector (batched
across the clips of one read); the track's crop squares are in display pixels, and each frame's square
is cut from the decoded frame (scaled by decoded/display) and resized once to S x S, on the GPU for
GPU clips. Why not a fixed working square, as before: squashing 1920x1080 into 1024x1024 resampled
the face anisotropically (1.9x across, 1.05x down) and then again to S, so the model saw a face
stretched and blurred in one direction only. A square reaching past the frame's edge is padded with
black (``kernels.resize.crop_resize``), not moved: the face stays centred and unsquashed. A clip with
a face in too few frames falls back to whole frames, and says so in ``Clip.crop``.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections import defaultdict
from typing import Sequence

import numpy as np

from dfscan.kernels.decode import (DECODERS, GPU_OUTPUT_DECODERS, NVDEC_BACKEND_CODECS, choose_decoder, gpu_count,
                            nvdec_refusal)
from dfscan.kernels.decode.pyav import PyAVDecoder
from dfscan.kernels.errors import ErrorClass, VideoError
from dfscan.kernels.probe import Probe, ProbeLimits, probe
from dfscan.kernels.faces import DetectionCache, FaceDetector, FaceTrack, build_track, detect_positions
from dfscan.kernels.resize import crop_resize, resize_frames, upright
from dfscan.kernels.sampling import SAMPLING_MODES, plan_indices, shift_indices


# What a clip's frames are cut from before they are resized to S x S: the whole frame, or a square
# around the tracked face (kernels.faces).
FRAME_CROP, FACE_CROP = "frame", "face"
CROP_MODES: tuple[str, ...] = (FRAME_CROP, FACE_CROP)


@dataclasses.dataclass(frozen=True)
class ClipSpec:
    frames: int = 20
    size: int = 224
    sampling: str = "uniform"
    decoder: str = "auto"
    limits: ProbeLimits = ProbeLimits()
    crop: str = "frame"  # "frame": the whole frame squashed to S x S; "face": a square around the face
    face_margin: float = 1.3  # the crop's side, as a multiple of the face box's longer side
    # The detector's share of the work (MTCNN is most of face mode's cost on a CPU): 4 of the F frames at a
    # long side of 320 px ran 720p keyframe scans at 5.7x the seed loop on 2 cores, 8 at 480 px at 1.5x
    # (2026-11-28). MTCNN's smallest face is 20 px, so at 320 px the smallest face found is 1/16 of the
    # long side (120 px at 1080p); a model meant for wide shots sets a larger size in its card.
    face_detect_frames: int = 4  # of the F frames, how many the detector sees (spread evenly)
    face_detect_size: int = 320  # the long side of the frames the detector sees (MTCNN: 320-640 works)
    # With crop=face, frames are decoded at their own shape with the long side capped at this: 1080p,
    # landscape or portrait, stays native and 4K is halved. The cap bounds host memory: a read of 8
    # clips of F=20 1080p frames holds 8 x 20 x 1920 x 1080 x 3 bytes = 1.0 GB until they are cropped
    # (the 1024 x 1024 working square it replaces held 0.5 GB); on a GPU decoder that memory is the GPU's.
    # Between reads the PyAV decoder keeps the last read's clips to decode the next ones into (recycle).
    face_work_size: int = 1920

    def __post_init__(self):
        if self.frames < 1:
            raise ValueError(f"frames must be at least 1, got {self.frames}")
        if not 8 <= self.size <= 4096:
            raise ValueError(f"size must be between 8 and 4096 pixels, got {self.size}")
        if self.sampling not in SAMPLING_MODES:
            raise ValueError(f"unknown sampling {self.sampling!r}; expected one of {', '.join(SAMPLING_MODES)}")
        if self.decoder not in DECODERS:
            raise ValueError(f"unknown decoder {self.decoder!r}; expected one of {', '.join(DECODERS)}")
        if self.crop not in CROP_MODES:
            raise ValueError(f"unknown crop {self.crop!r}; expected one of {', '.join(CROP_MODES)}")
        if not 1.0 <= self.face_margin <= 3.0:
            raise ValueError(f"face margin must be between 1.0 and 3.0, got {self.face_margin}")
        if self.face_detect_frames < 1:
            raise ValueError(f"face detect frames must be at least 1, got {self.face_detect_frames}")
        if not 64 <= self.face_detect_size <= 2048:
            raise ValueError(f"face detect size must be between 64 and 2048 pixels, got {self.face_detect_size}")
        if self.crop == "face" and not self.size <= self.face_work_size <= 4096:
            raise ValueError(f"with crop=face, size ({self.size}) must be at most the face work size, which must be "
                             f"at most 4096 pixels ({self.face_work_size})")

    @property
    def full_res_cap(self) -> int | None:
        """What the decoders are told: None, squash every frame to S x S (crop="frame"); else keep each
        frame's shape, the long side at most this (crop="face": the crop is cut from these frames)."""
        return self.face_work_size if self.crop == "face" else None


@dataclasses.dataclass
class Clip:
    path: str
    probe: Probe | None = None
    indices: np.ndarray | None = None  # (F,) int64 source frame numbers
    frames: np.ndarray | None = None  # (F, S, S, 3) uint8 RGB (numpy, or a GPU tensor)
    decoder: str | None = None  # the backend that produced ``frames``
    error: VideoError | None = None
    fallback_from: str | None = None  # the backend that failed this file first, if any
    fallback_reason: str | None = None  # ... and its error, "DECODE_ERROR: DALI: ...", kept for the row
    frames_replaced: int = 0  # of the F frames, those a damaged file never gave, filled with a neighbour
    crop: str | None = None  # what the model sees: "frame" or "face" (a face clip without a face: "frame")
    faces: FaceTrack | None = None  # with ClipSpec(crop="face"): the face per frame, found or not

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclasses.dataclass
class ClipBatch:
    frames: object  # (batch_size, F, S, S, 3) uint8: numpy, or a GPU tensor on dali-gpu and nvdec
    clips: list[Clip]  # one per path, frames=None; rows past len(clips) are padding


@dataclasses.dataclass
class StageTimes:
    """Cheap wall-clock counters, summed by the scanner across workers."""

    probe: float = 0.0
    decode: float = 0.0
    faces: float = 0.0  # detection, tracking and cropping (crop="face")
    frames_decoded: int = 0


class ClipReader:
    def __init__(self, spec: ClipSpec = ClipSpec(), gpu: bool | None = None, dali_batch: int = 8,
                 threads: int = 0, probe_cache: int = 0, dali_feed: str = "gops",
                 face_detector: FaceDetector | None = None, detection_cache: DetectionCache | None = None):
        self.spec = spec
        from dfscan.kernels.decode.dali import checked_feed  # DALI itself is imported only when a decoder is built

        self.dali_feed = checked_feed(dali_feed)  # "gops": DALI gets only the GOPs a plan needs; "file": whole
        self.gpu = gpu_count() > 0 if gpu is None else gpu
        if spec.decoder in GPU_OUTPUT_DECODERS and not self.gpu:
            raise ValueError(f"decoder {spec.decoder} needs an NVIDIA GPU, and none is visible")
        self.dali_batch = dali_batch
        self.threads = threads
        self.times = StageTimes()
        self._pyav = PyAVDecoder(spec.size, threads=threads, full_res_cap=spec.full_res_cap)
        self._face_detector = face_detector  # MTCNN, built on first use, unless one is given
        self.detection_cache = detection_cache  # training: detect each video once, not every epoch
        self._batch_decoders: dict[str, object] = {}  # dali-cpu, dali-gpu, nvdec: decoders that take a batch
        # Training reads each video many times (epochs, temporal offsets): remember up to this many
        # probes, keyed by path and stat so a changed file is probed again. The scanner reads once: 0.
        self.probe_cache = probe_cache
        self._probes: dict[tuple[str, int, int], Probe] = {}

    def _batch_decoder(self, name: str):
        """The reader's own DALI pipeline or NVDEC decoder pool, built on first use."""
        if name not in self._batch_decoders:
            if name == "nvdec":
                from dfscan.kernels.decode.nvdec import NvdecDecoder

                self._batch_decoders[name] = NvdecDecoder(self.spec.size, full_res_cap=self.spec.full_res_cap)
            else:
                from dfscan.kernels.decode.dali import DaliDecoder

                self._batch_decoders[name] = DaliDecoder(
                    self.spec.size, gpu=name == "dali-gpu", max_batch=self.dali_batch,
                    threads=max(1, self.threads or 2), feed=self.dali_feed, full_res_cap=self.spec.full_res_cap)
        return self._batch_decoders[name]

    def _probe(self, path: str) -> Probe:
        if not self.probe_cache:
            return probe(path, self.spec.limits)
        try:
            st = os.stat(path)
        except OSError:
            return probe(path, self.spec.limits)  # raises the right error class
        key = (path, st.st_mtime_ns, st.st_size)
        if key not in self._probes:
            if len(self._probes) >= self.probe_cache:
                self._probes.pop(next(iter(self._probes)))  # oldest first
            self._probes[key] = probe(path, self.spec.limits)
        return self._probes[key]

    def plan(self, probe_result: Probe, offset: int = 0) -> np.ndarray:
        indices = plan_indices(self.spec.sampling, probe_result.frame_count, probe_result.keyframes,
                               self.spec.frames)
        if offset:
            indices = shift_indices(indices, offset, probe_result.frame_count)
        return indices

    def read(self, paths: Sequence[str], offsets: Sequence[int] | None = None) -> list[Clip]:
        """One clip per path, in order. Bad files come back as clips with ``error`` set."""
        started = time.perf_counter()
        clips = [Clip(path=str(path)) for path in paths]
        by_decoder: dict[str, list[int]] = defaultdict(list)
        for i, clip in enumerate(clips):
            try:
                clip.probe = self._probe(clip.path)
                clip.indices = self.plan(clip.probe, offsets[i] if offsets is not None else 0)
                clip.decoder = choose_decoder(clip.probe, self.spec.decoder, self.gpu)
                self._note_refusal(clip)
            except VideoError as exc:
                clip.error = exc
                continue
            by_decoder[clip.decoder].append(i)
        probed = time.perf_counter()
        self.times.probe += probed - started

        for name, positions in by_decoder.items():
            if name == "pyav":
                self._decode_with_pyav(clips, positions)
                continue
            decoder = self._batch_decoder(name)
            frames, errors = decoder.decode_batch([clips[i].probe for i in positions],
                                                  [clips[i].indices for i in positions])
            for i, clip_frames, error in zip(positions, frames, errors):
                clips[i].frames, clips[i].error = clip_frames, error
            # A file DALI could not decode may still be one FFmpeg reads (a stream NVDEC refuses, a
            # damaged packet): PyAV gets a second try, and the clip records which decoder answered.
            retry = [i for i in positions if clips[i].error is not None
                     and clips[i].error.error_class in (ErrorClass.DECODE_ERROR, ErrorClass.UNSUPPORTED_CODEC)]
            for i in retry:
                clips[i].fallback_from, clips[i].fallback_reason = name, str(clips[i].error)
                clips[i].decoder, clips[i].error = "pyav", None
            self._decode_with_pyav(clips, retry)
        self._pyav.recycle(())  # what this read's decode did not reuse is not kept beside its clips
        for clip in clips:
            if clip.ok and clip.probe.rotation:
                clip.frames = upright(clip.frames, clip.probe.rotation)
        decoded = time.perf_counter()
        self.times.decode += decoded - probed
        self.times.frames_decoded = self._frames_decoded()
        for clip in clips:
            clip.crop = self.spec.crop if clip.ok else None
        if self.spec.crop == "face":
            self._crop_faces([clip for clip in clips if clip.ok])
            self.times.faces += time.perf_counter() - decoded
        return clips

    def _note_refusal(self, clip: Clip) -> None:
        """A file sent to PyAV on a GPU, where a GPU decoder was asked for (or ``auto``), because NVDEC
        cannot read it (4:2:2, 4:4:4, 10-bit H.264, AV1 on Hopper): the clip says which and why."""
        if clip.decoder != "pyav" or not self.gpu or self.spec.decoder not in ("auto", "nvdec", "dali-gpu"):
            return
        reason = nvdec_refusal(clip.probe)
        if reason is not None:
            asked = self.spec.decoder
            if asked == "auto":
                from dfscan.kernels.decode.nvdec import nvdec_available

                asked = "nvdec" if clip.probe.codec in NVDEC_BACKEND_CODECS and nvdec_available() else "dali-gpu"
            clip.fallback_from = asked
            clip.fallback_reason = str(VideoError(ErrorClass.UNSUPPORTED_CODEC, reason))

    @property
    def face_detector(self) -> FaceDetector:
        if self._face_detector is None:
            from dfscan.kernels.faces import MtcnnDetector

            self._face_detector = MtcnnDetector()
        return self._face_detector

    def _crop_faces(self, clips: list[Clip]) -> None:
        """Detect on a few frames of every clip in one batch (unless cached), track, and cut each frame's square."""
        spec = self.spec
        positions = detect_positions(spec.frames, spec.face_detect_frames)  # (K,)
        detector = self.face_detector
        settings = (detector.name, detector.version, spec.face_detect_size)
        cache = self.detection_cache
        keys = [cache.key(clip.path, settings) if cache is not None else None for clip in clips]
        known = [cache.lookup(key, clip.indices[positions]) if cache is not None else None
                 for key, clip in zip(keys, clips)]
        images, shapes, todo = [], {}, [i for i, found in enumerate(known) if found is None]
        for number in todo:
            clip = clips[number]
            width, height = clip.probe.display_width, clip.probe.display_height
            scale = min(1.0, spec.face_detect_size / max(width, height))  # never larger than displayed
            shapes[number] = (max(1, round(height * scale)), max(1, round(width * scale)))
            # Decoded frames have the display's shape (capped): downsize them to detect.
            picked = clip.frames[positions] if isinstance(clip.frames, np.ndarray) else \
                _take(clip.frames, positions)
            images.extend(np.asarray(resize_frames(picked, *shapes[number])))  # K x (h, w, 3), to the host
        found = detector.detect(images) if images else []
        for slot, number in enumerate(todo):
            clip = clips[number]
            width, height = clip.probe.display_width, clip.probe.display_height
            detect_height, detect_width = shapes[number]
            per_frame = found[slot * len(positions):(slot + 1) * len(positions)]
            known[number] = [d.scaled(width / detect_width, height / detect_height) for d in per_frame]  # display px
            if cache is not None:
                cache.store(keys[number], clip.indices[positions], known[number])
        decoded = []  # the full-resolution clips, given back to the PyAV decoder once cropped
        for clip, detections in zip(clips, known):
            width, height = clip.probe.display_width, clip.probe.display_height
            by_position = {int(p): d for p, d in zip(positions, detections)}
            clip.faces = dataclasses.replace(build_track(by_position, clip.indices, (width, height), spec.face_margin),
                                             detector=f"{detector.name} {detector.version}")
            clip.crop = "face" if clip.faces.found else "frame"
            decoded_size = (int(clip.frames.shape[2]), int(clip.frames.shape[1]))  # (w, h): display, capped
            rects = decoded_rects(clip.faces.crop_boxes, (width, height), decoded_size)
            if clip.decoder == "pyav":
                decoded.append(clip.frames)
            clip.frames = crop_resize(clip.frames, rects, spec.size)  # (F, H, W, 3) -> (F, S, S, 3)
        self._pyav.recycle(decoded)

    def _decode_with_pyav(self, clips: list[Clip], positions: list[int]) -> None:
        for i in positions:
            try:
                clips[i].frames, clips[i].frames_replaced = self._pyav.decode_clip_concealed(clips[i].probe,
                                                                                             clips[i].indices)
            except VideoError as exc:
                clips[i].error = exc
            except Exception as exc:  # noqa: BLE001 - a library failure on one file is data
                clips[i].error = VideoError(ErrorClass.DECODE_ERROR, f"{type(exc).__name__}: {exc}")

    def dali_files_fed(self) -> dict[str, int]:
        """How many files DALI got as cut GOPs and how many whole (a cut may be refused)."""
        return {"cut": sum(d.files_cut for d in self._batch_decoders.values()),
                "whole": sum(d.files_whole for d in self._batch_decoders.values())}

    def _frames_decoded(self) -> int:
        return self._pyav.frames_decoded + sum(d.frames_decoded for d in self._batch_decoders.values())

    def read_batch(self, paths: Sequence[str], batch_size: int) -> ClipBatch:
        """A fixed-shape batch: padding rows and failed clips are zeros, so shapes never change."""
        if len(paths) > batch_size:
            raise ValueError(f"{len(paths)} paths do not fit a batch of {batch_size}")
        clips = self.read(paths)
        shape = (batch_size, self.spec.frames, self.spec.size, self.spec.size, 3)
        on_gpu = [c for c in clips if c.ok and c.decoder in GPU_OUTPUT_DECODERS]
        if on_gpu and len(on_gpu) == len(clips) and len(clips) == batch_size:
            import keras

            frames = keras.ops.stack([c.frames for c in clips])  # stays on the GPU
        else:
            frames = np.zeros(shape, dtype=np.uint8)  # (B, F, S, S, 3) uint8
            for row, clip in enumerate(clips):
                if clip.ok:
                    frames[row] = np.asarray(clip.frames)
        for clip in clips:
            clip.frames = None
        return ClipBatch(frames=frames, clips=clips)


def decoded_rects(boxes: np.ndarray, display_size: tuple[int, int], decoded_size: tuple[int, int]) -> np.ndarray:
    """Boxes (x, y, w, h) in display pixels as whole-pixel rectangles (x0, y0, x1, y1) of the decoded
    frame (the display, its long side capped: ``decoded_size`` = (w, h)). Not clamped: a square past
    the frame's edge stays square, and ``crop_resize`` pads it. The corner and the side are rounded
    separately, so a square box stays square (to a pixel where the cap scaled the two axes by slightly
    different roundings).  (F, 4) float -> (F, 4) int"""
    (width, height), (decoded_width, decoded_height) = display_size, decoded_size
    scale = np.array([decoded_width / width, decoded_height / height])
    corners = np.round(boxes[:, :2] * scale)  # (F, 2)
    sides = np.maximum(np.round(boxes[:, 2:] * scale), 1)  # (F, 2): at least one pixel
    return np.concatenate([corners, corners + sides], axis=1).astype(np.int64)


def _take(frames, positions: np.ndarray):
    """Frames at ``positions`` of a framework tensor (on its device).  (F, ...) -> (K, ...)"""
    from keras import ops

    return ops.take(frames, ops.convert_to_tensor(positions.astype(np.int32)), axis=0)
