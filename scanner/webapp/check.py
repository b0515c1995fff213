"""Check one clip with several models: the logic behind the "Check a clip" page, free of Streamlit.

The clip is read as the scanner reads it (``kernels.clips.ClipReader`` with each model's frames, size
and sampling, so the same frame indices), on the CPU decoders: a web server holds no NVDEC pipelines.
Models that share a clip shape share one decode. Every failure (a refused
file, a refused model) becomes a result row with a one-line message, never an exception.

Every export row carries its provenance: the clip's own sha256, dfscan's version, the model's name,
sha256 and card metrics (``kernels.trust``), the frame indices.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import re
import shutil
from pathlib import Path
from typing import BinaryIO, Callable

import numpy as np

from dfscan.kernels.artifact import sha256_file

from dfscan.kernels.provenance import dfscan_version
from dfscan.kernels.clips import Clip, ClipReader, ClipSpec
from dfscan.kernels.csv_text import csv_text
from dfscan.kernels.export import boxed_frames
from dfscan.kernels.errors import ErrorClass, VideoError
from dfscan.kernels.probe import ProbeLimits
from dfscan.kernels.scope import ClipFacts, card_scope, scope_rule
from dfscan.kernels.trust import card_trust
from dfscan.scanner import verdicts
from dfscan.scanner.alarms import OutcomeStats
from dfscan.scanner.webapp.models import ModelEntry
from dfscan.scanner.webapp.plain_errors import file_head, plain_words
from dfscan.scanner.webapp.settings import VIDEO_TYPES, format_bytes

# The probe's fields that the CSV export repeats on every row (the JSON export has the whole probe).
PROBE_COLUMNS = ("container", "codec", "width", "height", "frame_count", "fps", "duration_s")

Progress = Callable[[float, str], None]


@dataclasses.dataclass
class ClipView:
    """The clip as one clip shape (frames, size, sampling, crop) reads it."""

    frames: int
    size: int
    sampling: str
    clip: Clip
    models: list[str]  # names of the models that see this clip
    crop: str = "frame"  # what the models' cards ask for; clip.crop says what they saw
    boxed: np.ndarray | None = None  # face crops: the whole frames with each crop's square drawn  (F, h, w, 3)


@dataclasses.dataclass
class ModelResult:
    model_name: str
    model_sha256: str
    model_path: str
    # The outcome, as scanner.verdicts makes it (ok_outcome, error_outcome).
    status: str  # "ok" | "error"
    error_class: str | None = None  # an ErrorClass value
    error_message: str | None = None
    p_fake: float | None = None
    verdict: str | None = None  # "real" | "fake": the threshold's call
    conclusion: str | None = None  # "real" | "fake" | "inconclusive" | "untested": what to read
    inconclusive_band: float | None = None
    untested_reason: str | None = None  # why "untested": the clip lies outside the model's scope (kernels.scope)
    threshold: float | None = None
    frame_indices: list[int] | None = None
    frames: int = 0
    size: int = 0
    sampling: str = ""
    decoder: str | None = None
    crop: str | None = None  # what the model saw: "frame", or "face" crops (scanner.verdicts.face_columns)
    face_found: bool | None = None
    face_frames: int | None = None
    face_box: list[float] | None = None
    # What the model's card says it is worth (kernels.trust.card_trust), beside every verdict it gives.
    card_metrics: str = ""  # the one-line summary
    card_part: str = ""  # "test", else "val": the part the numbers were measured on
    card_auc: float | None = None
    card_accuracy: float | None = None
    card_n_videos: int | None = None
    card_dataset: str | None = None
    card_synthetic: bool = False
    card_untrusted: bool = False
    card_warnings: list[str] = dataclasses.field(default_factory=list)


# One row per clip and model in the CSV export, in this order: the clip, the result's fields (but the
# model's path on the server), the probe, when. The JSON export has the same fields plus the full probe.
# "error_words" (the error class in plain words, which tells a file that is not a video from a cut-off
# one where both are CONTAINER_INVALID) follows the class; "face_box_unit" follows the box.
_RESULT_COLUMNS = [f.name for f in dataclasses.fields(ModelResult) if f.name != "model_path"]
_RESULT_COLUMNS.insert(_RESULT_COLUMNS.index("error_class") + 1, "error_words")
_RESULT_COLUMNS.insert(_RESULT_COLUMNS.index("face_box") + 1, "face_box_unit")
EXPORT_COLUMNS = ("file", "size_bytes", "clip_sha256", "dfscan_version", *_RESULT_COLUMNS, *PROBE_COLUMNS,
                  "checked_at")
FACE_BOX_UNIT = "x, y, width, height as fractions of the displayed (upright) frame"
CLIP_COLUMNS = ("file", "size_bytes", "clip_sha256", "dfscan_version", "checked_at")  # once per clip in JSON


def card_fields(entry: ModelEntry) -> dict:
    """The ModelResult fields that say what the model's card measured."""
    trust = card_trust(entry.card)
    return {"card_metrics": trust.summary(), "card_part": trust.part, "card_auc": trust.auc,
            "card_accuracy": trust.accuracy, "card_n_videos": trust.n_videos, "card_dataset": trust.dataset,
            "card_synthetic": trust.synthetic, "card_untrusted": trust.untrusted,
            "card_warnings": list(trust.warnings)}


