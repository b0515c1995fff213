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
