"""A model's scope: what it was trained and measured on, and whether one clip lies inside it.

A p_fake is evidence only about footage like the footage the model was measured on. The card records
that footage (``measure_scope``, written by training and by anything else that writes a card), and
every consumer (scan workers, the web app, ``dfscan evaluate``, the alarms of a run) reads it through
``card_scope`` and judges a clip with ``ScopeRule.untested_reason``. A clip outside the scope concludes
``untested``: its row keeps the threshold's ``verdict`` and ``p_fake``, but nobody should act on them.

The rules, each with the sentence a person reads:
- a model trained only on synthetic videos (``dfscan synth``) is untested on anything that is not a
  ``dfscan synth`` archive (the archive's marker file tells), and on any single uploaded clip;
- a model that was never trained (benchmarks' stand-ins) is untested everywhere;
- a face model on a clip where no face was found scored whole frames it never saw: untested;
- a clip whose displayed long side, or whose face's long side in pixels, is below half the smallest or
  above twice the largest the card saw (``RANGE_FACTOR``) is far outside what the model was measured on.
Older cards without a scope still load: ``dataset.synthetic`` gives the data kind, ranges are unknown and
so never judged.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

# Written by `dfscan synth` at an archive's root; its presence makes the archive synthetic.
SYNTHETIC_MARKER = "dfscan-synth.json"
# What the model was trained and tested on.
DATA_KINDS = ("real", "synthetic", "both", "untrained", "unknown")
# The quantile levels of p_fake a card records per class of its test split.
QUANTILE_LEVELS = (0.0, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 1.0)
# "Far outside" a range the card saw: below min / RANGE_FACTOR or above max * RANGE_FACTOR. A factor of
# 2 leaves room for what resizing absorbs (a 720p model on 1080p footage is in scope) and catches what
# it cannot (a model that saw 128-px videos scanning 4K, a 20-px face where training saw 200-px ones).
RANGE_FACTOR = 2.0

UNTESTED_SYNTHETIC = ("this model was trained on synthetic videos only; it has never been measured on real "
                      "footage")
UNTESTED_UNTRAINED = "this model was never trained; its scores mean nothing"
UNTESTED_NO_FACE = ("no face was found in this clip: this face model scored whole frames, which it was never "
                    "trained or measured on")


def is_synthetic_archive(root: str | os.PathLike) -> bool:
    """Whether ``root`` is an archive written by ``dfscan synth`` (its marker file at the top)."""
    return (Path(root) / SYNTHETIC_MARKER).is_file()


@dataclasses.dataclass(frozen=True)
class ClipFacts:
    """What one clip's read says about where it lies: all a scope rule looks at."""

    long_side: int | None  # the displayed frame's long side, pixels
    face_found: bool | None  # face-crop reads only: whether a face was tracked; None otherwise
    face_px: float | None  # the long side of the median face box, pixels; None without one

    @classmethod
    def of_clip(cls, clip) -> ClipFacts:
        """From a ``kernels.clips.Clip`` (any object with ``probe`` and ``faces``)."""
        probe, track = clip.probe, clip.faces
        long_side = None
        if probe is not None:
            long_side = max(int(probe.display_width or probe.width or 0), int(probe.display_height or probe.height or 0))
        face_px = None
        if track is not None and track.median_box is not None:
            width, height = track.display_size
            face_px = float(max(track.median_box[2] * width, track.median_box[3] * height))
        return cls(long_side=long_side or None, face_found=None if track is None else bool(track.found),
                   face_px=face_px)

    @classmethod
    def of_row(cls, row: Mapping) -> ClipFacts:
        """From a verdict row's columns (``scanner.verdicts``): display size, face_found, face_box."""
        width = row.get("display_width") or row.get("width") or 0
        height = row.get("display_height") or row.get("height") or 0
        box = row.get("face_box")
        face_px = None
        if box is not None and len(box) == 4 and width and height:
            face_px = float(max(box[2] * width, box[3] * height))
        found = row.get("face_found")
        return cls(long_side=int(max(width, height)) or None, face_found=None if found is None else bool(found),
                   face_px=face_px)


def _range(values: Iterable[float | None]) -> list[float] | None:
    values = [float(v) for v in values if v is not None]
    return [round(min(values), 1), round(max(values), 1)] if values else None


