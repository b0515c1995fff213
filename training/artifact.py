"""Model artifacts: ``model.keras`` plus its model card ``model.json``, saved atomically, loaded safely.

Loading refuses anything it cannot vouch for, each with a one-line reason:
- a file that is not a Keras 3 ``.keras`` zip archive (legacy ``.h5``/HDF5, SavedModel, pickles);
- a file whose sha256 differs from the one recorded in the card beside it (tampered or swapped);
- a model with ``Lambda`` layers (arbitrary Python code);
and it always deserialises with ``safe_mode=True`` and no custom objects.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import zipfile
from pathlib import Path

from kernels.atomic import atomic_path

MODEL_FILE = "model.keras"
CARD_FILE = "model.json"
CARD_KEYS = ("name", "arch", "frames", "size", "sampling", "threshold", "class_names", "sha256")


class ArtifactError(ValueError):
    """A model file that must not be loaded, with the reason in one line."""


@dataclasses.dataclass(frozen=True)
class LoadedModel:
    model: object  # keras.Model, uint8 (B, F, S, S, 3) -> (B, 2) probabilities
    card: dict
    sha256: str
    name: str
    frames: int
    size: int
    sampling: str
    threshold: float
    class_names: tuple[str, ...]
    path: str

    @property
    def fake_index(self) -> int:
        return self.class_names.index("fake")


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_json_atomic(path: str | os.PathLike, data) -> None:
    """Write JSON under a temporary name in the same folder, then rename it into place."""
    path = Path(path)
    with atomic_path(path) as temporary, open(temporary, "w") as handle:
        json.dump(data, handle, indent=1, sort_keys=False, default=str)
        handle.write("\n")


def save_keras_atomic(model, path: str | os.PathLike) -> None:
    """``model.save`` to a temporary ``.keras`` file beside ``path``, then ``os.replace``: a crash or a
    kill mid-save leaves the previous file intact, never a truncated archive."""
    path = Path(path)
    with atomic_path(path, suffix=".keras") as temporary:
        model.save(temporary)


def card_path(model_path: str | os.PathLike) -> Path:
    """The card beside a model: ``RUN_DIR/model.keras`` -> ``RUN_DIR/model.json``."""
    return Path(model_path).with_suffix(".json")


def save_model(model, out_dir: str | os.PathLike, card: dict) -> dict:
    """Write ``out_dir/model.keras`` and then its card ``out_dir/model.json`` with the file's sha256.

    ``card`` must hold every key of ``CARD_KEYS`` except ``sha256``; the written card is returned.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    missing = [k for k in CARD_KEYS if k != "sha256" and k not in card]
    if missing:
        raise ValueError(f"model card lacks {', '.join(missing)}")
    model_path = out_dir / MODEL_FILE
    save_keras_atomic(model, model_path)
    card = {**card, "file": MODEL_FILE, "sha256": sha256_file(model_path)}
    write_json_atomic(card_path(model_path), card)
    return card


def _layer_classes(config) -> set[str]:
    """Every ``class_name`` anywhere in a serialized Keras config (nested models included)."""
    found: set[str] = set()
    stack = [config]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if isinstance(node.get("class_name"), str):
                found.add(node["class_name"])
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def _resolve(path: str | os.PathLike) -> Path:
    path = Path(path)
    if path.is_dir():
        path = path / MODEL_FILE
    if not path.is_file():
        raise ArtifactError(f"model file not found: {path}")
    if path.suffix.lower() in (".h5", ".hdf5"):
        raise ArtifactError(f"{path.name}: legacy HDF5 (.h5) models are refused; only Keras 3 .keras "
                            f"archives with a model card are loaded (re-save with model.save('model.keras'))")
    if path.suffix.lower() != ".keras":
        raise ArtifactError(f"{path.name}: not a .keras model file; only Keras 3 .keras archives are loaded")
    if not zipfile.is_zipfile(path):
        raise ArtifactError(f"{path.name}: not a Keras 3 archive (not a zip file; an .h5 renamed .keras?)")
    return path


def load_card(model_path: str | os.PathLike) -> dict:
    path = card_path(model_path)
    if not path.is_file():
        raise ArtifactError(f"no model card {path.name} beside {Path(model_path).name}; "
                            f"refusing to load a model whose sha256 cannot be checked")
    try:
        card = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"{path.name} is not valid JSON: {exc}") from None
    missing = [k for k in CARD_KEYS if k not in card]
    if missing:
        raise ArtifactError(f"{path.name} lacks {', '.join(missing)}")
    return card


def verify_model(path: str | os.PathLike) -> tuple[Path, dict, str]:
    """Every check of ``load_model`` that needs no deep-learning library: file type, card, sha256,
    no Lambda layers. Returns ``(model path, card, sha256)``; raises ``ArtifactError``."""
    path = _resolve(path)
    card = load_card(path)
    digest = sha256_file(path)
    if digest != card["sha256"]:
        raise ArtifactError(f"{path.name}: sha256 {digest[:16]}... does not match {card['sha256'][:16]}... "
                            f"recorded in {card_path(path).name}; the file was modified or replaced")
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
    except (KeyError, zipfile.BadZipFile, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{path.name}: not a Keras 3 archive ({exc})") from None
    if "Lambda" in _layer_classes(config):
        raise ArtifactError(f"{path.name}: the model contains a Lambda layer (arbitrary Python code); "
                            f"models must use built-in layers only")
    return path, card, digest


def load_model(path: str | os.PathLike) -> LoadedModel:
    """Load ``RUN_DIR`` or ``RUN_DIR/model.keras`` after checking its card; raises ``ArtifactError``."""
    path, card, digest = verify_model(path)

    import keras

    try:
        model = keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception as exc:  # noqa: BLE001 - every deserialisation failure is a refusal
        raise ArtifactError(f"{path.name}: cannot be loaded in safe mode: {type(exc).__name__}: "
                            f"{' '.join(str(exc).split())[:300]}") from None
    return LoadedModel(model=model, card=card, sha256=digest, name=str(card["name"]), frames=int(card["frames"]),
                       size=int(card["size"]), sampling=str(card["sampling"]), threshold=float(card["threshold"]),
                       class_names=tuple(card["class_names"]), path=str(path))
