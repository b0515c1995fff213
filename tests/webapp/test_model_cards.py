"""The app lists models by the same checked card every loader reads: a card it could not honour is a
listed problem with its reason, never a model on offer."""

from __future__ import annotations

import json
from pathlib import Path

from dfscan.scanner.webapp.models import discover

CARD = {"name": "m", "arch": "cnn-lstm", "frames": 4, "size": 32, "sampling": "uniform", "threshold": 0.5,
        "class_names": ["real", "fake"], "sha256": "0" * 64}


def _run(root: Path, name: str, **changes) -> Path:
    run = root / name
    run.mkdir(parents=True)
    (run / "model.keras").write_bytes(b"PK")  # listing reads only cards
    (run / "model.json").write_text(json.dumps({**CARD, "name": name, **changes}))
    return run / "model.keras"


def test_cards_without_a_fake_class_are_listed_as_problems(tmp_path):
    _run(tmp_path, "good")
    refused = _run(tmp_path, "nofake", class_names=["real", "deepfake"])
    found = discover([str(tmp_path)])
    assert [m.name for m in found.models] == ["good"]
    assert found.models[0].card.fake_index == 1 and found.models[0].card.crop == "frame"
    assert found.problems == [f"{refused}: model.json: class_names ['real', 'deepfake'] have no 'fake' class, "
                              f"so no output is known to be p(fake)"]
