"""`dfscan bench`: in one run, on the same files with the same model, measure
1. the real scanner (``scanner.run.run_scan``) in each requested sampling mode, on whole frames and on
   face crops (the face stage's own seconds beside the others, and how many faces it found),
2. the seed-style baseline (OpenCV reads every frame, one ``model.predict`` per video, no faces),
3. the pure-decode bound (frame-threaded PyAV decodes every frame, converts nothing),
and write ``report.json``, ``report.md`` and ``throughput.png``. Figures are medians over R repeats
after a warm-up, each with its spread.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Callable

from dfscan.benchmarks.archive import parse_resolution, write_bench_archive
from dfscan.benchmarks.baseline import run_baseline
from dfscan.benchmarks.decode_bound import run_decode_bound
from dfscan.benchmarks.report import bottleneck, machine_info, spread, write_report
from dfscan.kernels.provenance import library_versions
from dfscan.scanner.config import default_cpu_workers


@dataclasses.dataclass(frozen=True)
class BenchConfig:
    out: Path = Path("bench-report")
    archive: Path | None = None  # None: a synthetic archive of `synthetic` videos
    synthetic: int = 8
    resolution: str = "720p"
    seconds: float = 10.0
    codec: str = "h264"
    gpus: int | None = None
    workers: int | None = None
    sampling: str = "both"  # uniform | keyframe | both
    model: Path | None = None  # None: a fresh, untrained `arch` (throughput does not depend on weights)
    arch: str = "cnn-lstm"
    frames: int = 20
    size: int | None = None
    width: float = 1.0
    repeats: int = 3
    batch_size: int = 8
    decoders: tuple[str, ...] = ("auto",)  # several: the scanner is measured with each, side by side
    crops: tuple[str, ...] = ("frame", "face")  # the scanner is measured with each: whole frames, face crops

    def __post_init__(self):
        from dfscan.kernels.clips import CROP_MODES
        from dfscan.kernels.decode import DECODERS

        unknown = [d for d in self.decoders if d not in DECODERS]
        if unknown or not self.decoders:
            raise ValueError(f"unknown decoder {', '.join(unknown) or '(none)'}; expected some of {', '.join(DECODERS)}")
        if self.sampling not in ("uniform", "keyframe", "both"):
            raise ValueError(f"unknown sampling {self.sampling!r}; expected uniform, keyframe or both")
        unknown_crops = [c for c in self.crops if c not in CROP_MODES]
        if unknown_crops or not self.crops or len(set(self.crops)) != len(self.crops):
            raise ValueError(f"crops must be some of {', '.join(CROP_MODES)}, each once; got "
                             f"{','.join(self.crops) or '(none)'}")
        if self.repeats < 1:
            raise ValueError("repeats must be at least 1")
        if self.archive is None:
            parse_resolution(self.resolution)
            if self.synthetic < 1:
                raise ValueError("--synthetic needs at least one video")
        elif not Path(self.archive).is_dir():
            raise ValueError(f"archive not found: {self.archive}")

    def modes(self) -> list[str]:
        return ["uniform", "keyframe"] if self.sampling == "both" else [self.sampling]

    def as_dict(self) -> dict:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(self).items()}

class PeakMemory:
    """Samples the resident memory of this process, its children and Ray's worker processes."""

    def __init__(self, interval_s: float = 0.2):
        import psutil

        self._psutil = psutil
        self.interval_s = interval_s
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="dfscan-bench-rss")

    def _sample(self) -> int:
        psutil = self._psutil
        me = psutil.Process()
        processes = [me, *me.children(recursive=True)]
        for process in psutil.process_iter(["name"]):
            if (process.info.get("name") or "").startswith("ray::"):
                processes.append(process)
        total = 0
        for process in {p.pid: p for p in processes}.values():
            try:
                total += process.memory_info().rss
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                pass
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_bytes = max(self.peak_bytes, self._sample())
            self._stop.wait(self.interval_s)

    def __enter__(self) -> "PeakMemory":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

def _archive_files(archive: Path) -> list[str]:
    from dfscan.scanner.config import DEFAULT_EXTENSIONS
    from dfscan.scanner.walk import walk_archive

    return sorted(str(archive / entry.path) for entry in walk_archive(archive, DEFAULT_EXTENSIONS))

def _bench_model(config: BenchConfig, directory: Path) -> Path:
    """The model to measure: the given one, or a fresh ``arch`` saved with a card like a trained one."""
    if config.model is not None:
        return Path(config.model)
    from dfscan.training.models import save_untrained

    return save_untrained(config.arch, config.frames, config.size, config.width, directory,
                          f"bench-{config.arch}-untrained")


