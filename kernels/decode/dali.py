"""DALI decoding: ``fn.decoders.video`` with per-sample frame lists, resized in the same graph.

One graph serves both backends: ``mixed`` decodes with NVDEC and resizes on the GPU (``dali-gpu``);
``device_id=None`` runs the CPU decoder, which reads only VP8, VP9 and MJPEG (``dali-cpu``).

DALI 2.4's decoder never seeks in memory input: it decodes every frame from 0 up to the last one
requested (see ``kernels.decode.gops``). So by default each file is first cut, without decoding, to
the GOPs its plan needs (``feed="gops"``), and DALI decodes only those; ``feed="file"`` hands DALI
the whole file as it is. Each distinct frame is decoded once; ``fn.sequence_rearrange`` repeats
frames afterwards, because repeated indices restart DALI's decoder from frame 0. An operator error
invalidates the whole pipeline, so after an error the pipeline is rebuilt and the batch is split
until the failing file is isolated; its batch-mates still get their frames.

With ``full_res_cap`` (``crop="face"``) nothing is squashed: each sample is resized to its own
capped size (``kernels.resize.capped_size``, given to the graph per sample; a sample within the cap
is copied unchanged), so the clips of one batch differ in shape and are handed out one by one, each
still on the GPU for ``dali-gpu``.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

import numpy as np

from dfscan.kernels.decode.base import DecoderBase
from dfscan.kernels.decode.gops import cut_to_gops
from dfscan.kernels.dlpack import copy_on_device, to_framework_tensor
from dfscan.kernels.errors import ErrorClass, VideoError, is_device_error
from dfscan.kernels.probe import Probe
from dfscan.kernels.resize import dali_resize, dali_resize_per_sample
from dfscan.kernels.sampling import split_unique


DALI_FEEDS: tuple[str, ...] = ("gops", "file")
DRY_RUN_HAND_OFF = "DFSCAN_DRY_RUN_DLPACK"


def checked_feed(feed: str) -> str:
    if feed not in DALI_FEEDS:
        raise ValueError(f"unknown DALI feed {feed!r}; expected one of {', '.join(DALI_FEEDS)}")
    return feed


class DaliDecoder(DecoderBase):
    def __init__(self, size: int, gpu: bool, max_batch: int = 8, threads: int = 2, device_id: int = 0,
                 feed: str = "gops", full_res_cap: int | None = None):
        self.feed = checked_feed(feed)
        self.size = size
        self.full_res_cap = full_res_cap  # None: squash to S x S; else the long side's cap, aspect kept
        self.gpu = gpu
        self.name = "dali-gpu" if gpu else "dali-cpu"
        self.max_batch = max_batch
        # dali-gpu hands its output to the model's framework through DLPack. The device dry run
        # (benchmarks/device_dry_run.sh) sends dali-cpu's output down the same path, to try it on a CPU.
        self.hand_off = gpu or os.environ.get(DRY_RUN_HAND_OFF) == "1"
        self.threads = threads
        self.device_id = device_id
        # Counters for benchmarks. DALI decodes every frame of its input up to the last one requested,
        # so that is what frames_decoded counts, as the PyAV decoder counts every frame it produced.
        self.frames_decoded = 0
        self.files_cut = 0  # files fed as their needed GOPs
        self.files_whole = 0  # files fed whole (feed="file", or a stream that cannot be cut)
        self.pipeline_builds = 0
        self._pipeline = None
        self._cutters: ThreadPoolExecutor | None = None

    def _build(self):
        from nvidia.dali import fn, pipeline_def, types

        size, gpu, per_sample = self.size, self.gpu, self.full_res_cap is not None

        @pipeline_def(batch_size=self.max_batch, num_threads=self.threads,
                      device_id=self.device_id if gpu else None, prefetch_queue_depth=1)
        def graph():
            encoded = fn.external_source(name="encoded", dtype=types.UINT8, ndim=1)  # file bytes
            frames = fn.external_source(name="frames", dtype=types.INT32, ndim=1)  # (U,) distinct
            order = fn.external_source(name="order", dtype=types.INT32, ndim=1)  # (F,) into frames
            video = fn.decoders.video(encoded, device="mixed" if gpu else "cpu", frames=frames)
            if per_sample:
                widths = fn.external_source(name="width", dtype=types.FLOAT, ndim=0)
                heights = fn.external_source(name="height", dtype=types.FLOAT, ndim=0)
                video = dali_resize_per_sample(video, widths, heights)  # (U, h, w, 3) uint8, h, w per sample
            else:
                video = dali_resize(video, size)  # (U, S, S, 3) uint8
            return fn.sequence_rearrange(video, new_order=order)  # (F, S, S, 3) or (F, h, w, 3) uint8

        pipeline = graph()
        pipeline.build()
        self.pipeline_builds += 1
        return pipeline

    def _run_pipeline(self, payloads: list[tuple[np.ndarray, np.ndarray, np.ndarray]]):
        """Feed and run the graph: the one step whose failure may be a file's fault."""
        pipe = self._pipeline
        pipe.feed_input("encoded", [p[0] for p in payloads])
        pipe.feed_input("frames", [p[1] for p in payloads])
        pipe.feed_input("order", [p[2] for p in payloads])
        if self.full_res_cap is not None:
            pipe.feed_input("width", [np.array(p[3][0], dtype=np.float32) for p in payloads])
            pipe.feed_input("height", [np.array(p[3][1], dtype=np.float32) for p in payloads])
            (video,) = pipe.run()
            return video  # B samples (F, h, w, 3) uint8 of their own shapes, on the GPU for dali-gpu
        (video,) = pipe.run()
        return video.as_tensor()  # (B, F, S, S, 3) uint8, on the GPU for dali-gpu

    def _run_isolating(self, positions: list[int], payloads, results: dict, errors: dict) -> None:
        """Run ``positions``; on a pipeline error rebuild and bisect until the bad file is alone.

        Only an error of the pipeline run itself is blamed on the files: building the pipeline,
        handing its output over (a missing framework, DLPack) and any device error (CUDA, out of
        memory) are nobody's file and propagate, so the caller sees them at once."""
        if self._pipeline is None:
            self._pipeline = self._build()
        try:
            dense = self._run_pipeline([payloads[i] for i in positions])
        except Exception as exc:  # noqa: BLE001 - DALI raises plain RuntimeError/IndexError
            self._pipeline = None  # "Current pipeline object is no longer valid": rebuild
            if is_device_error(exc):
                raise
            if len(positions) == 1:
                errors[positions[0]] = VideoError(ErrorClass.DECODE_ERROR, _first_line_of_dali_error(exc))
                return
            half = len(positions) // 2
            self._run_isolating(positions[:half], payloads, results, errors)
            self._run_isolating(positions[half:], payloads, results, errors)
            return
        # DALI reuses its output buffers on the next run: take an owned copy now (on the GPU for
        # dali-gpu, handed over through DLPack; in host memory for dali-cpu).
        if self.full_res_cap is not None:  # samples of different shapes: one copy each
            for row, position in enumerate(positions):
                sample = dense[row]
                results[position] = copy_on_device(to_framework_tensor(sample)) if self.hand_off else np.array(sample)
            return
        batch = copy_on_device(to_framework_tensor(dense)) if self.hand_off else np.array(dense)
        for row, position in enumerate(positions):
            results[position] = batch[row]

    def _encoded(self, probe: Probe, unique: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
        """The bytes DALI decodes, the frame indices to ask it for, and whether the file was cut:
        (bytes,) uint8, (U,) int, bool. Runs in the cutting threads."""
        if self.feed == "gops":
            try:
                cut = cut_to_gops(probe, unique)
            except OSError:
                raise  # gone or unreadable: the file's own error row
            except Exception:  # noqa: BLE001 - CutUnsupported, or a file changed since its probe
                pass  # DALI gets the whole file, and any error there is isolated as usual
            else:
                return cut.data, cut.frames, True
        return np.fromfile(probe.path, dtype=np.uint8), unique, False  # (bytes,) the whole file

    def _payloads(self, probes: Sequence[Probe], plans: Sequence[np.ndarray], errors: dict) -> list:
        """Per file, (bytes, frames, order) for the graph, or None with its error in ``errors``."""
        splits = [split_unique(indices) for indices in plans]

        def prepare(position: int):
            try:
                return self._encoded(probes[position], splits[position][0])
            except OSError as exc:  # gone or unreadable since the probe: this file's error, nobody else's
                return _read_error(probes[position].path, exc)

        if self._cutters is None:  # demuxing and muxing release the GIL: cut files side by side
            self._cutters = ThreadPoolExecutor(max(1, self.threads), thread_name_prefix="dali-cut")
        payloads: list[tuple | None] = []
        for position, prepared in enumerate(self._cutters.map(prepare, range(len(probes)))):
            if isinstance(prepared, VideoError):
                errors[position] = prepared
                payloads.append(None)
                continue
            encoded, frames, was_cut = prepared
            self.files_cut += int(was_cut)
            self.files_whole += int(not was_cut)
            self.frames_decoded += int(frames.max()) + 1
            payloads.append((encoded, frames.astype(np.int32), splits[position][1].astype(np.int32),
                             self.output_size(probes[position])))
        return payloads

    def decode_batch(self, probes: Sequence[Probe], plans: Sequence[np.ndarray]):
        """Decode several files at once.

        Returns ``(frames, errors)``: frames is a list with, per file, a (F, S, S, 3) uint8 array, or
        (F, h, w, 3) with ``full_res_cap`` (host numpy for dali-cpu; a framework tensor on the GPU for
        dali-gpu) or None; errors is a list of VideoError or None.
        """
        errors: dict[int, VideoError] = {}
        payloads = self._payloads(probes, plans, errors)
        results: dict[int, tuple] = {}
        readable = [i for i, payload in enumerate(payloads) if payload is not None]
        for start in range(0, len(readable), self.max_batch):
            self._run_isolating(readable[start:start + self.max_batch], payloads, results, errors)
        frames_out, errors_out = [], []
        for position in range(len(payloads)):
            if position in errors:
                frames_out.append(None)
                errors_out.append(errors[position])
                continue
            frames_out.append(results[position])
            errors_out.append(None)
        return frames_out, errors_out


def _read_error(path: str, exc: OSError) -> VideoError:
    if isinstance(exc, FileNotFoundError):
        return VideoError(ErrorClass.NOT_FOUND, f"no such file: {path}")
    if isinstance(exc, PermissionError):
        return VideoError(ErrorClass.PERMISSION, f"permission denied: {path}")
    return VideoError(ErrorClass.DECODE_ERROR, f"cannot read {path}: {exc.strerror or exc}")


def _first_line_of_dali_error(exc: BaseException) -> str:
    """DALI's messages are multi-line tracebacks; keep the line that names the cause."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    for line in lines:
        if line.startswith("[/") and "]" in line:
            return "DALI: " + line.split("]", 1)[1].strip()
    for line in lines:
        if "Critical error" not in line and "no longer valid" not in line:
            return "DALI: " + line
    return "DALI: " + (lines[0] if lines else type(exc).__name__)
