"""The model file format: ``model.keras`` plus its model card ``model.json``, saved atomically, read safely.

Training writes artifacts here; scanning, the web app, evaluation and the benchmarks read them here
(``kernels.predict.load_predictor`` turns one into a compiled predictor). Reading refuses anything it
cannot vouch for, each with a one-line reason and an ``ArtifactProblem``:
- a file that is not a Keras 3 ``.keras`` zip archive (legacy ``.h5``/HDF5, SavedModel, pickles);
- a file whose sha256 differs from the one recorded in the card beside it (tampered or swapped);
- an archive that could inflate past its limits, or whose config names anything but the Keras classes
  dfscan's own models use (Lambda layers, functions, bytecode: ``kernels.model_config``);
- a card that does not say which output is p(fake), or asks for a crop this version cannot make;
and it always deserialises with ``safe_mode=True`` and no custom objects. Everything but the final
deserialisation needs no deep-learning library, so the scanner's driver never imports one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import zipfile
from pathlib import Path

from dfscan.kernels.atomic import atomic_path, write_json_atomic
from dfscan.kernels.card import CARD_KEYS, MODEL_FILE, CardFacts, ModelCard, card_path, fake_index, load_card, model_file
from dfscan.kernels.errors import ArtifactError, ArtifactProblem
from dfscan.kernels.model_config import check_input, read_model_config


@dataclasses.dataclass(frozen=True)
class LoadedModel(CardFacts):
    model: object  # keras.Model, uint8 (B, F, S, S, 3) -> (B, len(class_names)) probabilities
    card: ModelCard
    path: str  # the .keras file


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_keras_atomic(model, path: str | os.PathLike) -> None:
    """``model.save`` to a temporary ``.keras`` file beside ``path``, then ``os.replace``: a crash or a
    kill mid-save leaves the previous file intact, never a truncated archive."""
    path = Path(path)
    with atomic_path(path, suffix=".keras") as temporary:
        model.save(temporary)


def save_model(model, out_dir: str | os.PathLike, card: dict) -> dict:
    """Write ``out_dir/model.keras`` and then its card ``out_dir/model.json`` with the file's sha256.

    ``card`` must hold every key of ``CARD_KEYS`` except ``sha256``, and a ``"fake"`` class; the
    written card is returned.
    """
    out_dir = Path(out_dir)
    missing = [k for k in CARD_KEYS if k != "sha256" and k not in card]
    if missing:
        raise ValueError(f"model card lacks {', '.join(missing)}")
    fake_index(card["class_names"])  # a card that every reader would refuse is never written
    out_dir.mkdir(parents=True, exist_ok=True)
    model_path = out_dir / MODEL_FILE
    save_keras_atomic(model, model_path)
    card = {**card, "file": MODEL_FILE, "sha256": sha256_file(model_path)}
    write_json_atomic(card_path(model_path), card)
    return card


def _resolve(path: str | os.PathLike) -> Path:
    path = model_file(path)
    if not path.is_file():
        raise ArtifactError(ArtifactProblem.NOT_FOUND, f"model file not found: {path}")
    if path.suffix.lower() in (".h5", ".hdf5"):
        raise ArtifactError(ArtifactProblem.LEGACY_HDF5,
                            f"{path.name}: legacy HDF5 (.h5) models are refused; only Keras 3 .keras archives "
                            f"with a model card are loaded (re-save with model.save('model.keras'))")
    if path.suffix.lower() != ".keras":
        raise ArtifactError(ArtifactProblem.NOT_KERAS,
                            f"{path.name}: not a .keras model file; only Keras 3 .keras archives are loaded")
    if not zipfile.is_zipfile(path):
        raise ArtifactError(ArtifactProblem.NOT_KERAS,
                            f"{path.name}: not a Keras 3 archive (not a zip file; an .h5 renamed .keras?)")
    return path


def verify_model(path: str | os.PathLike) -> tuple[Path, ModelCard, str]:
    """Every check of ``load_model`` that needs no deep-learning library: file type, card, sha256,
    bounded archive entries, a config inside the allowlist whose input is the card's ``(B, F, S, S, 3)``
    within the limits (``kernels.model_config``). Returns
    ``(model path, card, sha256)``; raises ``ArtifactError``."""
    path = _resolve(path)
    card = load_card(path)
    digest = sha256_file(path)
    if digest != card.sha256:
        raise ArtifactError(ArtifactProblem.SHA256_MISMATCH,
                            f"{path.name}: sha256 {digest[:16]}... does not match {card.sha256[:16]}... "
                            f"recorded in {card_path(path).name}; the file was modified or replaced")
    check_input(read_model_config(path), card.frames, card.size, f"{path.name}: config.json")
    return path, card, digest


def load_model(path: str | os.PathLike) -> LoadedModel:
    """Load ``RUN_DIR`` or ``RUN_DIR/model.keras`` after checking its card; raises ``ArtifactError``."""
    path, card, _ = verify_model(path)

    import keras

    try:
        model = keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception as exc:  # noqa: BLE001 - every deserialisation failure is a refusal
        raise ArtifactError(ArtifactProblem.UNLOADABLE,
                            f"{path.name}: cannot be loaded in safe mode: {type(exc).__name__}: "
                            f"{' '.join(str(exc).split())[:300]}") from None
    return LoadedModel(model=model, card=card, path=str(path))


@dataclasses.dataclass(frozen=True)
class ModelRecord:
    """A model as one consumer decided it, once: the checked file and its sha256, its card, and the
    sampling, threshold and band its verdicts use (the card's unless overridden). The scan's driver
    decides it and hands the same frozen record to every worker, which only checks that the file still
    has this sha256 (``kernels.predict.load_decided``)."""

    path: str  # the .keras file, absolute
    sha256: str
    card: ModelCard
    sampling: str
    threshold: float
    band: float  # the inconclusive band around the threshold
    crop: str  # "frame" or "face": what the model reads

    @property
    def name(self) -> str:
        return self.card.name


def decide_model(path: str | os.PathLike, *, sampling: str | None = None, threshold: float | None = None) -> ModelRecord:
    """Verify the model file (``verify_model``: no deep-learning library needed) and decide what its
    consumer reads and concludes with. Raises ``ArtifactError``, or ``ValueError`` for an unknown sampling."""
    from dfscan.kernels.sampling import SAMPLING_MODES

    if sampling is not None and sampling not in SAMPLING_MODES:
        raise ValueError(f"unknown sampling {sampling!r}; expected one of {', '.join(SAMPLING_MODES)}")
    checked, card, digest = verify_model(path)
    return ModelRecord(path=str(Path(checked).resolve()), sha256=digest, card=card,
                       sampling=card.sampling if sampling is None else sampling,
                       threshold=card.threshold if threshold is None else float(threshold),
                       band=card.inconclusive_band, crop=card.crop)
