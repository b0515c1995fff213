"""Stand-ins for the web app's tests without TensorFlow: model runs that are only a card (listing reads
only cards), and a predictor whose p_fake depends on the frames it is given."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from dfscan.kernels.card import ModelCard


def card(name: str, frames: int = 4, size: int = 32, sampling: str = "uniform", **extra) -> dict:
    return {"name": name, "arch": "cnn-lstm", "frames": frames, "size": size, "sampling": sampling,
            "threshold": 0.5, "class_names": ["real", "fake"], "sha256": f"{name:0<64}"[:64], **extra}


def fake_run(root: Path, folder: str, **card_fields) -> Path:
    """``root/folder/model.keras`` (not a model) and its card; ``card_fields`` as ``card`` takes them."""
    run = root / folder
    run.mkdir(parents=True)
    (run / "model.keras").write_bytes(b"PK")
    (run / "model.json").write_text(json.dumps(card(**{"name": folder, **card_fields})))
    return run / "model.keras"


class StubLoaded:
    def __init__(self, raw: dict):
        parsed = ModelCard.parse(raw)
        self.name, self.sha256, self.threshold = parsed.name, parsed.sha256, parsed.threshold
        self.inconclusive_band, self.frames, self.size = parsed.inconclusive_band, parsed.frames, parsed.size


class StubPredictor:
    """p_fake = mean grey level / 255 of the frames it is given, so results depend on the frames."""

    def __init__(self, calls: list | None = None, p_fake: float | None = None):
        self.calls = [] if calls is None else calls
        self.p_fake = p_fake

    def predict(self, frames: np.ndarray) -> np.ndarray:  # (1, F, S, S, 3) uint8 -> (1,)
        self.calls.append(frames.shape)
        value = frames.mean() / 255.0 if self.p_fake is None else self.p_fake
        return np.array([value], dtype=np.float32)


def stub_load(path: str, calls: list | None = None, p_fake: float | None = None):
    """``check.run_check``'s ``load``: the card beside ``path``, a StubPredictor; a card named "broken"
    is refused as a real loader refuses a file."""
    raw = json.loads(Path(path).with_suffix(".json").read_text())
    if raw["name"] == "broken":
        raise ValueError("model.keras: not a Keras 3 archive")
    return StubLoaded(raw), StubPredictor(calls, p_fake)
