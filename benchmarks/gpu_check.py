"""Device check for the lent GPU machine: GPU decoders (``dali-gpu``, ``nvdec``) against PyAV and
against each other, their rates in both sampling modes, the fixed cost per video, the model stage and
the whole path from file to p_fake. Written in the same report format as ``dfscan bench``.

Every stage writes the report as soon as it ends, so a run cut short by the device's time limit
still leaves what it measured; any failed check makes the script exit 1. A rate counts only clips
that were decoded, and only by the decoder asked for: a clip that fell back to PyAV is a failure
here, never a GPU number.

- ``agreement``: each GPU decoder's frames against PyAV's at the same indices (mean absolute error
  within the CPU backends' tolerance), and DALI fed the cut GOPs against DALI fed the whole file
  (exactly equal, and unequal one frame later, so a shifted cut would show). A cut that never
  happened fails the check instead of passing it vacuously.
- ``rates``: videos/s and decoded frames/s per decoder, sampling, DALI feed and pipeline count.
- ``overhead``: frame 0 alone, the fixed cost per video.
- ``model``: the compiled predict step alone (mixed bf16 on a GPU).
- ``nvdec engine`` and ``feed`` (``--nvdec-engine``, ``benchmarks.nvdec_engine``): one engine's
  rate on the clip set, every frame, nothing converted; and the decoder alone fed one packet per run
  against one per access unit.
- ``faces``: the face stage alone (``--face-videos``): MTCNN as Keras models on the device's backend
  (``kernels.mtcnn_keras``, what ``MtcnnDetector`` runs) on K frames per video at the detect size,
  batched across videos as ``ClipReader`` batches them; detected frames/s and ms per video, beside
  the model stage. The frames are 1080p with the portrait pasted at a place of its own per video, so
  every face must be found where it was pasted (a check, not only a rate).
- ``end to end``: file to p_fake (``benchmarks.gpu_e2e``): readers in threads feed one compiled
  model; with ``--e2e-processes``, P processes on the one GPU instead, each with its own readers and
  model, one row for their summed rate and one per process.

That machine has no TensorFlow, Ray or PyAV of its own; ``benchmarks/device_run.sh`` carries what it
needs and runs this with ``KERAS_BACKEND=jax``. ``benchmarks/device_dry_run.sh`` runs the same on this
CPU with DALI's CPU decoder and VP9.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import traceback
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from dfscan.benchmarks.archive import parse_resolution, write_bench_video
from dfscan.benchmarks.gpu_e2e import CheckFailed, ProcessFleet, build_check_model, end_to_end, run_threads
from dfscan.benchmarks.gpu_faces import face_rate
from dfscan.benchmarks.nvdec_engine import engine_rate, feed_rates
from dfscan.benchmarks.report import machine_info, spread, write_report
from dfscan.kernels.provenance import library_versions
from dfscan.kernels.clips import ClipReader, ClipSpec
from dfscan.kernels.decode.pyav import PyAVDecoder
from dfscan.kernels.probe import probe
from dfscan.kernels.resize import mean_abs_difference
from dfscan.kernels.sampling import plan_indices

CPU_BACKENDS_TOLERANCE = 3.0  # grey levels, mean absolute error: what the CPU backends' tests allow
DALI_DECODERS = ("dali-gpu", "dali-cpu")


def build_archive(directory: Path, videos: int, resolutions: list[str], extra: list[str], seconds: float,
                  codec: str, fps: int = 30) -> dict[str, list[str]]:
    """Video sets by name, encoded in parallel (serially 32 1080p files cost minutes of device time).
    Each resolution gets ``videos`` busy files for the rates and, in ``agree <resolution>``, two files
    of coarse texture for the pixel checks; ``extra`` entries are ``WxH:codec``, one coarse file each,
    in the set ``agree odd``."""
    jobs: dict[str, list[tuple]] = {}
    frames = max(1, int(round(seconds * fps)))

    def job(name: str, stem: str, size: str, video_codec: str, seed: int, block: int) -> tuple:
        width, height = parse_resolution(size)
        (directory / name).mkdir(parents=True, exist_ok=True)
        extension = "webm" if video_codec == "vp9" else "mp4"
        return (directory / name / f"{stem}.{extension}", width, height, frames, fps, video_codec, seed, block)

    for resolution in resolutions:
        jobs[resolution] = [job(resolution, f"bench_{i:05d}", resolution, codec, i, 8) for i in range(videos)]
        jobs[f"agree {resolution}"] = [job(f"agree {resolution}", f"agree_{i}", resolution, codec, 500 + i, 256)
                                       for i in range(2)]
    if extra:
        jobs["agree odd"] = [job("agree odd", f"odd_{n}_{entry.replace(':', '_')}", entry.partition(":")[0],
                                 entry.partition(":")[2], 1000 + n, 256) for n, entry in enumerate(extra)]
    flat = [job for group in jobs.values() for job in group if not job[0].exists()]  # a kept archive is reused
    if flat:
        with ProcessPoolExecutor(max(1, min(len(flat), os.cpu_count() or 1))) as pool:
            list(pool.map(_encode, flat))
    return {name: [str(job[0]) for job in group] for name, group in jobs.items()}


def _encode(job: tuple) -> None:
    path, width, height, frames, fps, codec, seed, block = job
    write_bench_video(path, width, height, frames, fps, codec, seed, block)


def decode_rate(paths: list[str], spec: ClipSpec, pipelines: int, batch: int, gpu: bool, feed: str) -> dict:
    """Videos/s through ``ClipReader`` (probe + decode + resize), ``pipelines`` readers in threads.
    Only clips decoded by ``spec.decoder`` count."""
    readers = [ClipReader(spec, gpu=gpu, dali_batch=batch, dali_feed=feed) for _ in range(pipelines)]
    for reader in readers:
        reader.read(paths[:1])  # warm-up: builds a pipeline, opens the decoder once
    shares = [paths[i::pipelines] for i in range(pipelines)]
    clips_seen = []
    decoded_before = sum(r.times.frames_decoded for r in readers)
    fed_before = [r.dali_files_fed() for r in readers]

    def work(reader: ClipReader, share: list[str]) -> None:
        for start in range(0, len(share), batch):
            clips = reader.read(share[start:start + batch])
            for clip in clips:
                clip.frames = None  # only the verdict of the check is kept, not the pixels
            clips_seen.extend(clips)

    seconds = run_threads(work, readers, shares)
    decoded = sum(r.times.frames_decoded for r in readers) - decoded_before
    fed = [r.dali_files_fed() for r in readers]
    used = Counter(clip.decoder if clip.ok else "failed" for clip in clips_seen)
    good = used.get(spec.decoder, 0)
    return {"videos_per_s": good / seconds, "frames_decoded_per_s": decoded / seconds, "seconds": seconds,
            "videos": len(clips_seen), "decoders_used": dict(used),
            "failures": [f"{c.path}: {c.error}" for c in clips_seen if not c.ok][:5]
            + [f"{c.path}: fell back from {c.fallback_from}: {c.fallback_reason}" for c in clips_seen
               if c.fallback_from][:5],
            "probe_s": sum(r.times.probe for r in readers), "decode_s": sum(r.times.decode for r in readers),
            "files_cut": sum(f["cut"] - b["cut"] for f, b in zip(fed, fed_before)),
            "files_whole": sum(f["whole"] - b["whole"] for f, b in zip(fed, fed_before))}


def _host(frames) -> np.ndarray:
    return np.asarray(frames)  # (F, S, S, 3) uint8; copies from the GPU for the check only


def agreement(paths: list[str], spec: ClipSpec, gpu: bool, feed: str) -> dict:
    """``spec.decoder``'s frames against PyAV's at the same indices; for DALI also the cut GOPs
    against the whole file (equal at the same indices, unequal one frame later)."""
    reader = ClipReader(spec, gpu=gpu, dali_feed=feed)
    clips = reader.read(paths)
    bad = [f"{c.path}: {c.error or 'decoded by ' + str(c.decoder)}" for c in clips
           if not c.ok or c.decoder != spec.decoder]
    if bad:
        raise CheckFailed(f"{spec.decoder} feed={feed} did not decode: {bad[0]}")
    pyav = PyAVDecoder(spec.size)
    errors = [mean_abs_difference(_host(c.frames), pyav.decode_clip(c.probe, c.indices)) for c in clips]
    result = {"videos": len(clips), "mean_abs_diff_vs_pyav": max(errors), "sampling": spec.sampling,
              "decoder": spec.decoder, "feed": feed}
    if spec.decoder in DALI_DECODERS and feed == "gops":
        result |= _cut_against_whole(paths, spec, gpu)
    if result["mean_abs_diff_vs_pyav"] > CPU_BACKENDS_TOLERANCE:
        raise CheckFailed(f"{spec.decoder} feed={feed} {spec.sampling}: mean difference from PyAV "
                          f"{result['mean_abs_diff_vs_pyav']:.2f} > {CPU_BACKENDS_TOLERANCE}: {result}")
    return result


def _cut_against_whole(paths: list[str], spec: ClipSpec, gpu: bool) -> dict:
    from dfscan.kernels.decode.dali import DaliDecoder

    probes = [probe(path) for path in paths]
    plans = [plan_indices(spec.sampling, p.frame_count, p.keyframes, spec.frames) for p in probes]
    later = [np.minimum(plan + 1, p.frame_count - 1) for plan, p in zip(plans, probes)]
    cutter = DaliDecoder(spec.size, gpu=gpu, feed="gops")
    cut, cut_errors = cutter.decode_batch(probes, plans)
    whole_decoder = DaliDecoder(spec.size, gpu=gpu, feed="file")
    whole, whole_errors = whole_decoder.decode_batch(probes, plans)
    shifted, shifted_errors = whole_decoder.decode_batch(probes, later)
    errors = [str(e) for e in cut_errors + whole_errors + shifted_errors if e is not None]
    if errors:
        raise CheckFailed(f"cut against whole: {errors[0]}")
    result = {"max_abs_diff_same_indices": int(max(np.abs(_host(a).astype(np.int16) - _host(b)).max()
                                                   for a, b in zip(cut, whole))),
              "mean_abs_diff_one_frame_later": min(mean_abs_difference(_host(a), _host(b))
                                                   for a, b in zip(cut, shifted)),
              "files_cut": cutter.files_cut}
    if cutter.files_cut == 0:
        raise CheckFailed(f"no file was cut, so cut against whole compared a file with itself: {result}")
    if result["max_abs_diff_same_indices"] != 0 or result["mean_abs_diff_one_frame_later"] <= 0.25:
        raise CheckFailed(f"the cut GOPs do not give the whole file's frames: {result}")
    return result


def model_rate(arch: str, frames: int, size: int, batch: int, repeats: int) -> dict:
    from dfscan.kernels.predict import CompiledPredictor

    model = build_check_model(arch, frames, size)
    predictor = CompiledPredictor(model, batch_size=batch, frames=frames, size=size)
    started = time.perf_counter()
    predictor.warm_up()
    compile_s = time.perf_counter() - started
    clips = np.random.default_rng(0).integers(0, 256, (batch, frames, size, size, 3), dtype=np.uint8)
    predictor.predict(clips)
    started = time.perf_counter()
    for _ in range(repeats):
        scores = predictor.predict(clips)
    seconds = time.perf_counter() - started
    if not np.isfinite(scores).all():
        raise CheckFailed(f"{arch} gave non-finite scores")
    return {"videos_per_s": batch * repeats / seconds, "seconds": seconds, "compile_s": compile_s}


def _rate_mode(result: dict) -> dict:
    stages = {k: result[k + "_s"] for k in ("probe", "decode") if k + "_s" in result}
    if "compile_s" in result:
        stages["inference"] = result["seconds"]
    mode = {"videos_per_s": spread([result["videos_per_s"]]),
            "frames_decoded_per_s": spread([result.get("frames_decoded_per_s", 0.0)]), "stage_seconds": stages}
    return mode | {k: v for k, v in result.items() if k not in mode and k != "per_process"}  # rows of their own


def _nvdec_facts() -> dict:
    """NVDEC engines (the codec SDK's decoder caps), the video clock, and from them the NVDEC limit
    for 1080p H.264: NVIDIA's application note gives about 771 frames/s per engine at 1860 MHz, and
    Hopper's NVDEC is that design scaled by clock."""
    import subprocess

    facts: dict = {}
    try:
        from dfscan.kernels.decode.nvdec import decoder_caps

        facts["caps"] = {codec: decoder_caps(codec) for codec in ("h264", "hevc")}
    except Exception as exc:  # noqa: BLE001 - recorded: the nvdec stages will fail and say why
        facts["caps_error"] = f"{type(exc).__name__}: {exc}"
    try:  # the video clock's maximum is no --query-gpu field: read it from the "Max Clocks" section
        text = subprocess.run(["nvidia-smi", "-q", "-d", "CLOCK"], capture_output=True, text=True,
                              timeout=20).stdout
        section = text.split("Max Clocks", 1)[1]
        video = next(line for line in section.splitlines() if line.strip().startswith("Video"))
        facts["video_clock_max_mhz"] = float(video.split(":", 1)[1].split()[0])
    except Exception as exc:  # noqa: BLE001 - no nvidia-smi (the dry run)
        facts["clock_error"] = f"{type(exc).__name__}: {exc}"
    engines = (facts.get("caps", {}).get("h264") or {}).get("num_decoder_engines")
    if engines and facts.get("video_clock_max_mhz"):
        facts["nvdec_limit_1080p_h264_fps"] = round(engines * 771 * facts["video_clock_max_mhz"] / 1860)
    print(f"nvdec facts: {facts}", flush=True)
    return facts


def _gpu_memory_mb() -> float | None:
    try:
        import jax

        stats = jax.devices()[0].memory_stats() or {}
        return round(stats.get("peak_bytes_in_use", 0) / 2**20, 1) or None
    except Exception:  # noqa: BLE001 - not every backend reports it
        return None


class _Run:
    """The report, rewritten after every stage; failed checks are collected, not fatal."""

    def __init__(self, args: argparse.Namespace, budget_s: float):
        import resource

        self._resource = resource
        self.args = args
        self.started = time.perf_counter()
        self.budget_s = budget_s
        self.report = {"machine": machine_info(), "versions": library_versions(),
                       "archive": {"codec": args.codec, "videos": args.videos, "seconds": args.seconds,
                                   "extra": args.extra},
                       "config": vars(args) | {"out": str(args.out)}, "modes": {}, "agreement": {},
                       "failures": [], "skipped": []}

    def stage(self, kind: str, name: str, work) -> dict | None:
        if time.perf_counter() - self.started > self.budget_s:
            self.report["skipped"].append(name)
            print(f"skipped (out of time): {name}", flush=True)
            return None
        try:
            result = work()
        except CheckFailed as exc:
            result = {"error": str(exc)}
        except Exception as exc:  # noqa: BLE001 - a broken stage is a finding; the others still run
            result = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()[-3000:]}
        if "error" in result:
            self.report["failures"].append(f"{name}: {result['error']}")
        elif result.get("failures"):
            self.report["failures"].append(f"{name}: {result['failures'][0]}")
        if kind == "agreement":
            self.report["agreement"][name] = result
        elif "error" not in result:
            self.report["modes"][name] = _rate_mode(result)
            for part, part_result in result.get("per_process", {}).items():
                self.report["modes"][f"{name} {part}"] = _rate_mode(part_result)
        summary = result.get("error") or {k: v for k, v in result.items() if k in (
            "videos_per_s", "frames_decoded_per_s", "mean_abs_diff_vs_pyav", "decoders_used", "compile_s",
            "sum_of_process_rates", "frames_detected_per_s", "ms_per_video", "warm_up_s", "unit_over_run_seconds")}
        print(f"{name}: {summary}", flush=True)
        self.write()
        return result

    def write(self) -> None:
        self.report["elapsed_s"] = round(time.perf_counter() - self.started, 1)
        self.report["peak_rss_mb"] = round(self._resource.getrusage(self._resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        self.report["gpu_memory_mb"] = _gpu_memory_mb()
        write_report(self.report, self.args.out)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "gpu-check")))
    parser.add_argument("--videos", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--resolutions", default="1080p,720p")
    parser.add_argument("--codec", default="h264")
    parser.add_argument("--extra", default="1080x1920:h264,1920x1080:hevc",
                        help="odd files, WxH:codec, checked for agreement (portrait, HEVC)")
    parser.add_argument("--decoders", default="dali-gpu,nvdec")
    parser.add_argument("--pipelines", default="1,2,4")
    parser.add_argument("--feeds", default="gops,file", help="how DALI gets each file: gops, file or both")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--models", default="resnet50-lstm,cnn-lstm")
    parser.add_argument("--model-batch", type=int, default=64)
    parser.add_argument("--model-repeats", type=int, default=10)
    parser.add_argument("--nvdec-engine", action="store_true",
                        help="with nvdec: one engine's rate (every frame, one thread, no resize) and the feed "
                             "of one packet per run against one per access unit")
    parser.add_argument("--face-videos", type=int, default=0,
                        help="videos of the face stage (0 skips it): 1080p frames with a face, K per video")
    parser.add_argument("--face-frames", type=int, default=8, help="frames detected on per video (K)")
    parser.add_argument("--face-size", type=int, default=480, help="the long side the detector sees")
    parser.add_argument("--face-batch", type=int, default=8, help="videos whose frames go to the detector at once")
    parser.add_argument("--e2e-arch", default="resnet50-lstm", help="model of the end-to-end stage ('' skips it)")
    parser.add_argument("--e2e-processes", default="",
                        help="end to end in P processes at once on the one GPU, e.g. 1,2,4 (in place of the "
                             "threads of this process)")
    parser.add_argument("--e2e-threads", type=int, default=None,
                        help="reader threads per end-to-end process (default: the largest --pipelines)")
    parser.add_argument("--e2e-videos", type=int, default=160,
                        help="videos per end-to-end process count, the last resolution's files over and over")
    parser.add_argument("--budget-s", type=float, default=420.0, help="start no stage after this many seconds")
    parser.add_argument("--archive-dir", type=Path, default=None,
                        help="encode the videos here and reuse them on the next run (default: a temporary folder)")
    args = parser.parse_args(argv)
    decoders = [d for d in args.decoders.split(",") if d]
    gpu = any(d not in ("dali-cpu", "pyav") for d in decoders)
    pipeline_counts = [int(p) for p in args.pipelines.split(",")]
    run = _Run(args, args.budget_s)

    run.report["nvdec"] = _nvdec_facts() if "nvdec" in decoders else None
    if "nvdec" in decoders:
        from dfscan.kernels.decode.nvdec import NvdecUnavailable, load_pynvvideocodec

        try:
            load_pynvvideocodec()
        except NvdecUnavailable as exc:  # else every nvdec stage would measure its fallback instead
            run.report["failures"].append(f"nvdec: {exc}")
            decoders.remove("nvdec")
    with tempfile.TemporaryDirectory(prefix="dfscan-gpu-check-") as scratch:
        started = time.perf_counter()
        sets = build_archive(args.archive_dir or Path(scratch), args.videos, args.resolutions.split(","),
                             [e for e in args.extra.split(",") if e], args.seconds, args.codec)
        run.report["archive"]["encode_s"] = round(time.perf_counter() - started, 1)
        print(f"archive: {run.report['archive']}", flush=True)
        for decoder in decoders:
            feeds = args.feeds.split(",") if decoder in DALI_DECODERS else ["gops"]
            for name, sample in sets.items():
                if not name.startswith("agree"):
                    continue
                for sampling in ("uniform", "keyframe"):
                    spec = ClipSpec(frames=args.frames, size=args.size, sampling=sampling, decoder=decoder)
                    for feed in feeds:
                        run.stage("agreement", f"{decoder} {name} {sampling} feed={feed}",
                                  lambda: agreement(sample, spec, gpu, feed))
        for resolution in args.resolutions.split(","):
            paths = sets[resolution]
            for decoder in decoders:
                feeds = args.feeds.split(",") if decoder in DALI_DECODERS else ["gops"]
                for sampling in ("keyframe", "uniform"):
                    spec = ClipSpec(frames=args.frames, size=args.size, sampling=sampling, decoder=decoder)
                    for feed in feeds:
                        for pipelines in pipeline_counts:
                            run.stage("rate", f"{decoder} {sampling} {resolution} x{pipelines} feed={feed}",
                                      lambda: decode_rate(paths, spec, pipelines, args.batch, gpu, feed))
                spec = ClipSpec(frames=1, size=args.size, sampling="uniform", decoder=decoder)
                run.stage("rate", f"{decoder} overhead {resolution} x{max(pipeline_counts)}",
                          lambda: decode_rate(paths, spec, max(pipeline_counts), args.batch, gpu, feeds[-1]))
        if args.nvdec_engine and "nvdec" in decoders:
            for resolution in args.resolutions.split(","):
                run.stage("rate", f"nvdec engine {resolution} x1 every frame, no resize",
                          lambda: engine_rate(sets[resolution]))
                run.stage("rate", f"nvdec keyframe {resolution} x1 decoder alone feed=run vs unit",
                          lambda: feed_rates(sets[resolution], args.frames, args.size))
        for arch in filter(None, args.models.split(",")):
            size = 64 if arch == "cnn-lstm" else args.size
            run.stage("rate", f"model {arch} S={size} B={args.model_batch}",
                      lambda: model_rate(arch, args.frames, size, args.model_batch, args.model_repeats))
        if args.face_videos:
            run.stage("rate", f"faces mtcnn 1080p K={args.face_frames} at {args.face_size} B={args.face_batch}",
                      lambda: face_rate(args.face_videos, args.face_frames, args.face_size, args.face_batch))
        if args.e2e_arch:
            resolution = args.resolutions.split(",")[-1]
            size = 64 if args.e2e_arch == "cnn-lstm" else args.size
            process_counts = [int(p) for p in args.e2e_processes.split(",") if p]
            for decoder in decoders:
                spec = ClipSpec(frames=args.frames, size=size, sampling="keyframe", decoder=decoder)
                name = f"end to end {decoder} keyframe {resolution} {args.e2e_arch}"
                if not process_counts:
                    run.stage("rate", f"{name} x{max(pipeline_counts)}",
                              lambda: end_to_end(sets[resolution] * 2, spec, args.e2e_arch, max(pipeline_counts),
                                                 args.batch, gpu))
                    continue
                threads = args.e2e_threads or max(pipeline_counts)
                paths = [sets[resolution][i % len(sets[resolution])] for i in range(args.e2e_videos)]
                with ProcessFleet(spec, args.e2e_arch, max(process_counts), threads, args.batch, gpu,
                                  warm_up_path=paths[0]) as fleet:
                    for processes in process_counts:
                        run.stage("rate", f"{name} P{processes} x{threads}", lambda: fleet.rate(paths, processes))
    run.write()
    print(f"{len(run.report['failures'])} failed checks, {len(run.report['skipped'])} stages skipped, "
          f"{run.report['elapsed_s']} s", flush=True)
    for failure in run.report["failures"]:
        print(f"FAILED {failure[:500]}", file=sys.stderr, flush=True)
    return run.report


if __name__ == "__main__":
    sys.exit(1 if main()["failures"] else 0)