@dataclasses.dataclass
class CheckResult:
    file: str
    size_bytes: int
    checked_at: str
    probe: dict | None
    views: list[ClipView]
    results: list[ModelResult]
    clip_sha256: str = ""  # of the bytes checked
    dfscan_version: str = ""
    head: bytes = b""  # the file's first bytes: a cut-off video told from a file that is not one

    @property
    def file_error(self) -> tuple[str, str] | None:
        """(error class, message) when the file itself was refused (the same for every model)."""
        clips = [v.clip for v in self.views]
        if clips and all(not c.ok for c in clips) and all(c.probe is None for c in clips):
            return clips[0].error.error_class.value, clips[0].error.message
        return None

    def plain_error(self, error_class: str) -> str:
        """An error class of this clip in plain words."""
        return plain_words(error_class, self.head)

    def rows(self) -> list[dict]:
        """One flat row per model (the CSV export)."""
        probe = self.probe or {}
        out = []
        for r in self.results:
            row = {"file": self.file, "size_bytes": self.size_bytes, "checked_at": self.checked_at,
                   "clip_sha256": self.clip_sha256, "dfscan_version": self.dfscan_version,
                   **{k: probe.get(k) for k in PROBE_COLUMNS},
                   **{f.name: getattr(r, f.name) for f in dataclasses.fields(r) if f.name != "model_path"},
                   "error_words": self.plain_error(r.error_class) if r.error_class else None,
                   "face_box_unit": FACE_BOX_UNIT if r.face_box is not None else None}
            out.append({k: row.get(k) for k in EXPORT_COLUMNS})
        return out

    def as_dict(self) -> dict:
        """The clip's JSON export: its provenance once, the full probe, one result per model."""
        rows = [{k: v for k, v in row.items() if k not in CLIP_COLUMNS} for row in self.rows()]
        return {**{k: getattr(self, k) for k in CLIP_COLUMNS}, "probe": self.probe, "results": rows}


def export_json(checks: list[CheckResult]) -> str:
    """Every checked clip in one JSON document."""
    return json.dumps({"dfscan_version": dfscan_version(), "clips": [c.as_dict() for c in checks]}, indent=1,
                      default=str)


def export_csv(checks: list[CheckResult]) -> str:
    """One CSV row per clip and model (EXPORT_COLUMNS); lists are joined (indices by spaces, warnings by "; ")."""
    rows = [{**row, "frame_indices": "" if row["frame_indices"] is None else " ".join(map(str, row["frame_indices"])),
             "card_warnings": "; ".join(row["card_warnings"])} for check in checks for row in check.rows()]
    return csv_text(list(EXPORT_COLUMNS), rows, lineterminator="\n")  # formula-like cells neutralised


def check_alarms(checks: list[CheckResult], models: list[ModelEntry]) -> list[dict]:
    """The alarms (``scanner.alarms``) of each model over every clip checked together: one model that
    calls 12 uploaded clips fake alike is not measuring them. Alarm.as_dict() plus "model_name"."""
    alarms = []
    for entry in models:
        stats = OutcomeStats(card_scope(entry.card))
        for check in checks:
            probe = check.probe or {}
            for result in check.results:
                if result.model_path == entry.path:
                    stats.add({**dataclasses.asdict(result), "display_width": probe.get("display_width"),
                               "display_height": probe.get("display_height")})
        alarms += [{**alarm.as_dict(), "model_name": entry.name} for alarm in stats.alarms()]
    return alarms


def validate_upload(name: str, size: int, max_bytes: int) -> str | None:
    """Why an upload is refused before anything reads it, in one line; None when it may be checked."""
    suffix = Path(name).suffix.lower().lstrip(".")
    if suffix not in VIDEO_TYPES:
        return f"{name}: .{suffix or '?'} files are not accepted; upload one of {', '.join(VIDEO_TYPES)}."
    if size <= 0:
        return f"{name}: the file is empty."
    if size > max_bytes:
        return (f"{name} is {format_bytes(size)}, over the upload limit of {format_bytes(max_bytes)} "
                f"(start the app with a larger --max-upload-mb to raise it).")
    return None


def safe_file_name(name: str) -> str:
    """A name that is safe to create in a temporary folder, keeping the extension."""
    base = Path(name).name
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", base).lstrip(".") or "upload"
    return cleaned[-120:]


