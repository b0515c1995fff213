"""The model card, ``model.json`` beside ``model.keras``: what a model reads (F, S, sampling, crop and face
settings), how its output is read (class names, threshold, inconclusive band), what it was measured on,
and where the card lies. Parsed and checked once here (``ModelCard.parse``, ``load_card``); every
consumer reads the typed fields. Reading a card needs no deep-learning library.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from dfscan.kernels.clips import CROP_MODES, FACE_CROP, FRAME_CROP, ClipSpec
from dfscan.kernels.errors import ArtifactError, ArtifactProblem
from dfscan.kernels.sampling import SAMPLING_MODES
from dfscan.kernels.verdict_rule import INCONCLUSIVE_BAND

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
# A card is a few hundred bytes of JSON; one far larger is not a card, and is not read into memory.
MAX_CARD_BYTES = 1 << 20
# What a model may ask the readers for, checked on its card and its config's input before any worker
# starts (a worker asked for 100000 frames of 4096x4096 pixels dies allocating them). dfscan's own
# architectures read F = 20 frames of S = 64 (cnn-lstm) or 224 (resnet50-lstm) pixels; the limits
# leave a wide margin. One batch of clips, B x F x S x S x 3 bytes of uint8, is held by each reader.
MAX_FRAMES = 256
MAX_SIZE = 1024
MAX_BATCH_BYTES = 2 << 30


def fake_index(class_names: Sequence[str]) -> int:
    """The output column holding p(fake): where ``"fake"`` is in the card's class names. Every
    consumer of a model gets it from here, so none can guess it."""
    names = list(class_names)
    if FAKE_CLASS not in names:
        raise ArtifactError(ArtifactProblem.NO_FAKE_CLASS,
                            f"class_names {names} have no {FAKE_CLASS!r} class, so no output is known to be p(fake)")
    return names.index(FAKE_CLASS)


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


def model_file(path: str | os.PathLike) -> Path:
    """The model file a user names: ``RUN_DIR/model.keras`` itself, or ``RUN_DIR`` for the one inside it."""
    path = Path(path)
    return path / MODEL_FILE if path.is_dir() else path


def card_path(model_path: str | os.PathLike) -> Path:
    """The card beside a model: ``RUN_DIR/model.keras`` (or ``RUN_DIR``) -> ``RUN_DIR/model.json``."""
    return model_file(model_path).with_suffix(".json")


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