def with_crop(model: Path, crop: str, directory: Path) -> Path:
    """``model`` read with ``crop``: itself if its card says so, else a copy of the file beside a card
    that says so (a face card gets the default face settings). The weights are the same; throughput does
    not depend on what they learnt, only on the input contract the card states."""
    from dfscan.kernels.atomic import write_json_atomic
    from dfscan.kernels.card import card_path, load_card, model_file
    from dfscan.kernels.clips import ClipSpec
    from dfscan.kernels.faces import MtcnnDetector
    from dfscan.training.fit import face_settings

    card = load_card(model)
    if card.crop == crop:
        return Path(model)
    directory.mkdir(parents=True, exist_ok=True)
    copy = directory / model_file(model).name
    shutil.copyfile(model_file(model), copy)
    raw = {key: value for key, value in card.items() if key != "face"}
    raw.update(name=f"{card.name} ({crop} crops)", crop=crop)
    if crop == "face":
        raw["face"] = face_settings(ClipSpec(frames=card.frames, size=card.size, crop="face"), MtcnnDetector())
    write_json_atomic(card_path(copy), raw)
    return copy


def _scan_once(config: BenchConfig, archive: Path, model: Path, sampling: str, decoder: str, out: Path):
    from dfscan.scanner.config import ScanConfig
    from dfscan.scanner.run import run_scan

    return run_scan(ScanConfig(archive=archive, model=model, out=out, gpus=config.gpus, workers=config.workers,
                               batch_size=config.batch_size, sampling=sampling, decoder=decoder, full=True,
                               progress=False))


def face_summary(verdicts_dir: Path) -> dict:
    """What the face stage found in one run's rows: the crops the model saw, the videos with a face,
    and the face frames (of the frames detected on) per video."""
    from dfscan.scanner import verdicts

    table = verdicts.read_table(verdicts_dir, columns=["crop", "face_found", "face_frames"])
    crops = [c for c in table["crop"].to_pylist() if c is not None]
    frames = [f for f in table["face_frames"].to_pylist() if f is not None]
    return {"crops": {crop: crops.count(crop) for crop in sorted(set(crops))},
            "videos_with_face": sum(1 for found in table["face_found"].to_pylist() if found),
            "face_frames": frames}


