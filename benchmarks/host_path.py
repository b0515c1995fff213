"""The GPU decoders' host side alone: CPU milliseconds per video, with the GPU work replaced by stand-ins
that cost nothing.

On an H200 the ``nvdec`` backend reached 84.6 videos/s end to end in 4 processes (keyframe, 1080p),
while its 7 NVDEC engines could give about 197: something on the host bounded it. This measures what the
host itself does for a video, on any machine (docs/performance.md: under 10 ms of CPU on a 2-core VM, so
the bound lies in what the stand-ins replace; ``--real`` and ``--spin`` look there on a GPU):

- ``nvdec``: ``ClipReader.read`` as a scan runs it (probe, plan, choice of decoder, the cut to Annex B,
  every ``Decode`` call with its packet, the frame bookkeeping and the hand-off call), against a
  stand-in for PyNvVideoCodec whose decoder returns, for each packet, preallocated NV12 frames of the
  stream's shape, as many as the packet holds pictures; the hand-off and the conversion on the GPU
  (``NvdecDecoder._hand_off``, ``_assemble``) return what they were given and a preallocated clip.
- ``dali-gpu``: ``ClipReader.read`` up to DALI (probe, plan, the cut to GOPs in a small MP4, the
  payloads), DALI's run replaced by a preallocated clip per file.

Reported per configuration: process CPU ms per video (``time.process_time``, every thread of the
process, over the measured reads only), each reader thread's own CPU ms per video
(``time.thread_time``), the stand-in decoder's own share of it, and videos/s of wall time. With
``--processes`` the processes' CPU times are summed. CPU time is what to compare on a shared machine:
wall time depends on what else runs there.

    python -m dfscan.benchmarks.host_path [--archive DIR | --videos 6] [--resolution 1080p] [--seconds 10]
        [--decoders nvdec,dali-gpu] [--threads 1,2,4] [--processes 2] [--rounds 3] [--repeats 1]
        [--spin 1,4] [--real] [--json FILE]

``--spin``: the same reads beside a thread that only counts; its rate over its rate alone is the
share of time Python's lock was free (on a GPU with ``--real``: does ``Decode`` hold the lock while
NVDEC works?). ``--real`` (a GPU with PyNvVideoCodec, nvdec only) runs the backend for real, GPU part
included, and times the ``Decode`` calls (wall, and the CPU the calling thread spent in them).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from dfscan.benchmarks.nvdec_stand_in import FreePyNvVideoCodec, Spinner, TimedPyNvVideoCodec
from dfscan.kernels.clips import ClipReader, ClipSpec
from dfscan.kernels.decode import nvdec
from dfscan.kernels.decode.dali import DaliDecoder

HOST_DECODERS = ("nvdec", "dali-gpu")


class HostOnlyNvdec(nvdec.NvdecDecoder):
    """``NvdecDecoder`` with the GPU's part (the copy out of the decoder, NV12 -> RGB, the resize) free."""

    @staticmethod
    def _hand_off(frame):
        return frame

    def _assemble(self, probe, copies, indices, inverse):
        width, height = self.output_size(probe)
        return _clip(len(indices), height, width)


class HostOnlyDali(DaliDecoder):
    """``DaliDecoder`` up to DALI: the payloads are prepared, DALI's run is free."""

    def _run_isolating(self, positions, payloads, results, errors) -> None:
        for position in positions:
            width, height = payloads[position][3]
            results[position] = _clip(len(payloads[position][2]), height, width)


_CLIPS: dict[tuple, np.ndarray] = {}


def _clip(frames: int, height: int, width: int) -> np.ndarray:
    key = (frames, height, width)
    if key not in _CLIPS:
        _CLIPS[key] = np.zeros((frames, height, width, 3), dtype=np.uint8)
    return _CLIPS[key]


def host_reader(decoder: str, spec: ClipSpec, real: bool = False) -> ClipReader:
    """A reader whose ``decoder`` (nvdec or dali-gpu) runs its host side only; ``real``: the whole
    nvdec backend (the GPU's part too), its decoder calls timed."""
    reader = ClipReader(spec, gpu=True, dali_batch=8, threads=1)
    if real:
        return reader
    if decoder == "nvdec":
        reader._batch_decoders["nvdec"] = HostOnlyNvdec(spec.size, full_res_cap=spec.full_res_cap)
    else:
        reader._batch_decoders[decoder] = HostOnlyDali(spec.size, gpu=True, max_batch=8, threads=1,
                                                       full_res_cap=spec.full_res_cap)
    return reader


def _stand_in_seconds(reader: ClipReader) -> float:
    decoder = reader._batch_decoders.get("nvdec")
    return sum(d.cpu_s for d in decoder._decoders.values()) if decoder is not None else 0.0


