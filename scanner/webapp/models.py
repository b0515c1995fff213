"""Find models and list them by their model cards; load one for prediction.

``--models`` names ``.keras`` files or folders; a folder is searched (recursively) for ``model.keras``
files, each with its card ``model.json`` beside it. Listing reads only the cards; a model is loaded
(sha256 checked, safe mode) when it is used.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from training.artifact import MODEL_FILE, ArtifactError, load_card, load_model

MAX_MODELS = 200  # a folder with more model files than this is probably the wrong folder


@dataclasses.dataclass(frozen=True)
class ModelEntry:
    path: str  # the .keras file
    card: dict

    @property
    def name(self) -> str:
        return str(self.card.get("name", Path(self.path).parent.name))

    @property
    def sha256(self) -> str:
        return str(self.card.get("sha256", ""))

    @property
    def frames(self) -> int:
        return int(self.card["frames"])

    @property
    def size(self) -> int:
        return int(self.card["size"])

    @property
    def sampling(self) -> str:
        return str(self.card["sampling"])

    @property
    def threshold(self) -> float:
        return float(self.card["threshold"])

    def label(self) -> str:
        return (f"{self.name} · {self.card.get('arch', '?')} · {self.frames}×{self.size}px · {self.sampling} · "
                f"sha {self.sha256[:12]}")

    def summary(self) -> dict:
        """One row of the models table."""
        return {"name": self.name, "arch": self.card.get("arch"), "frames": self.frames, "size": self.size,
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
            try:
                card = load_card(candidate)
                entry = ModelEntry(path=str(candidate), card=card)
                entry.frames, entry.size, entry.threshold  # noqa: B018 - the card's numbers must parse
            except (ArtifactError, ValueError, TypeError, KeyError) as exc:
                problems.append(f"{candidate}: {exc}")
                continue
            models.append(entry)
    return Discovery(models=models, problems=problems)


def load_for_prediction(path: str):
    """``(LoadedModel, CompiledPredictor)`` with batch size 1; raises ``ArtifactError`` for a refused file."""
    from kernels.predict import CompiledPredictor

    loaded = load_model(path)
    predictor = CompiledPredictor(loaded.model, 1, loaded.frames, loaded.size, fake_index=loaded.fake_index)
    return loaded, predictor