def _scanner_mode(config: BenchConfig, archive: Path, model: Path, sampling: str, decoder: str, crop: str,
                  scratch: Path, say: Callable[[str], None]) -> dict:
    runs = []
    for attempt in range(config.repeats + 1):  # the first run warms caches and is not counted
        out = scratch / f"verdicts-{sampling}-{crop}-{decoder}-{attempt}"
        summary = _scan_once(config, archive, model, sampling, decoder, out)
        # Worker start-up (model load, XLA compile) happens once per night, not per video: leave it out.
        scan_seconds = max(summary.seconds - summary.startup_seconds, 1e-9)
        if attempt:
            runs.append((summary, scan_seconds, out))
            say(f"  scanner {sampling} {crop} repeat {attempt}: {summary.scanned / scan_seconds:.2f} videos/s")
    rates = [s.scanned / seconds for s, seconds, _ in runs]
    median_run, _, median_out = sorted(runs, key=lambda r: r[0].scanned / r[1])[len(runs) // 2]
    stages = dict(median_run.stage_seconds)
    return {
        "crop": crop,
        "videos_per_s": spread(rates),
        "frames_decoded_per_s": spread([s.frames_decoded / seconds for s, seconds, _ in runs]),
        "stage_seconds": stages,
        # The face stage per video (summed over workers, like every stage): what a face crop costs.
        "face_ms_per_video": 1000 * stages["faces"] / median_run.scanned if median_run.scanned else None,
        "faces": face_summary(median_out),
        "rows": [s.scanned for s, _, _ in runs],
        "errors": [s.errors for s, _, _ in runs],
        "startup_seconds": spread([s.startup_seconds for s, _, _ in runs]),
        "bottleneck": bottleneck(stages),
    }


def mode_name(sampling: str, crop: str, decoder: str, decoders: tuple[str, ...]) -> str:
    """``scanner keyframe`` (whole frames), ``scanner keyframe face``, with the decoder when several are measured."""
    return (f"scanner {sampling}" + ("" if crop == "frame" else f" {crop}")
            + ("" if decoders == ("auto",) else f" {decoder}"))

OPENCV_MISSING = ("dfscan bench measures the seed-style baseline with OpenCV, which is not installed: "
                  "pip install 'dfscan[bench]'")


def run_bench(config: BenchConfig, say: Callable[[str], None] = print) -> dict:
    """Raises ImportError (OPENCV_MISSING) before any work when OpenCV is missing."""
    import importlib.util

    if importlib.util.find_spec("cv2") is None:
        raise ImportError(OPENCV_MISSING)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".bench-", dir=out))
    try:
        if config.archive is not None:
            archive = Path(config.archive).resolve()
        else:
            archive = scratch / "archive"
            say(f"writing {config.synthetic} synthetic {config.resolution} {config.seconds:g} s {config.codec} videos")
            write_bench_archive(archive, config.synthetic, config.resolution, config.seconds, config.codec)
        files = _archive_files(archive)
        if not files:
            raise ValueError(f"no video files under {archive}")
        given = _bench_model(config, scratch / "model")
        models = {crop: with_crop(given, crop, scratch / f"model-{crop}") for crop in config.crops}
        model_path = models[config.crops[0]]

        modes: dict[str, dict] = {}
        with PeakMemory() as memory:
            for decoder in config.decoders:
                for sampling in config.modes():
                    for crop in config.crops:
                        name = mode_name(sampling, crop, decoder, config.decoders)
                        say(name)
                        modes[name] = _scanner_mode(config, archive, models[crop], sampling, decoder, crop, scratch,
                                                    say)

            say("seed-style baseline")
            from dfscan.kernels.predict import load_predictor

            # The seed's loop calls model.predict itself: of the predictor it takes the checked model and
            # the card's F, S and fake index (the compiled step is built but never run, so never compiled).
            predictor = load_predictor(model_path, batch_size=1)
            card, model = predictor.card, predictor.loaded.model
            run_baseline(files[:1], model, card.frames, card.size, card.fake_index)  # warm-up
            baselines = [run_baseline(files, model, card.frames, card.size, card.fake_index)
                         for _ in range(config.repeats)]
            modes["baseline (seed loop)"] = {
                "videos_per_s": spread([b.videos_per_s for b in baselines]),
                "frames_decoded_per_s": spread([b.frames_decoded / b.seconds for b in baselines]),
                "rows": [b.videos - b.failed for b in baselines]}

            say("pure-decode bound")

            parallel = config.workers or default_cpu_workers()  # as many files at once as the scanner
            run_decode_bound(files[:1])  # warm-up
            bounds = [run_decode_bound(files, parallel_files=parallel) for _ in range(config.repeats)]
            modes["decode bound (PyAV, all frames)"] = {
                "videos_per_s": spread([b.videos_per_s for b in bounds]),
                "frames_decoded_per_s": spread([b.frames_decoded / b.seconds for b in bounds]),
                "rows": [b.videos for b in bounds]}

        baseline_rate = modes["baseline (seed loop)"]["videos_per_s"]["median"]
        bound_rate = modes["decode bound (PyAV, all frames)"]["videos_per_s"]["median"]
        for name, mode in modes.items():
            rate = mode["videos_per_s"]["median"]
            mode["speedup_vs_baseline"] = rate / baseline_rate if baseline_rate else None
            mode["fraction_of_decode_bound"] = rate / bound_rate if bound_rate else None

        from dfscan.kernels.errors import VideoError
        from dfscan.kernels.probe import probe

        facts = []
        for path in files[:50]:
            try:
                facts.append(probe(path))
            except VideoError:
                pass  # a bad file is the scanner's error row, not a reason to lose the report
        report = {
            "machine": machine_info(), "versions": library_versions(), "config": config.as_dict(),
            "archive": {"path": str(config.archive) if config.archive else "synthetic", "files": len(files),
                        "bytes": sum(os.path.getsize(p) for p in files),
                        "codecs": sorted({f.codec for f in facts}),
                        "resolutions": sorted({f"{f.width}x{f.height}" for f in facts}),
                        "mean_frames": sum(f.frame_count for f in facts) / len(facts) if facts else None},
            "modes": modes,
            "peak_rss_mb": round(memory.peak_bytes / 2**20, 1),
            "gpu_memory_mb": None,
        }
        paths = write_report(report, out)
        say(json.dumps({name: round(m["videos_per_s"]["median"], 3) for name, m in modes.items()}))
        say(f"report: {paths['json']}, {paths['md']}, {paths['png']}")
        return report
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