def quantiles(values: Sequence[float]) -> list[float] | None:
    """``values`` at ``QUANTILE_LEVELS`` (rounded to 4 decimals); None for no values."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return None
    return [round(float(q), 4) for q in np.quantile(values, QUANTILE_LEVELS)]


def p_fake_quantiles(y_true: Sequence[int], p_fake: Sequence[float]) -> dict:
    """A test split's p_fake per class at ``QUANTILE_LEVELS`` (labels 0 real, 1 fake): what a card
    records and what ``scanner.alarms`` compares a run against."""
    y, p = np.asarray(y_true), np.asarray(p_fake, dtype=np.float64)
    return {"levels": list(QUANTILE_LEVELS), "real": quantiles(p[y == 0]), "fake": quantiles(p[y == 1])}


def measure_scope(*, data: str, dataset: str | None, layout: str | None, videos: Mapping,
                  test_metrics: Mapping | None, train_facts: Sequence[ClipFacts] = (),
                  test_facts: Sequence[ClipFacts] = (), face_model: bool = False) -> dict:
    """The card's ``scope`` object. ``videos``: {part: {"real": n, "fake": n}}; ``test_metrics``: the
    test split's metrics (``training.evaluate.score_items``: its confusion and ``p_fake_quantiles``);
    the facts: one per video read, of the train and the test split."""
    if data not in DATA_KINDS:
        raise ValueError(f"unknown data kind {data!r}; expected one of {', '.join(DATA_KINDS)}")
    scope = {"data": data, "dataset": dataset, "layout": layout,
             "videos": {part: {"real": int(counts.get("real", 0)), "fake": int(counts.get("fake", 0))}
                        for part, counts in videos.items()}}
    if test_metrics:
        scope["test_p_fake"] = test_metrics.get("p_fake_quantiles")
        confusion, n_videos = test_metrics.get("confusion"), test_metrics.get("n_videos")
        scope["test_called_fake"] = (round((confusion[0][1] + confusion[1][1]) / n_videos, 4)
                                     if confusion and n_videos else None)
    facts = list(train_facts) + list(test_facts)
    scope["long_side"] = _range(f.long_side for f in facts)
    if face_model:
        scope["face_found"] = {part: (round(float(np.mean([bool(f.face_found) for f in part_facts])), 4)
                                      if part_facts else None)
                               for part, part_facts in (("train", train_facts), ("test", test_facts))}
        scope["face_px"] = _range(f.face_px for f in facts if f.face_found)
    return scope


@dataclasses.dataclass(frozen=True)
class Scope:
    """A card's scope, typed; ``recorded`` is False for a card written before scopes existed."""

    data: str  # one of DATA_KINDS
    dataset: str | None
    layout: str | None
    videos: Mapping
    test_p_fake: Mapping | None  # {"levels": [...], "real": [...] | None, "fake": [...] | None}
    test_called_fake: float | None
    face_found: Mapping | None  # {"train": share, "test": share}, face models only
    face_px: tuple[float, float] | None
    long_side: tuple[float, float] | None
    recorded: bool

    def as_dict(self) -> dict:
        """JSON-ready; ``scope_from_dict`` reads it back (a run's manifest keeps it for the report)."""
        return dataclasses.asdict(self)

    def describe(self) -> str:
        """One line for a person: what the model was trained and tested on."""
        kind = {"synthetic": "synthetic videos only (dfscan synth)", "real": "real videos", "both":
                "real and synthetic videos", "untrained": "nothing (an untrained model)",
                "unknown": "data its card does not describe"}[self.data]
        words = f"trained and tested on {kind}"
        if self.dataset:
            words += f" ({self.dataset}" + (f", layout {self.layout})" if self.layout else ")")
        test = self.videos.get("test") if self.videos else None
        if test:
            words += f"; test split {test.get('real', 0)} real, {test.get('fake', 0)} fake"
        if self.long_side:
            words += f"; video long sides {self.long_side[0]:g}-{self.long_side[1]:g} px"
        if self.face_px:
            words += f"; faces {self.face_px[0]:g}-{self.face_px[1]:g} px"
        return words


def _pair(value) -> tuple[float, float] | None:
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, (int, float)) for v in value):
        return float(value[0]), float(value[1])
    return None


