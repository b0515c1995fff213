"""Find models and list them by their model cards; load one for prediction.

``--models`` names ``.keras`` files or folders; a folder is searched (recursively) for ``model.keras``
files, each with its card ``model.json`` beside it. Listing reads only the cards; a model is loaded
(sha256 checked, safe mode) when it is used.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from dfscan.kernels.card import CardFacts, MODEL_FILE, ModelCard, load_card

from dfscan.kernels.errors import ArtifactError
from dfscan.kernels.predict import Predictor, load_predictor
from dfscan.kernels.trust import Trust, card_trust

MAX_MODELS = 200  # a folder with more model files than this is probably the wrong folder


@dataclasses.dataclass(frozen=True)
class ModelEntry(CardFacts):
    path: str  # the .keras file
    card: ModelCard

    @property
    def trust(self) -> Trust:
        return card_trust(self.card)

    def label(self) -> str:
        """The chooser's line; a model its card shows to be untrusted says so."""
        return (f"{self.name} · {self.card.arch} · {self.frames}×{self.size}px · {self.sampling} · "
                f"sha {self.sha256[:12]}" + (" · UNTRUSTED" if self.trust.untrusted else ""))

    def summary(self) -> dict:
        """One row of the models table."""
        return {"name": self.name, "arch": self.card.arch, "frames": self.frames, "size": self.size,
                "sampling": self.sampling, "threshold": self.threshold, "sha256": self.sha256[:16],
                "path": self.path}


@dataclasses.dataclass(frozen=True)
class Discovery:
    models: list[ModelEntry]
    problems: list[str]  # one line per path or card that could not be used


def _candidates(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.rglob(MODEL_FILE) if p.is_file())[: MAX_MODELS + 1]
    return [path]


def discover(paths: list[str] | tuple[str, ...]) -> Discovery:
    """Every usable model under ``paths``, by card; what was refused, with the reason."""
    models: list[ModelEntry] = []
    problems: list[str] = []
    seen: set[Path] = set()
    for raw in paths:
        raw = str(raw).strip()
        if not raw:
            continue
        path = Path(raw).expanduser()
        if not path.exists():
            problems.append(f"{raw}: no such file or folder")
            continue
        found = _candidates(path)
        if path.is_dir() and not found:
            problems.append(f"{raw}: no {MODEL_FILE} files in this folder")
        if len(found) > MAX_MODELS:
            problems.append(f"{raw}: more than {MAX_MODELS} model files; only the first {MAX_MODELS} are listed")
            found = found[:MAX_MODELS]
        for candidate in found:
            resolved = candidate.resolve()
            if resolved in seen:
                continue
            seen.add(resolved)
            if candidate.suffix.lower() != ".keras":
                problems.append(f"{candidate}: not a .keras model file")
                continue
            try:  # a card every loader would refuse (no "fake" class, numbers that do not parse) is a problem
                models.append(ModelEntry(path=str(candidate), card=load_card(candidate)))
            except ArtifactError as exc:
                problems.append(f"{candidate}: {exc}")
    return Discovery(models=models, problems=problems)


def load_for_prediction(path: str) -> tuple[ModelCard, Predictor]:
    """``kernels.predict.load_predictor`` at batch size 1, in the ``(card, predictor)`` pair that
    ``check.run_check`` takes; raises ``ArtifactError`` for a refused file."""
    predictor = load_predictor(path, 1)
    return predictor.card, predictor