def save_upload(stream: BinaryIO, name: str, folder: Path) -> Path:
    """Copy an uploaded file into ``folder`` in 1 MB blocks; returns the new path."""
    path = Path(folder) / safe_file_name(name)
    stream.seek(0)
    with open(path, "wb") as out:
        shutil.copyfileobj(stream, out, 1 << 20)
    return path


def _shape(entry: ModelEntry) -> tuple:
    """How a model reads a clip: its card's clip settings and its sampling."""
    return tuple(sorted(entry.card.clip_settings().items())), entry.sampling


def _model_error(entry: ModelEntry, view: ClipView | None, error_class: str, message: str) -> ModelResult:
    return ModelResult(model_name=entry.name, model_sha256=entry.sha256, model_path=entry.path,
                       **verdicts.error_outcome(error_class, message), threshold=entry.threshold,
                       frame_indices=None if view is None or view.clip.indices is None
                       else [int(i) for i in view.clip.indices],
                       frames=entry.frames, size=entry.size, sampling=entry.sampling,
                       decoder=view.clip.decoder if view else None, **card_fields(entry))


def run_check(path: Path, models: list[ModelEntry], load: Callable[[str], tuple], progress: Progress,
              file_name: str | None = None, limits: ProbeLimits = ProbeLimits()) -> CheckResult:
    """Decode ``path`` once per clip shape and predict with every model; ``load(model_path)`` returns
    ``(LoadedModel, CompiledPredictor)``. ``progress(fraction, text)`` is called before each step."""
    path = Path(path)
    shapes: dict[tuple, list[ModelEntry]] = {}
    for entry in models:  # models that read the clip alike (the card's clip settings) share one decode
        shapes.setdefault(_shape(entry), []).append(entry)
    steps = len(shapes) + len(models)
    done = 0
    views: dict[tuple, ClipView] = {}
    for shape, entries in shapes.items():
        settings, sampling = dict(shape[0]), shape[1]
        frames, size, crop = settings["frames"], settings["size"], settings["crop"]
        what = "face crops" if crop == "face" else "frames"
        progress(done / steps, f"Decoding {frames} {what} at {size}×{size} px ({sampling} sampling)…")
        spec = ClipSpec(**settings, sampling=sampling, decoder="auto", limits=limits)
        (clip,) = ClipReader(spec, gpu=False).read([str(path)])  # one clip: the CPU decoders, no NVDEC
        if clip.error is not None:  # name the upload, not its temporary copy
            clip.error = VideoError(clip.error.error_class,
                                    clip.error.message.replace(str(path), file_name or path.name))
        boxed = boxed_frames(clip) if clip.ok and clip.faces is not None else None
        views[shape] = ClipView(frames, size, sampling, clip, [e.name for e in entries], crop=crop, boxed=boxed)
        done += 1

    results = []
    for entry in models:
        view = views[_shape(entry)]
        progress(done / steps, f"Predicting with {entry.name}…")
        done += 1
        if not view.clip.ok:
            results.append(_model_error(entry, view, view.clip.error.error_class.value, view.clip.error.message))
            continue
        try:
            loaded, predictor = load(entry.path)
        except Exception as exc:  # noqa: BLE001 - a refused model is a result row, not a crash
            results.append(_model_error(entry, view, ErrorClass.MODEL_REFUSED.value, " ".join(str(exc).split())))
            continue
        p_fake = float(predictor.predict(np.asarray(view.clip.frames)[None])[0])  # (1, F, S, S, 3) -> (1,)
        results.append(ModelResult(
            model_name=loaded.name, model_sha256=loaded.sha256, model_path=entry.path,
            **verdicts.ok_outcome(p_fake, loaded.threshold, loaded.inconclusive_band,
                                  scope_rule(entry.card, None).untested_reason(ClipFacts.of_clip(view.clip))),
            threshold=loaded.threshold,
            frame_indices=[int(i) for i in view.clip.indices], frames=loaded.frames, size=loaded.size,
            sampling=view.sampling, decoder=view.clip.decoder, crop=view.clip.crop,
            **verdicts.face_columns(view.clip.faces), **card_fields(entry)))
    progress(1.0, "Done.")
    probe = next((v.clip.probe.as_dict() for v in views.values() if v.clip.probe is not None), None)
    size_bytes = probe["size_bytes"] if probe else (path.stat().st_size if path.exists() else 0)
    if probe is not None:
        probe["path"] = file_name or path.name  # not the temporary copy's path
    checked_at = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    try:
        clip_sha256 = sha256_file(path)
    except OSError:
        clip_sha256 = ""
    return CheckResult(file=file_name or path.name, size_bytes=size_bytes, checked_at=checked_at, probe=probe,
                       views=list(views.values()), results=results, clip_sha256=clip_sha256,
                       dfscan_version=dfscan_version(), head=file_head(path))
