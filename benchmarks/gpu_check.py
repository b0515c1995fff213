"""Device check for the lent GPU machine: ``dali-gpu`` decode (uniform and keyframe) on 720p and 1080p
H.264, and the model stage, written in the same report format as ``dfscan bench``.

Each decode mode runs with DALI fed the whole file (``feed=file``, what DALI does alone: it never
seeks, so it decodes from frame 0 to the last frame wanted) and fed only the needed GOPs
(``feed=gops``, ``kernels.decode.gops``). ``overhead`` decodes frame 0 alone: its rate is the fixed
cost per video. ``agreement`` compares DALI's frames from the cut with its frames from the whole
file, at the same indices and one frame later, so a cut that shifted frames would show.

That machine has no TensorFlow, Ray or PyAV of its own: carry DALI, Keras and PyAV as wheels
(``../shared/device/prepare-dali.sh`` with ``EXTRA_WHEELS="av==18.1.0"``) and run with
``KERAS_BACKEND=jax``. Run here on a CPU with ``--decoder dali-cpu --codec vp9`` to try the script:

    python3 -m benchmarks.gpu_check --out $OUT --videos 16 --resolutions 720p,1080p
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from benchmarks.archive import write_bench_archive
from benchmarks.report import library_versions, machine_info, spread, write_report
from kernels.clips import ClipReader, ClipSpec
from kernels.decode.dali import DaliDecoder
from kernels.probe import probe
from kernels.sampling import plan_indices


def decode_rate(paths: list[str], spec: ClipSpec, pipelines: int, batch: int, gpu: bool, feed: str) -> dict:
    """Videos/s through ``ClipReader`` (probe + DALI decode + resize), ``pipelines`` readers in threads."""
    readers = [ClipReader(spec, gpu=gpu, dali_batch=batch, dali_feed=feed) for _ in range(pipelines)]
    readers[0].read(paths[:1])  # warm-up: builds a pipeline, opens the decoder once
    for reader in readers[1:]:
        reader.read(paths[:1])
    shares = [paths[i::pipelines] for i in range(pipelines)]
    failures = []
    decoded_before = sum(r.times.frames_decoded for r in readers)

    def work(reader: ClipReader, share: list[str]) -> None:
        for start in range(0, len(share), batch):
            clips = reader.read(share[start:start + batch])
            failures.extend(c.error for c in clips if not c.ok)

    threads = [threading.Thread(target=work, args=(r, s)) for r, s in zip(readers, shares)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    decoded = sum(r.times.frames_decoded for r in readers) - decoded_before
    fed = [r.dali_files_fed() for r in readers]
    return {"videos_per_s": len(paths) / seconds, "frames_decoded_per_s": decoded / seconds, "seconds": seconds,
            "failures": [str(f) for f in failures[:5]], "n_failures": len(failures),
            "probe_s": sum(r.times.probe for r in readers), "decode_s": sum(r.times.decode for r in readers),
            "files_cut": sum(f["cut"] for f in fed), "files_whole": sum(f["whole"] for f in fed)}


def agreement(paths: list[str], spec: ClipSpec, gpu: bool) -> dict:
    """DALI's frames when fed the cut GOPs against its frames from the whole file: the same indices
    must match exactly, and the indices one frame later must not, or a shifted cut would go unseen."""
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
        return {"error": errors[0]}

    def host(frames) -> np.ndarray:
        return np.asarray(frames).astype(np.int16)  # (F, S, S, 3)

    return {"max_abs_diff_same_indices": int(max(np.abs(host(a) - host(b)).max() for a, b in zip(cut, whole))),
            "mean_abs_diff_one_frame_later": float(min(np.abs(host(a) - host(b)).mean()
                                                       for a, b in zip(cut, shifted))),
            "videos": len(paths), "files_cut": cutter.files_cut, "sampling": spec.sampling}


def model_rate(arch: str, frames: int, size: int, batch: int, repeats: int) -> dict:
    import keras

    from kernels.predict import CompiledPredictor
    from training.models import ModelConfig, build_model

    if keras.backend.backend() != "tensorflow" or _has_gpu():
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    model = build_model(ModelConfig(arch=arch, frames=frames, size=size, backbone_weights="none"))
    predictor = CompiledPredictor(model, batch_size=batch, frames=frames, size=size)
    predictor.warm_up()
    clips = np.random.default_rng(0).integers(0, 256, (batch, frames, size, size, 3), dtype=np.uint8)
    started = time.perf_counter()
    for _ in range(repeats):
        predictor.predict(clips)
    seconds = time.perf_counter() - started
    keras.mixed_precision.set_global_policy("float32")
    return {"videos_per_s": batch * repeats / seconds, "seconds": seconds}


def _decode_mode(result: dict) -> dict:
    return {"videos_per_s": spread([result["videos_per_s"]]),
            "frames_decoded_per_s": spread([result["frames_decoded_per_s"]]),
            "stage_seconds": {"probe": result["probe_s"], "decode": result["decode_s"]},
            "n_failures": result["n_failures"], "failures": result["failures"],
            "files_cut": result["files_cut"], "files_whole": result["files_whole"]}


def _has_gpu() -> bool:
    from kernels.decode import gpu_count

    return gpu_count() > 0


def _gpu_memory_mb() -> float | None:
    try:
        import jax

        stats = jax.devices()[0].memory_stats() or {}
        return round(stats.get("peak_bytes_in_use", 0) / 2**20, 1) or None
    except Exception:  # noqa: BLE001 - not every backend reports it
        return None


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "gpu-check")))
    parser.add_argument("--videos", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--resolutions", default="720p,1080p")
    parser.add_argument("--codec", default="h264")
    parser.add_argument("--decoder", default="dali-gpu")
    parser.add_argument("--pipelines", default="1,4")
    parser.add_argument("--feeds", default="gops,file", help="how DALI gets each file: gops, file or both")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--models", default="resnet50-lstm,cnn-lstm")
    parser.add_argument("--model-batch", type=int, default=64)
    parser.add_argument("--model-repeats", type=int, default=10)
    args = parser.parse_args(argv)
    gpu = args.decoder == "dali-gpu"

    modes: dict[str, dict] = {}
    agreements: dict[str, dict] = {}
    archive_facts: dict[str, object] = {"codec": args.codec, "videos": args.videos, "seconds": args.seconds}
    with tempfile.TemporaryDirectory(prefix="dfscan-gpu-check-") as scratch:
        for resolution in args.resolutions.split(","):
            paths = [str(p) for p in write_bench_archive(Path(scratch) / resolution, args.videos, resolution,
                                                         args.seconds, args.codec)]
            for sampling in ("uniform", "keyframe"):
                spec = ClipSpec(frames=args.frames, size=args.size, sampling=sampling, decoder=args.decoder)
                agreements[f"{resolution} {sampling}"] = agreement(paths[:2], spec, gpu)
                print(f"agreement {resolution} {sampling}: {agreements[f'{resolution} {sampling}']}", flush=True)
                for feed in args.feeds.split(","):
                    for pipelines in (int(p) for p in args.pipelines.split(",")):
                        name = f"{args.decoder} {sampling} {resolution} x{pipelines} feed={feed}"
                        modes[name] = _decode_mode(decode_rate(paths, spec, pipelines, args.batch, gpu, feed))
                        print(f"{name}: {modes[name]['videos_per_s']['median']:.1f} videos/s", flush=True)
            # Frame 0 alone: what a video costs before any frame is worth decoding.
            spec = ClipSpec(frames=1, size=args.size, sampling="uniform", decoder=args.decoder)
            pipelines = max(int(p) for p in args.pipelines.split(","))
            name = f"{args.decoder} overhead {resolution} x{pipelines}"
            modes[name] = _decode_mode(decode_rate(paths, spec, pipelines, args.batch, gpu, "file"))
            print(f"{name}: {modes[name]['videos_per_s']['median']:.1f} videos/s", flush=True)
    for arch in filter(None, args.models.split(",")):
        size = 64 if arch == "cnn-lstm" else args.size
        result = model_rate(arch, args.frames, size, args.model_batch, args.model_repeats)
        modes[f"model {arch} S={size} B={args.model_batch}"] = {
            "videos_per_s": spread([result["videos_per_s"]]),
            "frames_decoded_per_s": spread([0.0]), "stage_seconds": {"inference": result["seconds"]}}
        print(f"model {arch}: {result['videos_per_s']:.0f} videos/s", flush=True)

    import resource

    report = {"machine": machine_info(), "versions": library_versions(), "archive": archive_facts,
              "config": vars(args) | {"out": str(args.out)}, "modes": modes, "agreement": agreements,
              "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
              "gpu_memory_mb": _gpu_memory_mb()}
    write_report(report, args.out)
    return report


if __name__ == "__main__":
    main()
