"""`dfscan demo`: the embedded default, end to end on a fresh machine in a few minutes on 2 cores.

synth a small labelled archive of a real face (the portrait kind: fakes self-blended, after SBI) ->
train a small cnn-lstm on face crops (MTCNN) -> evaluate -> scan the archive.
The demo model detects self-blended faces, not real deepfakes; it says so.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Callable

from dfscan.kernels.atomic import atomic_write_bytes

DISCLAIMER = ("The demo model learned self-blended faces (dfscan synth), not real deepfakes: "
              "train on Celeb-DF v2 or your own data before trusting its verdicts.")


@dataclasses.dataclass(frozen=True)
class DemoConfig:
    out: Path = Path("dfscan-demo")
    # Measured on the 2-core CPU: see the numbers in README.md's demo paragraph.
    videos: int = 240
    frames_per_video: int = 16
    video_size: int = 128  # synthetic videos are video_size x video_size; the face is 42-64 pixels high
    kind: str = "portrait"  # a real face (MTCNN finds it) or the drawn "cartoon" (whole frames)
    blend_strength: float = 3.0  # plainer fakes than SBI's own (1): see training.self_blend.draw_params
    crop: str = "face"  # face crops for the portrait; the cartoon has no face a detector finds: "frame"
    frames: int = 8  # F of the demo model
    size: int = 32  # S of the demo model
    width: float = 0.25  # cnn-lstm channel multiplier
    epochs: int = 12
    steps_per_epoch: int = 25
    batch_size: int = 8
    max_temporal_offset: int = 0  # each video read once: a face crop costs a detection and a large decode
    seed: int = 0
    workers: int | None = None
    address: str | None = None
    progress: bool = True  # the scan's progress bar on stderr (the command line: only on a terminal)

    def as_dict(self) -> dict:
        return {**dataclasses.asdict(self), "out": str(self.out)}


def run_demo(config: DemoConfig, say: Callable[[str], None] = print) -> dict:
    from dfscan.scanner.config import ScanConfig
    from dfscan.scanner.run import run_scan
    from dfscan.training.evaluate import EvalConfig, evaluate
    from dfscan.training.fit import TrainConfig, train
    from dfscan.training.synth import SynthConfig, synth

    out = Path(config.out)
    archive, run_dir, verdicts = out / "archive", out / "model", out / "verdicts"
    out.mkdir(parents=True, exist_ok=True)
    say(f"dfscan demo -> {out}")
    say(DISCLAIMER)

    started = time.monotonic()
    if not (archive / "labels.csv").exists():
        say(f"1/4 synth: {config.videos} synthetic videos ({config.kind}) -> {archive}")
        synth(archive, SynthConfig(videos=config.videos, frames_per_video=config.frames_per_video,
                                   width=config.video_size, height=config.video_size, seed=config.seed,
                                   kind=config.kind, blend_strength=config.blend_strength))
    else:
        say(f"1/4 synth: reusing {archive}")

    say(f"2/4 train: cnn-lstm on {config.crop} crops, F={config.frames}, S={config.size}, {config.epochs} epochs "
        f"-> {run_dir}")
    trained = train(TrainConfig(data=str(archive), out=str(run_dir), arch="cnn-lstm", epochs=config.epochs,
                                batch_size=config.batch_size, lr=1e-3, frames=config.frames, size=config.size,
                                width=config.width, backbone_weights="none", seed=config.seed,
                                steps_per_epoch=config.steps_per_epoch, crop=config.crop,
                                max_temporal_offset=config.max_temporal_offset, verbose=0))

    say("3/4 evaluate on the held-out test split")
    metrics = evaluate(EvalConfig(data=str(archive), model=str(run_dir), split="test",
                                  plot=str(run_dir / "roc_test.png")))

    say(f"4/4 scan {archive} -> {verdicts}")
    summary = run_scan(ScanConfig(archive=archive, model=run_dir / "model.keras", out=verdicts, gpus=None,
                                  workers=config.workers, batch_size=config.batch_size, address=config.address,
                                  full=True, progress=config.progress))
    result = {
        "out": str(out), "archive": str(archive), "model": str(run_dir / "model.keras"), "verdicts": str(verdicts),
        "test_roc_auc": metrics.get("roc_auc"), "test_accuracy": metrics.get("accuracy"),
        "test_videos": metrics.get("n_videos"), "videos_per_s": summary.videos_per_s, "scanned": summary.scanned,
        "errors": summary.errors, "seconds": round(time.monotonic() - started, 1), "disclaimer": DISCLAIMER,
        "train_run": trained.run_dir, "conclusions": summary.conclusions, "alarms": summary.alarms,
    }
    atomic_write_bytes(out / "demo.json", json.dumps(result, indent=2).encode())
    auc = result["test_roc_auc"]
    say("")
    say(f"  test ROC AUC   {auc:.3f} on {result['test_videos']} held-out synthetic videos" if auc is not None
        else "  test ROC AUC   n/a")
    say(f"  scan           {summary.scanned} videos, {summary.errors} errors, {summary.videos_per_s:.2f} videos/s")
    say("  conclusions    " + (", ".join(f"{n} {name}" for name, n in summary.conclusions.items()) or "none"))
    for alarm in summary.alarms:
        say(f"  alarm          {alarm['message']}")
    say(f"  model          {result['model']} (card: {run_dir / 'model.json'})")
    say(f"  verdicts       {verdicts} (Parquet; try: dfscan report {verdicts})")
    say(f"  total          {result['seconds']} s")
    say(DISCLAIMER)
    return result
