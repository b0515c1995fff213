"""The tiny untrained model that the scanner and web app tests scan with, saved with its card.

One place builds it (through ``training.models.save_untrained``, which the benchmark uses too), so
every test model has the same architecture: a cnn-lstm at width 0.05 without dropout.
"""

from __future__ import annotations

import os
from pathlib import Path

from dfscan.training.models import save_untrained

TINY_ARCH, TINY_WIDTH = "cnn-lstm", 0.05


def save_tiny_model(out_dir: str | os.PathLike, name: str, frames: int, size: int, sampling: str = "uniform",
                    threshold: float = 0.5, data: str = "real") -> Path:
    """Save a tiny untrained cnn-lstm and its card under ``out_dir``; returns ``out_dir/model.keras``.
    Its card's scope says ``data``: by default it stands in for a model measured on real videos, so its
    rows conclude real/fake/inconclusive; ``data="untrained"`` or ``"synthetic"`` tests the scope rules."""
    return save_untrained(TINY_ARCH, frames, size, TINY_WIDTH, out_dir, name, sampling, threshold=threshold,
                          dropout=0.0, data=data)


def write_face_card(run_dir: str | os.PathLike, frames: int, size: int, margin: float) -> Path:
    """A face-crop model's card alone (``model.json``, no model file): for commands that read clips the
    way a card says without running the model (`dfscan frames --model`). Returns the run folder."""
    import json

    run = Path(run_dir)
    run.mkdir(parents=True, exist_ok=True)
    (run / "model.json").write_text(json.dumps({
        "name": "faces", "arch": TINY_ARCH, "frames": frames, "size": size, "sampling": "uniform", "threshold": 0.5,
        "class_names": ["real", "fake"], "sha256": "0" * 64, "crop": "face",
        "face": {"detector": "mtcnn", "detector_version": "1.0.0", "margin": margin, "detect_frames": frames,
                 "detect_size": 320, "work_size": 640}}))
    return run
