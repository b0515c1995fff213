"""`dfscan synth --from`: a labelled face archive made from a user's own real videos.

For a newsroom that has real footage and no deepfake dataset. Each real video with a face becomes
two: the real clip, and a self-blended fake of it (``training.self_blend``, after SBI): the detected
face blended with a warped, rescaled, colour-shifted copy of itself under a soft mask, frame by frame
along the face track. A model trained on the pair learns the traces blending leaves. It is not a
deepfake of the footage (no other identity, no generator), so a model trained on it must still be
checked on real, labelled fakes.

Both clips of a pair are decoded, scaled and encoded the same way, so nothing but the blend tells
them apart: a real clip copied as it was and a fake encoded anew would teach the model the encoder.

A file that cannot be read, or in which no face is found often enough, is skipped and listed
(``Skipped``), never dropped silently; the rest go on.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
from PIL import Image

from dfscan.kernels.errors import ErrorClass, VideoError
from dfscan.kernels.faces import FaceDetector, build_track, detect_positions
from dfscan.kernels.probe import Probe, probe
from dfscan.kernels.resize import upright
from dfscan.training.self_blend import self_blend_video
from dfscan.training.synth import ENCODER_OPTIONS, SynthVideo, archive_extension, encode_archive_video, write_index

NO_FACE = "NO_FACE"  # a skip's problem when the file reads but shows no face; else an ErrorClass value


@dataclasses.dataclass(frozen=True)
class FromConfig:
    max_frames: int = 240  # of each video, from its start: both clips of a pair hold these frames
    max_side: int = 640  # frames with a longer side are scaled down to it (the model crops faces anyway)
    codec: str = "h264"
    crf: int = 18  # one quality for every clip, real and fake alike
    seed: int = 0
    face_detect_frames: int = 8  # frames of each video the detector sees, spread evenly
    face_detect_size: int = 480  # the long side of the frames the detector sees
    face_margin: float = 1.3  # recorded in the track; the fakes use the face box itself
    blend_strength: float = 1.0  # SBI's own ranges (training.self_blend.draw_params)

    def __post_init__(self):
        if self.codec not in ENCODER_OPTIONS:
            raise ValueError(f"unknown codec {self.codec!r}; expected one of {', '.join(ENCODER_OPTIONS)}")
        if self.max_frames < 2:
            raise ValueError(f"max frames must be at least 2, got {self.max_frames}")
        if not 64 <= self.max_side <= 4096:
            raise ValueError(f"max side must be between 64 and 4096 pixels, got {self.max_side}")
        if not 0 <= self.crf <= 51:
            raise ValueError(f"crf must be between 0 and 51, got {self.crf}")
        if self.face_detect_frames < 1:
            raise ValueError(f"face detect frames must be at least 1, got {self.face_detect_frames}")
        if not 0.0 < self.blend_strength <= 4.0:
            raise ValueError(f"blend strength must be above 0 and at most 4, got {self.blend_strength}")


@dataclasses.dataclass(frozen=True)
class Skipped:
    path: str  # relative to the source folder
    problem: str  # NO_FACE, or the file's ErrorClass value
    message: str  # one line


@dataclasses.dataclass(frozen=True)
class FromResult:
    videos: list[SynthVideo]  # the pairs written, real then fake for each source
    skipped: list[Skipped]
    sources: int  # files looked at

    def counts(self) -> dict[str, int]:
        """How many files were skipped for each problem."""
        counts: dict[str, int] = {}
        for skip in self.skipped:
            counts[skip.problem] = counts.get(skip.problem, 0) + 1
        return counts


def _scaled_size(info: Probe, max_side: int) -> tuple[int, int]:
    """The coded frame's (width, height) after scaling so the long side is at most ``max_side``,
    both even (yuv420p encoders need it)."""
    scale = min(1.0, max_side / max(info.width, info.height))
    return (max(2, int(round(info.width * scale / 2)) * 2), max(2, int(round(info.height * scale / 2)) * 2))


def decode_frames(info: Probe, max_frames: int, max_side: int) -> np.ndarray:
    """The first ``max_frames`` frames as displayed (rotation applied), scaled down to ``max_side``.
    A packet that fails to decode is skipped, as a player skips it.  (T, H, W, 3) uint8"""
    import av

    width, height = _scaled_size(info, max_side)
    frames: list[np.ndarray] = []
    try:
        with av.open(info.path) as container:
            stream = container.streams.video[0]
            for packet in container.demux(stream):
                try:
                    decoded = packet.decode()
                except av.error.InvalidDataError:
                    continue
                for frame in decoded:
                    frames.append(frame.reformat(width=width, height=height, format="rgb24").to_ndarray())
                if len(frames) >= max_frames:
                    break
    except av.error.FFmpegError as exc:
        if not frames:
            raise VideoError(ErrorClass.DECODE_ERROR, f"{type(exc).__name__}: {exc}") from None
    if len(frames) < 2:
        raise VideoError(ErrorClass.DECODE_ERROR, f"only {len(frames)} frame(s) could be decoded")
    return upright(np.stack(frames[:max_frames]), info.rotation)


def _detection_image(frame: np.ndarray, size: int) -> tuple[np.ndarray, float]:
    """The frame as the detector sees it, long side at most ``size``, and the factor back to the frame."""
    height, width = frame.shape[:2]
    scale = min(1.0, size / max(width, height))
    if scale == 1.0:
        return frame, 1.0
    small = Image.fromarray(frame).resize((max(1, round(width * scale)), max(1, round(height * scale))),
                                          Image.BILINEAR)
    return np.asarray(small), width / small.width


def face_boxes(frames: np.ndarray, detector: FaceDetector, config: FromConfig) -> tuple[np.ndarray | None, str]:
    """The face box of every frame, from a few frames detected on and tracked (``kernels.faces``),
    or None and why not.  (T, 4) float"""
    count = len(frames)
    positions = detect_positions(count, config.face_detect_frames)
    shown = [_detection_image(frames[p], config.face_detect_size) for p in positions]
    found = detector.detect([image for image, _ in shown])
    detections = {int(p): d.scaled(factor, factor) for p, d, (_, factor) in zip(positions, found, shown)}
    height, width = frames.shape[1:3]
    track = build_track(detections, np.arange(count), (width, height), config.face_margin)
    if not track.found:
        return None, f"a face in {track.face_frames} of the {track.detected_on} frames detected on"
    return track.boxes, ""


def _output_name(relative: str, extension: str) -> str:
    """One flat, collision-free name per source: its path with folders joined by '__'."""
    return relative.replace("/", "__") + extension


def _make_pair(root: Path, relative: str, number: int, out: Path, config: FromConfig,
               detector: FaceDetector) -> list[SynthVideo] | Skipped:
    """The real clip and its self-blended fake of one source video, written; or why not."""
    try:
        info = probe(root / relative)
        frames = decode_frames(info, config.max_frames, config.max_side)  # (T, H, W, 3)
    except VideoError as exc:
        return Skipped(relative, exc.error_class.value, exc.message)
    except Exception as exc:  # noqa: BLE001 - a library failure on one file is data, the rest go on
        return Skipped(relative, ErrorClass.DECODE_ERROR.value, f"{type(exc).__name__}: {exc}")
    boxes, why = face_boxes(frames, detector, config)
    if boxes is None:
        return Skipped(relative, NO_FACE, f"no face found: {why}")
    fake = self_blend_video(frames, boxes, np.random.default_rng([config.seed, number]), config.blend_strength)
    name = _output_name(relative, archive_extension(config.codec))
    fps = max(1, int(round(info.fps or 25)))
    written = []
    for label, pixels in (("real", frames), ("fake", fake)):
        (out / label).mkdir(parents=True, exist_ok=True)
        rel = f"{label}/{name}"
        # Written under a temporary name: a crash never leaves a half-written video behind.
        encode_archive_video(out / rel, pixels, config.codec, fps, crf=config.crf)
        written.append(SynthVideo(path=rel, label=label))
    return written


def synth_from(source: str | os.PathLike, paths: Iterable[str], out: str | os.PathLike,
               config: FromConfig = FromConfig(), detector: FaceDetector | None = None,
               say: Callable[[str], None] | None = None) -> FromResult:
    """Write ``out/real/*``, ``out/fake/*``, ``labels.csv`` and the synthetic marker from the videos
    ``paths`` (relative to ``source``). ``say`` hears one line per file skipped."""
    if detector is None:
        from dfscan.kernels.faces import MtcnnDetector

        detector = MtcnnDetector()
    out = Path(out)
    videos: list[SynthVideo] = []
    skipped: list[Skipped] = []
    sources = 0
    for number, relative in enumerate(paths):
        sources += 1
        outcome = _make_pair(Path(source), relative, number, out, config, detector)
        if isinstance(outcome, Skipped):
            skipped.append(outcome)
            if say is not None:
                say(f"{outcome.path}: skipped: {outcome.problem}: {outcome.message}")
        else:
            videos.extend(outcome)
    out.mkdir(parents=True, exist_ok=True)
    marker = {"generator": "dfscan synth --from", "kind": "self-blend", "sources": sources,
              "pairs": len(videos) // 2, **dataclasses.asdict(config),
              "skipped": [dataclasses.asdict(skip) for skip in skipped]}
    write_index(out, videos, marker)
    return FromResult(videos=videos, skipped=skipped, sources=sources)
