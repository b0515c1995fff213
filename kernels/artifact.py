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
import enum
import hashlib
import json
import os
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from kernels.atomic import atomic_path
from kernels.clips import CROP_MODES, FACE_CROP, FRAME_CROP, ClipSpec
from kernels.sampling import SAMPLING_MODES

MODEL_FILE = "model.keras"
CARD_FILE = "model.json"
CARD_KEYS = ("name", "arch", "frames", "size", "sampling", "threshold", "class_names", "sha256")
FAKE_CLASS = "fake"
# Cards written before crops existed say nothing, and their models saw whole frames. A face-crop
# card keeps its settings in its "face" object.
DEFAULT_CROP = FRAME_CROP
FACE_DETECTORS = ("mtcnn",)  # the detectors this version runs
# The card's "face" object, key by key, as the ClipSpec field it sets: a model is read the way it was
# trained, with no flag to match.
FACE_SPEC_FIELDS = {"margin": "face_margin", "detect_frames": "face_detect_frames",
                    "detect_size": "face_detect_size", "work_size": "face_work_size"}
# Half-width of the band around the threshold where a verdict reads "inconclusive": a p_fake of 0.47
# against a threshold of 0.5 is a coin toss, not a "real". A card may set its own; older cards get this.
INCONCLUSIVE_BAND = 0.1
# "untested": the clip lies outside what the model was measured on (kernels.scope); p_fake says nothing.
UNTESTED = "untested"
CONCLUSIONS = ("real", "fake", "inconclusive", UNTESTED)
# A card is a few hundred bytes of JSON; one far larger is not a card, and is not read into memory.
MAX_CARD_BYTES = 1 << 20
# What a model may ask the readers for, checked on its card and its config's input before any worker
# starts (a worker asked for 100000 frames of 4096x4096 pixels dies allocating them). dfscan's own
# architectures read F = 20 frames of S = 64 (cnn-lstm) or 224 (resnet50-lstm) pixels; the limits
# leave a wide margin. One batch of clips, B x F x S x S x 3 bytes of uint8, is held by each reader.
MAX_FRAMES = 256
MAX_SIZE = 1024
MAX_BATCH_BYTES = 2 << 30


class ArtifactProblem(str, enum.Enum):
    NOT_FOUND = "NOT_FOUND"
    LEGACY_HDF5 = "LEGACY_HDF5"
    NOT_KERAS = "NOT_KERAS"
    NO_CARD = "NO_CARD"
    BAD_CARD = "BAD_CARD"
    SHA256_MISMATCH = "SHA256_MISMATCH"
    LAMBDA_LAYER = "LAMBDA_LAYER"
    NO_FAKE_CLASS = "NO_FAKE_CLASS"
    UNSUPPORTED_CROP = "UNSUPPORTED_CROP"
    UNLOADABLE = "UNLOADABLE"
    UNSAFE_CONFIG = "UNSAFE_CONFIG"  # names a class, function or module outside the allowlist, or nests too deeply
    OVERSIZED_ENTRY = "OVERSIZED_ENTRY"  # an archive entry larger, or more compressed, than its limit
    UNSUPPORTED_COMPRESSION = "UNSUPPORTED_COMPRESSION"  # neither stored nor deflated (bzip2, lzma)
    OVERSIZED_INPUT = "OVERSIZED_INPUT"  # more frames, pixels or bytes a batch than the limits allow
    INPUT_MISMATCH = "INPUT_MISMATCH"  # the config's input is not the (B, F, S, S, 3) its card says


class ArtifactError(ValueError):
    """A model file that must not be loaded: one ``ArtifactProblem`` plus a one-line message."""

    def __init__(self, problem: ArtifactProblem, message: str):
        message = " ".join(str(message).split())  # always one line
        super().__init__(message)
        self.problem = problem
        self.message = message