def measure(paths: list[str], decoder: str, threads: int, rounds: int, sampling: str = "keyframe",
            batch: int = 4, real: bool = False, spin: bool = False) -> dict:
    """``threads`` readers, each reading its share of ``rounds`` x the files in batches; CPU time of
    the process and of each reader thread over the reads (a first read per reader warms up).
    ``real``: PyNvVideoCodec and the GPU's part of nvdec for real (``stand_in_*`` is then the time
    inside its Decode calls). ``spin``: a counting thread beside the readers (``Spinner``); its CPU
    time is in the process's, so CPU numbers of such a row are not the host path's."""
    loader = nvdec.load_pynvvideocodec
    if real:
        module = TimedPyNvVideoCodec(loader())
        nvdec.load_pynvvideocodec = lambda: module
    else:
        nvdec.load_pynvvideocodec = lambda: _STAND_IN  # as the tests' fake does
    try:
        return _measure(paths, decoder, threads, rounds, sampling, batch, real, spin)
    finally:
        nvdec.load_pynvvideocodec = loader


def _measure(paths: list[str], decoder: str, threads: int, rounds: int, sampling: str, batch: int, real: bool,
             spin: bool) -> dict:
    spec = ClipSpec(frames=20, size=224, sampling=sampling, decoder=decoder)
    readers = [host_reader(decoder, spec, real) for _ in range(threads)]
    for reader in readers:
        _check(reader.read(paths[:1]), decoder)
    work = [p for _ in range(rounds) for p in paths]
    shares = [work[i::threads] for i in range(threads)]
    stand_in_before = [_stand_in_seconds(r) for r in readers]

    def run(reader: ClipReader, share: list[str]) -> float:
        started = time.thread_time()
        for start in range(0, len(share), batch):
            _check(reader.read(share[start:start + batch]), decoder)
        return time.thread_time() - started

    decode_wall_before = sum(_decode_wall_seconds(r) for r in readers)
    spinner = Spinner() if spin else contextlib.nullcontext()
    with spinner:
        alone = spinner.rate(0.5) if spin else None
        spun_before = spinner.count if spin else 0
        cpu_started, wall_started = time.process_time(), time.perf_counter()
        with ThreadPoolExecutor(threads) as pool:
            thread_seconds = list(pool.map(run, readers, shares))
        cpu, wall = time.process_time() - cpu_started, time.perf_counter() - wall_started
        beside = (spinner.count - spun_before) / wall if spin else None
    stand_in = sum(_stand_in_seconds(r) - b for r, b in zip(readers, stand_in_before))
    videos = len(work)
    row = {"decoder": decoder, "threads": threads, "processes": 1, "videos": videos, "real": real,
           "cpu_ms_per_video": 1000 * cpu / videos, "thread_cpu_ms_per_video": 1000 * sum(thread_seconds) / videos,
           "stand_in_cpu_ms_per_video": 1000 * stand_in / videos, "videos_per_s": videos / wall}
    if real:
        row["decode_wall_ms_per_video"] = 1000 * (sum(_decode_wall_seconds(r) for r in readers)
                                                  - decode_wall_before) / videos
    if spin:
        row["spinner_share"] = beside / alone if alone else None
    return row


def _decode_wall_seconds(reader: ClipReader) -> float:
    decoder = reader._batch_decoders.get("nvdec")
    return sum(getattr(d, "wall_s", 0.0) for d in decoder._decoders.values()) if decoder is not None else 0.0


_STAND_IN = FreePyNvVideoCodec()


def _check(clips, decoder: str) -> None:
    for clip in clips:
        if not clip.ok or clip.decoder != decoder:
            raise RuntimeError(f"{clip.path}: {clip.decoder} {clip.error} (expected {decoder}; fallback "
                               f"{clip.fallback_reason})")


def _in_process(job: tuple) -> dict:
    return measure(*job)


def measure_processes(paths: list[str], decoder: str, processes: int, rounds: int) -> dict:
    """``processes`` processes with one reader thread each, their CPU times summed."""
    import multiprocessing

    shares = [paths[i::processes] or paths[:1] for i in range(processes)]
    started = time.perf_counter()
    with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn")) as pool:
        parts = list(pool.map(_in_process, [(share, decoder, 1, rounds) for share in shares]))
    videos = sum(p["videos"] for p in parts)
    total = {key: sum(p[key] * p["videos"] for p in parts) / videos
             for key in ("cpu_ms_per_video", "thread_cpu_ms_per_video", "stand_in_cpu_ms_per_video")}
    slowest = max(p["videos"] / p["videos_per_s"] for p in parts)
    return {"decoder": decoder, "threads": 1, "processes": processes, "videos": videos, **total,
            "videos_per_s": videos / slowest, "wall_s_with_start": time.perf_counter() - started}