def card_scope(card: Mapping) -> Scope:
    """The one reader of a card's scope (a ``ModelCard`` or its raw mapping). Malformed fields read as
    unknown rather than failing: a scope only ever makes conclusions more careful."""
    raw = card.get("scope")
    if isinstance(raw, Mapping):
        data = raw.get("data") if raw.get("data") in DATA_KINDS else "unknown"
        test_p_fake = raw.get("test_p_fake") if isinstance(raw.get("test_p_fake"), Mapping) else None
        called = raw.get("test_called_fake")
        return Scope(data=data, dataset=raw.get("dataset"), layout=raw.get("layout"),
                     videos=raw.get("videos") if isinstance(raw.get("videos"), Mapping) else {},
                     test_p_fake=test_p_fake, test_called_fake=float(called) if isinstance(called, (int, float)) else None,
                     face_found=raw.get("face_found") if isinstance(raw.get("face_found"), Mapping) else None,
                     face_px=_pair(raw.get("face_px")), long_side=_pair(raw.get("long_side")), recorded=True)
    dataset = card.get("dataset") if isinstance(card.get("dataset"), Mapping) else {}
    data = "unknown"
    if "synthetic" in dataset:
        data = "synthetic" if dataset.get("synthetic") else "real"
    root = str(dataset.get("root") or "").rstrip("/")
    videos = {part: dataset[part] for part in ("train", "val", "test") if isinstance(dataset.get(part), Mapping)}
    return Scope(data=data, dataset=root.rsplit("/", 1)[-1] or None, layout=dataset.get("layout"), videos=videos,
                 test_p_fake=None, test_called_fake=None, face_found=None, face_px=None, long_side=None,
                 recorded=False)


def scope_from_dict(data: Mapping | None) -> Scope | None:
    """A ``Scope.as_dict()`` read back; None for None or anything malformed."""
    if not isinstance(data, Mapping):
        return None
    try:
        return dataclasses.replace(card_scope({"scope": dict(data)}), recorded=bool(data.get("recorded", True)))
    except (TypeError, ValueError):
        return None


def outside(value: float | None, seen: tuple[float, float] | None) -> bool:
    """Whether ``value`` lies far outside the range ``seen`` (see RANGE_FACTOR); unknowns never do."""
    if value is None or seen is None:
        return False
    return value < seen[0] / RANGE_FACTOR or value > seen[1] * RANGE_FACTOR


@dataclasses.dataclass(frozen=True)
class ScopeRule:
    """A model's scope applied to the files of one archive (or to uploaded clips: never synthetic)."""

    scope: Scope
    face_model: bool
    synthetic_archive: bool

    def run_reason(self) -> str | None:
        """Why every clip of this archive is untested, or None: decided once per archive."""
        if self.scope.data == "untrained":
            return UNTESTED_UNTRAINED
        if self.scope.data == "synthetic" and not self.synthetic_archive:
            return UNTESTED_SYNTHETIC
        return None

    def untested_reason(self, facts: ClipFacts) -> str | None:
        """Why this clip's conclusion must be ``untested``, in one sentence; None when it is in scope."""
        reason = self.run_reason()
        if reason:
            return reason
        if self.face_model and facts.face_found is False:
            return UNTESTED_NO_FACE
        if outside(facts.long_side, self.scope.long_side):
            low, high = self.scope.long_side
            return (f"the video is {facts.long_side} px on its long side; this model was measured on "
                    f"{low:g}-{high:g} px only")
        if self.face_model and facts.face_found and outside(facts.face_px, self.scope.face_px):
            low, high = self.scope.face_px
            return (f"the face is {facts.face_px:.0f} px on its long side; this model was measured on faces of "
                    f"{low:g}-{high:g} px only")
        return None


def scope_rule(card: Mapping, archive: str | os.PathLike | None) -> ScopeRule:
    """The rule for ``card``'s model over ``archive`` (None: uploaded clips, never a synthetic archive)."""
    face_model = str(card.get("crop", "frame")) == "face"
    synthetic = archive is not None and is_synthetic_archive(archive)
    return ScopeRule(scope=card_scope(card), face_model=face_model, synthetic_archive=synthetic)