def fake_index(class_names: Sequence[str]) -> int:
    """The output column holding p(fake): where ``"fake"`` is in the card's class names. Every
    consumer of a model gets it from here, so none can guess it."""
    names = list(class_names)
    if FAKE_CLASS not in names:
        raise ArtifactError(ArtifactProblem.NO_FAKE_CLASS,
                            f"class_names {names} have no {FAKE_CLASS!r} class, so no output is known to be p(fake)")
    return names.index(FAKE_CLASS)


def called_fake(p_fake, threshold: float):
    """The verdict rule, the one definition of it: fake at or above the card's threshold, real below.
    A scalar gives a bool, an array an array of bools (training's metrics score whole test sets)."""
    import numpy as np

    called = np.asarray(p_fake) >= threshold
    return bool(called) if called.ndim == 0 else called


def conclusion(p_fake: float, threshold: float, band: float) -> str:
    """What a person should read from one p_fake: "inconclusive" when it lies strictly within ``band``
    of the threshold, else the verdict rule's "fake" or "real". ``band=0`` never says inconclusive."""
    if threshold - band < float(p_fake) < threshold + band:
        return "inconclusive"
    return "fake" if called_fake(p_fake, threshold) else "real"


@dataclasses.dataclass(frozen=True)
class ModelCard(Mapping):
    """A checked model card: typed fields for what consumers read, and, as a read-only mapping, the
    whole card as written (metrics, dataset, versions: whatever training recorded)."""

    name: str
    arch: str
    frames: int  # F
    size: int  # S
    sampling: str  # the plan the model was trained with
    threshold: float
    class_names: tuple[str, ...]
    fake_index: int
    crop: str
    sha256: str  # of the model file, as recorded when it was saved
    inconclusive_band: float  # see INCONCLUSIVE_BAND
    raw: Mapping = dataclasses.field(repr=False, compare=False)

    @classmethod
    def parse(cls, raw: Mapping, source: str = CARD_FILE) -> ModelCard:
        """Check and type a card; raises ``ArtifactError`` naming ``source``."""
        missing = [k for k in CARD_KEYS if k not in raw]
        if missing:
            raise ArtifactError(ArtifactProblem.BAD_CARD, f"{source} lacks {', '.join(missing)}")
        names = raw["class_names"]
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            # a string would be read as its letters, a number not at all
            raise ArtifactError(ArtifactProblem.BAD_CARD, f"{source}: class_names must be a list of strings, "
                                f"not {json.dumps(names)[:80]}")
        try:
            class_names = tuple(str(c) for c in raw["class_names"])
            card = cls(name=str(raw["name"]), arch=str(raw["arch"]), frames=int(raw["frames"]),
                       size=int(raw["size"]), sampling=str(raw["sampling"]), threshold=float(raw["threshold"]),
                       class_names=class_names, fake_index=fake_index(class_names),
                       crop=str(raw.get("crop", DEFAULT_CROP)), sha256=str(raw["sha256"]),
                       inconclusive_band=float(raw.get("inconclusive_band", INCONCLUSIVE_BAND)), raw=dict(raw))
        except ArtifactError as exc:
            raise ArtifactError(exc.problem, f"{source}: {exc.message}") from None
        except (TypeError, ValueError, OverflowError) as exc:  # a list for a number, 1e400 for frames
            raise ArtifactError(ArtifactProblem.BAD_CARD, f"{source}: {exc}") from None
        # Training also records the index it used: a card whose two answers differ is not trusted.
        if "fake_index" in raw and raw["fake_index"] != card.fake_index:
            raise ArtifactError(ArtifactProblem.BAD_CARD, f"{source}: fake_index {raw['fake_index']} is not the "
                                f"position of {FAKE_CLASS!r} in class_names {list(class_names)}")
        if card.frames < 1 or card.size < 1:
            raise ArtifactError(ArtifactProblem.BAD_CARD, f"{source}: frames {card.frames} and size {card.size} "
                                f"must be positive")
        if card.frames > MAX_FRAMES or card.size > MAX_SIZE:
            raise ArtifactError(ArtifactProblem.OVERSIZED_INPUT, f"{source}: asks for {card.frames} frames of "
                                f"{card.size}x{card.size} pixels; dfscan reads at most {MAX_FRAMES} frames of at "
                                f"most {MAX_SIZE}x{MAX_SIZE} pixels")
        if card.sampling not in SAMPLING_MODES:
            raise ArtifactError(ArtifactProblem.BAD_CARD, f"{source}: unknown sampling {card.sampling!r}; "
                                f"expected one of {', '.join(SAMPLING_MODES)}")
        if not (0.0 <= card.threshold <= 1.0 and 0.0 <= card.inconclusive_band < 0.5):
            raise ArtifactError(ArtifactProblem.BAD_CARD, f"{source}: threshold {card.threshold} must lie in [0, 1] "
                                f"and inconclusive_band {card.inconclusive_band} in [0, 0.5)")
        if card.crop not in CROP_MODES:
            # A model trained on crops this version cannot make would score the wrong pixels silently.
            raise ArtifactError(ArtifactProblem.UNSUPPORTED_CROP, f"{source}: crop {card.crop!r} is not one this "
                                f"dfscan makes (it makes {', '.join(CROP_MODES)})")
        if card.crop == FACE_CROP:
            _check_face_settings(raw.get("face"), source)
            try:  # the ranges ClipSpec allows, checked once when the card is read, not in each worker
                ClipSpec(**card.clip_settings())
            except ValueError as exc:
                raise ArtifactError(ArtifactProblem.BAD_CARD, f"{source}: {exc}") from None
        return card

    def clip_settings(self) -> dict:
        """The ClipSpec fields this model's clips are read with: F, S, the crop and its face settings."""
        settings = {"frames": self.frames, "size": self.size, "crop": self.crop}
        if self.crop == FACE_CROP:
            face = self.raw["face"]
            settings.update({field: face[key] for key, field in FACE_SPEC_FIELDS.items() if key in face})
        return settings

    def __getitem__(self, key: str):
        return self.raw[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.raw)

    def __len__(self) -> int:
        return len(self.raw)


