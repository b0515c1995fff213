"""The GPU decoders' host side alone: CPU milliseconds per video, with the GPU work replaced by stand-ins
that cost nothing.

On an H200 the ``nvdec`` backend reached 84.6 videos/s end to end in 4 processes (keyframe, 1080p),
while its 7 NVDEC engines could give about 197: the bound was the host side. This measures that side on
any machine:

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

    python -m benchmarks.host_path [--archive DIR | --videos 6] [--resolution 1080p] [--seconds 10]
        [--decoders nvdec,dali-gpu] [--threads 1,2,4] [--processes 2] [--rounds 3] [--repeats 1] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from kernels.clips import ClipReader, ClipSpec
from kernels.decode import nvdec
from kernels.decode.dali import DaliDecoder

HOST_DECODERS = ("nvdec", "dali-gpu")
_H264_VCL, _HEVC_VCL_LIMIT = frozenset({1, 5}), 32


def pictures_in(codec: str, data: bytes) -> int:
    """Pictures in an Annex B byte string: slices whose first_mb_in_slice (H.264) or
    first_slice_segment_in_pic_flag (HEVC) says they begin a picture."""
    count, position = 0, data.find(b"\x00\x00\x01")
    while 0 <= position < len(data) - 5:
        header = data[position + 3]
        if codec == "h264":
            if header & 0x1F in _H264_VCL and data[position + 4] & 0x80:  # ue(v) 0 is a single 1 bit
                count += 1
        elif (header >> 1) & 0x3F < _HEVC_VCL_LIMIT and data[position + 5] & 0x80:
            count += 1
        position = data.find(b"\x00\x00\x01", position + 3)
    return count


class _Frame:
    """A decoded frame as PyNvVideoCodec hands it out (the stand-in's hand-off never reads it)."""

    def __init__(self, buffer: np.ndarray):
        self.buffer = buffer


class FreeDecoder:
    """A decoder that costs nothing but counting: per packet, as many preallocated frames as it holds
    pictures. The time it spends counting is kept, to be told apart from the host path's own."""

    def __init__(self, codec: str, maxwidth: int, maxheight: int):
        self.codec, self.maxwidth, self.maxheight = codec, maxwidth, maxheight
        self.size = (maxwidth, maxheight)
        self.cpu_s = 0.0
        self._frames: list[_Frame] = []

    def setReconfigParams(self, width: int, height: int) -> int:
        if (width, height) != self.size:
            self.size = (width, height)
            self._frames = []
        return 0

    def Decode(self, packet) -> list:
        started = time.thread_time()
        count = 0
        if packet.bsl:
            import ctypes

            count = pictures_in(self.codec, ctypes.string_at(packet.bsl_data, packet.bsl))
        while len(self._frames) < count:
            width, height = self.size
            self._frames.append(_Frame(np.empty((height * 3 // 2, width), dtype=np.uint8)))  # NV12
        self.cpu_s += time.thread_time() - started
        return self._frames[:count]


class FreePyNvVideoCodec:
    """The calls ``kernels.decode.nvdec`` makes of PyNvVideoCodec, answered by ``FreeDecoder``s."""

    class cudaVideoCodec:
        H264, HEVC = "h264", "hevc"

    class OutputColorType:
        NATIVE = 0

    class PacketData:
        def __init__(self):
            self.bsl_data, self.bsl = 0, 0

    def __init__(self):
        self.decoders: list[FreeDecoder] = []

    def CreateDecoder(self, gpuid, codec, cudacontext, cudastream, usedevicememory, maxwidth, maxheight,
                      outputColorType):
        decoder = FreeDecoder(codec, maxwidth, maxheight)
        self.decoders.append(decoder)
        return decoder


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


def host_reader(decoder: str, spec: ClipSpec) -> ClipReader:
    """A reader whose ``decoder`` (nvdec or dali-gpu) runs its host side only."""
    reader = ClipReader(spec, gpu=True, dali_batch=8, threads=1)
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
            batch: int = 4) -> dict:
    """``threads`` readers, each reading its share of ``rounds`` x the files in batches; CPU time of
    the process and of each reader thread over the reads (a first read per reader warms up)."""
    loader, nvdec.load_pynvvideocodec = nvdec.load_pynvvideocodec, lambda: _STAND_IN  # as the tests' fake
    try:
        return _measure(paths, decoder, threads, rounds, sampling, batch)
    finally:
        nvdec.load_pynvvideocodec = loader


def _measure(paths: list[str], decoder: str, threads: int, rounds: int, sampling: str, batch: int) -> dict:
    spec = ClipSpec(frames=20, size=224, sampling=sampling, decoder=decoder)
    readers = [host_reader(decoder, spec) for _ in range(threads)]
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

    cpu_started, wall_started = time.process_time(), time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        thread_seconds = list(pool.map(run, readers, shares))
    cpu, wall = time.process_time() - cpu_started, time.perf_counter() - wall_started
    stand_in = sum(_stand_in_seconds(r) - b for r, b in zip(readers, stand_in_before))
    videos = len(work)
    return {"decoder": decoder, "threads": threads, "processes": 1, "videos": videos,
            "cpu_ms_per_video": 1000 * cpu / videos, "thread_cpu_ms_per_video": 1000 * sum(thread_seconds) / videos,
            "stand_in_cpu_ms_per_video": 1000 * stand_in / videos, "videos_per_s": videos / wall}


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
        repeats: int = 1) -> list[dict]:
    """Every configuration ``repeats`` times, interleaved; each row holds the medians and the runs."""
    configurations = [(decoder, count, 1) for decoder in decoders for count in threads]
    configurations += [(decoder, 1, processes) for decoder in decoders if processes > 1]
    runs: dict[tuple, list[dict]] = {c: [] for c in configurations}
    for _ in range(repeats):
        for decoder, count, procs in configurations:
            row = measure(paths, decoder, count, rounds) if procs == 1 else \
                measure_processes(paths, decoder, procs, rounds)
            runs[(decoder, count, procs)].append(row)
            print(_line(row), flush=True)
    rows = []
    for configuration, measured in runs.items():
        median = {key: float(np.median([r[key] for r in measured])) for key in _MEASURED}
        rows.append({**measured[0], **median, "repeats": len(measured), "runs": measured})
    if repeats > 1:
        print("medians:")
        for row in rows:
            print(_line(row), flush=True)
    return rows


_MEASURED = ("cpu_ms_per_video", "thread_cpu_ms_per_video", "stand_in_cpu_ms_per_video", "videos_per_s")


def _line(row: dict) -> str:
    return (f"{row['decoder']:<9} {row['processes']} proc x {row['threads']} thr  {row['videos']:4d} videos  "
            f"process CPU {row['cpu_ms_per_video']:6.1f} ms/video  thread CPU {row['thread_cpu_ms_per_video']:6.1f}"
            f" (stand-in {row['stand_in_cpu_ms_per_video']:4.1f})  {row['videos_per_s']:6.1f} videos/s wall")


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.host_path", description=__doc__.split("\n\n")[0])
    parser.add_argument("--archive", type=Path, default=None, help="videos to read (else synthetic ones)")
    parser.add_argument("--videos", type=int, default=6, help="synthetic videos to write when no --archive")
    parser.add_argument("--resolution", default="1080p")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--decoders", default=",".join(HOST_DECODERS))
    parser.add_argument("--threads", default="1,2,4")
    parser.add_argument("--processes", type=int, default=2, help="also this many processes of one thread (0: not)")
    parser.add_argument("--rounds", type=int, default=3, help="times each file is read")
    parser.add_argument("--repeats", type=int, default=1, help="runs of every configuration (medians reported)")
    parser.add_argument("--json", type=Path, default=None, help="write the rows here too")
    args = parser.parse_args(argv)
    decoders = [d for d in args.decoders.split(",") if d]
    unknown = sorted(set(decoders) - set(HOST_DECODERS))
    if unknown:
        parser.error(f"unknown decoders {', '.join(unknown)}; expected {', '.join(HOST_DECODERS)}")
    if args.archive is not None:
        from kernels.probe import VIDEO_EXTENSIONS

        paths = sorted(str(p) for p in args.archive.iterdir() if p.suffix.lstrip(".").lower() in VIDEO_EXTENSIONS)
        if not paths:
            parser.error(f"no videos in {args.archive}")
    else:
        import tempfile

        from benchmarks.archive import write_bench_archive

        directory = Path(tempfile.mkdtemp(prefix="dfscan-host-path-"))
        paths = [str(p) for p in write_bench_archive(directory, args.videos, args.resolution, args.seconds)]
    print(f"{len(paths)} videos, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}", flush=True)
    rows = run(paths, decoders, [int(t) for t in args.threads.split(",") if t], args.processes, args.rounds,
               args.repeats)
    if args.json is not None:
        from kernels.atomic import atomic_write_bytes

        atomic_write_bytes(args.json, json.dumps(rows, indent=2).encode())
    return rows


if __name__ == "__main__":
    main()