def run(paths: list[str], decoders: list[str], threads: list[int], processes: int, rounds: int,
        repeats: int = 1, real: bool = False, spin: list[int] = ()) -> list[dict]:
    """Every configuration ``repeats`` times, interleaved; each row holds the medians and the runs.
    ``spin``: thread counts measured once more beside a ``Spinner``."""
    configurations = [(decoder, count, 1, False) for decoder in decoders for count in threads]
    configurations += [(decoder, 1, processes, False) for decoder in decoders if processes > 1]
    configurations += [(decoder, count, 1, True) for decoder in decoders for count in spin]
    runs: dict[tuple, list[dict]] = {c: [] for c in configurations}
    for _ in range(repeats):
        for decoder, count, procs, spinning in configurations:
            row = measure(paths, decoder, count, rounds, real=real, spin=spinning) if procs == 1 else \
                measure_processes(paths, decoder, procs, rounds)
            runs[(decoder, count, procs, spinning)].append(row)
            print(_line(row), flush=True)
    rows = []
    for configuration, measured in runs.items():
        median = {key: float(np.median([r[key] for r in measured])) for key in _MEASURED if key in measured[0]}
        rows.append({**measured[0], **median, "repeats": len(measured), "runs": measured})
    if repeats > 1:
        print("medians:")
        for row in rows:
            print(_line(row), flush=True)
    return rows


_MEASURED = ("cpu_ms_per_video", "thread_cpu_ms_per_video", "stand_in_cpu_ms_per_video", "videos_per_s",
             "decode_wall_ms_per_video", "spinner_share")


def _line(row: dict) -> str:
    return (f"{row['decoder']:<9} {row['processes']} proc x {row['threads']} thr  {row['videos']:4d} videos  "
            f"process CPU {row['cpu_ms_per_video']:6.1f} ms/video  thread CPU {row['thread_cpu_ms_per_video']:6.1f}"
            f" (stand-in {row['stand_in_cpu_ms_per_video']:4.1f})  {row['videos_per_s']:6.1f} videos/s wall"
            + (f"  in Decode {row['decode_wall_ms_per_video']:.1f} ms wall" if "decode_wall_ms_per_video" in row else "")
            + (f"  spinner {row['spinner_share']:.2f} of its rate alone" if row.get("spinner_share") else ""))


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(prog="python -m dfscan.benchmarks.host_path", description=__doc__.split("\n\n")[0])
    parser.add_argument("--archive", type=Path, default=None, help="videos to read (else synthetic ones)")
    parser.add_argument("--videos", type=int, default=6, help="synthetic videos to write when no --archive")
    parser.add_argument("--resolution", default="1080p")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--decoders", default=",".join(HOST_DECODERS))
    parser.add_argument("--threads", default="1,2,4")
    parser.add_argument("--processes", type=int, default=2, help="also this many processes of one thread (0: not)")
    parser.add_argument("--rounds", type=int, default=3, help="times each file is read")
    parser.add_argument("--repeats", type=int, default=1, help="runs of every configuration (medians reported)")
    parser.add_argument("--real", action="store_true",
                        help="nvdec for real (a GPU with PyNvVideoCodec): stand-in columns become the Decode calls")
    parser.add_argument("--spin", default="", help="thread counts to measure again beside a counting thread")
    parser.add_argument("--json", type=Path, default=None, help="write the rows here too")
    args = parser.parse_args(argv)
    decoders = [d for d in args.decoders.split(",") if d]
    unknown = sorted(set(decoders) - set(HOST_DECODERS))
    if args.real and decoders != ["nvdec"]:
        parser.error("--real measures nvdec only: add --decoders nvdec")
    if unknown:
        parser.error(f"unknown decoders {', '.join(unknown)}; expected {', '.join(HOST_DECODERS)}")
    if args.archive is not None:
        from dfscan.kernels.probe import VIDEO_EXTENSIONS

        paths = sorted(str(p) for p in args.archive.iterdir() if p.suffix.lstrip(".").lower() in VIDEO_EXTENSIONS)
        if not paths:
            parser.error(f"no videos in {args.archive}")
    else:
        import tempfile

        from dfscan.benchmarks.archive import write_bench_archive

        directory = Path(tempfile.mkdtemp(prefix="dfscan-host-path-"))
        paths = [str(p) for p in write_bench_archive(directory, args.videos, args.resolution, args.seconds)]
    print(f"{len(paths)} videos, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}", flush=True)
    try:
        rows = run(paths, decoders, [int(t) for t in args.threads.split(",") if t], args.processes, args.rounds,
                   args.repeats, args.real, [int(t) for t in args.spin.split(",") if t])
    except nvdec.NvdecUnavailable as exc:
        print(f"host_path: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    if args.json is not None:
        from dfscan.kernels.atomic import atomic_write_bytes

        atomic_write_bytes(args.json, json.dumps(rows, indent=2).encode())
    return rows


if __name__ == "__main__":
    main()