def _check_face_settings(face, source: str) -> None:
    if not isinstance(face, dict) or face.get("detector") not in FACE_DETECTORS:
        raise ArtifactError(ArtifactProblem.UNSUPPORTED_CROP, f"{source}: a face-crop card needs a 'face' object "
                            f"naming a detector this dfscan runs ({', '.join(FACE_DETECTORS)}); it has {face!r:.80}")
    for key in FACE_SPEC_FIELDS:
        if key in face and (isinstance(face[key], bool) or not isinstance(face[key], (int, float))):
            raise ArtifactError(ArtifactProblem.BAD_CARD, f"{source}: face {key} must be a number, not {face[key]!r:.40}")


class CardFacts:
    """The card's facts read off anything that holds a ``card`` (a loaded model, a model the web app
    lists), so each holder need not forward them one by one."""

    card: ModelCard

    @property
    def sha256(self) -> str:  # for a loaded model: checked against the file's bytes when it was loaded
        return self.card.sha256

    @property
    def name(self) -> str:
        return self.card.name

    @property
    def frames(self) -> int:
        return self.card.frames

    @property
    def size(self) -> int:
        return self.card.size

    @property
    def sampling(self) -> str:
        return self.card.sampling

    @property
    def threshold(self) -> float:
        return self.card.threshold

    @property
    def inconclusive_band(self) -> float:
        return self.card.inconclusive_band

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.card.class_names

    @property
    def fake_index(self) -> int:
        return self.card.fake_index


@dataclasses.dataclass(frozen=True)
class LoadedModel(CardFacts):
    model: object  # keras.Model, uint8 (B, F, S, S, 3) -> (B, len(class_names)) probabilities
    card: ModelCard
    path: str  # the .keras file


