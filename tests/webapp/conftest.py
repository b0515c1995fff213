"""Fixtures of the web app tests: two tiny models with different clip shapes, and a generated clip."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.media import write_index_video
from tests.webapp.data import TINY_MODELS, TINY_SIZE


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> Path:
    """A folder with two untrained tiny cnn-lstm runs, ``<name>/model.keras`` + ``model.json`` each."""
    from tests.models import save_tiny_model

    root = tmp_path_factory.mktemp("models")
    for name, frames, sampling, threshold in TINY_MODELS:
        save_tiny_model(root / name, name, frames, TINY_SIZE, sampling, threshold)
    return root


@pytest.fixture(scope="session")
def clip_file(tmp_path_factory) -> Path:
    """30 frames of H.264, 128x96, keyframes every 12 frames; frame i shows i."""
    return write_index_video(tmp_path_factory.mktemp("clips") / "clip", 30, "h264")