def dfscan_version() -> str:
    """The installed dfscan's version, for provenance (model cards, the app's exports), with the commit
    of the checkout it runs from where there is one ("0.1.0+g070ab4a1b2c3"); "source" in a checkout that
    was not installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        installed = version("dfscan")
    except PackageNotFoundError:
        installed = "source"
    commit = source_commit()
    return f"{installed}+g{commit[:12]}" if commit else installed


def source_commit(root: Path | None = None) -> str | None:
    """The git commit of the checkout holding this file (an editable install), read from ``.git`` without
    running git; None for an installed wheel or anything unreadable."""
    root = root or Path(__file__).resolve().parents[1]
    try:
        git = root / ".git"
        if git.is_file():  # a worktree: ".git" names its folder
            git = (root / git.read_text().split("gitdir:", 1)[1].strip()).resolve()
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref:"):
            return head if len(head) == 40 else None
        ref = head[4:].strip()
        common = git / (git / "commondir").read_text().strip() if (git / "commondir").is_file() else git
        for base in (git, common):
            if (base / ref).is_file():
                return (base / ref).read_text().strip()[:40]
        for line in (common / "packed-refs").read_text().splitlines():
            if line.endswith(" " + ref):
                return line.split(" ", 1)[0]
    except (OSError, IndexError, UnicodeDecodeError):
        return None
    return None


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


def model_file(path: str | os.PathLike) -> Path:
    """The model file a user names: ``RUN_DIR/model.keras`` itself, or ``RUN_DIR`` for the one inside it."""
    path = Path(path)
    return path / MODEL_FILE if path.is_dir() else path


def card_path(model_path: str | os.PathLike) -> Path:
    """The card beside a model: ``RUN_DIR/model.keras`` (or ``RUN_DIR``) -> ``RUN_DIR/model.json``."""
    return model_file(model_path).with_suffix(".json")


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


def load_card(model_path: str | os.PathLike) -> ModelCard:
    """The checked card beside ``model_path`` (the model file itself is not read)."""
    path = card_path(model_path)
    if not path.is_file():
        raise ArtifactError(ArtifactProblem.NO_CARD, f"no model card {path.name} beside {Path(model_path).name}; "
                            f"refusing to load a model whose sha256 cannot be checked")
    with open(path, "rb") as handle:
        data = handle.read(MAX_CARD_BYTES + 1)  # bounded even if the file grows after a stat
    if len(data) > MAX_CARD_BYTES:
        raise ArtifactError(ArtifactProblem.BAD_CARD, f"{path.name} is larger than {MAX_CARD_BYTES} bytes; "
                            f"not a model card")
    try:
        raw = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ArtifactError(ArtifactProblem.BAD_CARD, f"{path.name} is not UTF-8 ({exc.reason} at byte "
                            f"{exc.start})") from None
    except json.JSONDecodeError as exc:
        raise ArtifactError(ArtifactProblem.BAD_CARD, f"{path.name} is not valid JSON: {exc}") from None
    except RecursionError:
        raise ArtifactError(ArtifactProblem.BAD_CARD, f"{path.name} is nested too deeply to be a card") from None
    if not isinstance(raw, dict):
        raise ArtifactError(ArtifactProblem.BAD_CARD, f"{path.name} is not a JSON object")
    return ModelCard.parse(raw, path.name)


def verify_model(path: str | os.PathLike) -> tuple[Path, ModelCard, str]:
    """Every check of ``load_model`` that needs no deep-learning library: file type, card, sha256,
    bounded archive entries, a config inside the allowlist whose input is the card's ``(B, F, S, S, 3)``
    within the limits (``kernels.model_config``). Returns
    ``(model path, card, sha256)``; raises ``ArtifactError``."""
    from kernels.model_config import check_input, read_model_config  # it imports ArtifactError from here

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
    from kernels.sampling import SAMPLING_MODES

    if sampling is not None and sampling not in SAMPLING_MODES:
        raise ValueError(f"unknown sampling {sampling!r}; expected one of {', '.join(SAMPLING_MODES)}")
    checked, card, digest = verify_model(path)
    return ModelRecord(path=str(Path(checked).resolve()), sha256=digest, card=card,
                       sampling=card.sampling if sampling is None else sampling,
                       threshold=card.threshold if threshold is None else float(threshold),
                       band=card.inconclusive_band, crop=card.crop)
