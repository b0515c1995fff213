"""Read a verdicts folder (the scanner's Parquet dataset) for browsing, free of Streamlit.

Reading, the newest row of each file and the counts are ``scanner.verdicts``'s, as in ``dfscan
report``; this module turns them into pandas at the app's edge. Hidden names (``.part.tmp``,
``_runs/``, ``_SUCCESS``, ``_lock``, ``_quarantine/``) are never read: pyarrow skips them. A damaged
part is read around and named (``damaged``), never moved: the app may run read-only, and the next
`dfscan run` moves it to ``_quarantine/`` (``scanner.quarantine``).
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from dfscan.kernels.verdict_rule import CONCLUSIONS
from dfscan.kernels.clips import Clip, ClipReader, ClipSpec
from dfscan.kernels.csv_text import csv_text
from dfscan.kernels.sampling import SAMPLING_MODES
from dfscan.kernels.trust import Trust, card_trust
from dfscan.scanner import quarantine
from dfscan.scanner import verdicts as verdict_rows
from dfscan.scanner.report import model_alarms, models_of
from dfscan.scanner.verdicts import STATUSES  # noqa: F401 - the browse page's filter choices
from dfscan.scanner.webapp.models import ModelEntry

# A row's frame_indices are read only when its frames are asked for: a million lists would not fit a
# browser's budget. Every other column of the row is read.
READ_ON_DEMAND = ("frame_indices",)
REQUIRED = ("path", "status")  # without them, a folder of Parquet files is not a verdicts folder
# What the page's table shows, in order: a choice of the page (each a VERDICT_SCHEMA column).
# What a person reads comes first, so that a phone's narrow screen shows it before the path.
TABLE_COLUMNS = ("conclusion", "p_fake", "path", "status", "untested_reason", "verdict", "error_class", "error_message",
                 "codec", "width", "height", "frame_count", "duration_s", "decoder", "model_name", "scanned_at",
                 "archive")
DEFAULT_FRAME_SIZE = 224


class VerdictsError(ValueError):
    """A folder that cannot be browsed, with the reason in one line."""


@dataclasses.dataclass
class Verdicts:
    folder: str
    rows: int  # every row, history included
    newest: pd.DataFrame  # one row per (archive, path), sorted by (archive, path)
    counts: verdict_rows.Counts  # of the newest rows
    # What each model's newest rows say about it together (scanner.alarms), as `dfscan report` says it
    alarms: list[dict] = dataclasses.field(default_factory=list)
    damaged: list[verdict_rows.DamagedPart] = dataclasses.field(default_factory=list)  # parts skipped
    quarantined: list[dict] = dataclasses.field(default_factory=list)  # parts runs moved to _quarantine/

    @property
    def files(self) -> int:
        return len(self.newest)


def signature(folder: str | Path) -> tuple:
    """Names, sizes and mtimes of the parts ``load`` reads: changes when a scan commits new parts.
    Only the folder's own entries are listed, never a tree below it: whatever folder is typed (``/usr``),
    the page's reruns stay quick."""
    try:
        return tuple((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in verdict_rows.part_files(folder))
    except OSError:  # unreadable, or a part went away: load says so, in its own words
        return ()


def load(folder: str | Path) -> Verdicts:
    """The verdicts in ``folder``; raises ``VerdictsError`` with a clear reason that names ``folder``
    and nothing inside it (the technical detail goes to the server's log)."""
    path = Path(str(folder).strip()).expanduser()
    if not str(folder).strip():
        raise VerdictsError("type the path of a verdicts folder (the --out of `dfscan run`).")
    try:
        return _load(path)
    except (pa.ArrowException, OSError) as exc:
        print(f"dfscan app: {path}: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        raise VerdictsError(f"{path}: cannot be read (a part is damaged or unreadable, or the folder is "
                            f"not readable); the server's log has the details.") from None


def _load(path: Path) -> Verdicts:
    if not path.exists():
        raise VerdictsError(f"{path}: no such folder.")
    if not path.is_dir():
        raise VerdictsError(f"{path}: not a folder; give the --out folder of `dfscan run`.")
    if not verdict_rows.part_files(path):
        if any(path.glob("*.parquet")):
            raise VerdictsError(f"{path}: not a dfscan verdicts dataset (no part-*.parquet files of dfscan's).")
        raise VerdictsError(f"{path}: no verdicts yet (no Parquet files in this folder).")
    read = verdict_rows.read_parts(path, columns=[c for c in verdict_rows.VERDICT_SCHEMA.names
                                                  if c not in READ_ON_DEMAND])
    if not read.readable:
        raise VerdictsError(f"{path}: every verdict part is damaged ({len(read.damaged)} parts cannot be read); "
                            f"the next `dfscan run` moves them to {quarantine.QUARANTINE_DIR}/ and scans their "
                            f"files again.")
    # The current schema reads every part; the first readable part's own columns tell whether this is a
    # verdicts folder at all (a folder of other Parquet files would read as all-null rows).
    first = pq.read_schema(read.readable[0]).names
    missing = [c for c in REQUIRED if c not in first]
    if missing:
        raise VerdictsError(f"{path}: not a dfscan verdicts dataset (no {', '.join(missing)} column).")
    for line in quarantine.summary_lines(read.damaged, []):  # the details for the server's log, not the page
        print(f"dfscan app: {path}: {line.strip()}", file=sys.stderr, flush=True)
    table = read.table
    newest = verdict_rows.newest_rows(table)  # counted before pandas: the app converts only at its edge
    return Verdicts(folder=str(path), rows=table.num_rows, newest=newest.to_pandas(),
                    counts=verdict_rows.count(newest), alarms=model_alarms(newest, models_of(path, newest)),
                    damaged=read.damaged,
                    quarantined=quarantine.quarantined(path))


def damage_notes(data: Verdicts) -> list[str]:
    """What the page says about damaged parts (nothing when there are none): how many, never their
    names or pyarrow's words, which go to the server's log (the page names nothing inside a folder)."""
    notes = []
    if data.damaged:
        notes.append(f"{len(data.damaged)} damaged verdict part(s) could not be read and were skipped: their rows are "
                     f"not counted here (the server's log names them). The next `dfscan run` moves them to "
                     f"{quarantine.QUARANTINE_DIR}/ and scans their files again.")
    if data.quarantined:
        notes.append(f"{len(data.quarantined)} damaged part(s) were moved to {quarantine.QUARANTINE_DIR}/ by "
                     f"earlier runs, and their files scanned again.")
    return notes


def export_csv(frame: pd.DataFrame) -> str:
    """The table's rows (``TABLE_COLUMNS``) as CSV, formula-like cells neutralised (kernels.csv_text)."""
    columns = [c for c in TABLE_COLUMNS if c in frame.columns]
    rows = ([None if pd.isna(value) else value for value in row]
            for row in frame[columns].itertuples(index=False, name=None))
    return csv_text(columns, rows)


def counts(data: Verdicts) -> dict[str, int]:
    """Files by conclusion (real, fake, inconclusive, untested; the verdict of rows older than the
    conclusion), and error for refused files."""
    return {"files": data.counts.files,
            **{outcome: data.counts.of(outcome) for outcome in (*CONCLUSIONS, "error")}}


@dataclasses.dataclass(frozen=True)
class RowModel:
    """A model that wrote some of the newest rows, and what its card says, when the app lists it."""

    name: str
    sha256: str
    files: int
    trust: Trust | None  # None: no listed model has this sha256, so its card is not available here


def row_models(data: Verdicts, listed: list[ModelEntry]) -> list[RowModel]:
    """The models of the newest rows (by model_sha256, most files first), each judged by its card where
    one of ``listed`` has that sha256."""
    frame = data.newest
    if frame.empty or "model_sha256" not in frame.columns:
        return []
    cards = {entry.sha256: entry.card for entry in listed}
    groups = frame.assign(model_sha256=frame["model_sha256"].fillna(""), model_name=frame["model_name"].fillna(""))
    found = groups.groupby(["model_sha256", "model_name"], sort=False).size().reset_index(name="files")
    found = found.sort_values(["files", "model_name"], ascending=[False, True])
    return [RowModel(name=name, sha256=sha, files=int(files),
                     trust=card_trust(cards[sha]) if sha in cards else None)
            for sha, name, files in found.itertuples(index=False)]




def error_counts(data: Verdicts) -> pd.DataFrame:
    """Refused files by error class, most frequent first."""
    table = pd.DataFrame({"error_class": ["(none)" if c is None else c for c in data.counts.error_classes],
                          "files": list(data.counts.error_classes.values())}, columns=["error_class", "files"])
    return table.sort_values(["files", "error_class"], ascending=[False, True]).reset_index(drop=True)


def histogram(frame: pd.DataFrame, bins: int = 20) -> pd.DataFrame:
    """p_fake of the ok files in ``bins`` equal bins over [0, 1]: columns start, end, files."""
    values = pd.to_numeric(frame["p_fake"], errors="coerce").dropna().to_numpy(dtype=np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    hist, _ = np.histogram(np.clip(values, 0.0, 1.0), bins=edges)
    return pd.DataFrame({"start": edges[:-1], "end": edges[1:], "files": hist.astype(int)})


def conclusions(frame: pd.DataFrame) -> pd.Series:
    """What each row reads as: its conclusion, or the verdict of a row written before conclusions."""
    said = frame["conclusion"] if "conclusion" in frame.columns else pd.Series(None, index=frame.index, dtype=object)
    return said.where(said.notna(), frame["verdict"])


def filter_rows(frame: pd.DataFrame, statuses: list[str], wanted: list[str], p_range: tuple[float, float],
                text: str = "") -> pd.DataFrame:
    """Rows whose status is in ``statuses``; ok rows also need a conclusion in ``wanted`` (real, fake,
    inconclusive) and ``p_fake`` within ``p_range`` (inclusive); ``text`` is a case-insensitive
    substring of the path."""
    status = frame["status"]
    keep = status.isin(statuses)
    p_fake = pd.to_numeric(frame["p_fake"], errors="coerce")
    low, high = p_range
    ok_passes = conclusions(frame).isin(wanted) & p_fake.between(low, high)
    keep &= (status != "ok") | ok_passes
    if text.strip():
        keep &= frame["path"].fillna("").str.contains(text.strip(), case=False, regex=False)
    return frame[keep].reset_index(drop=True)


def _text(value) -> str | None:
    """A string cell of a pandas row, None when missing (pandas writes a missing string as NaN)."""
    return value if isinstance(value, str) else None


def row_file(row: dict) -> Path:
    """Where the row's file is: ARCHIVE/path (path alone when the row has no archive)."""
    archive = _text(row.get("archive"))
    return Path(archive) / row["path"] if archive else Path(row["path"])


def recorded_indices(folder: str | Path, row: dict) -> list[int] | None:
    """The frame indices the row's scan recorded (its newest row in ``folder``), or None."""
    archive = _text(row.get("archive"))
    match = pads.field("path") == row["path"]
    match &= pads.field("archive").is_null() if archive is None else pads.field("archive") == archive
    found = verdict_rows.newest_rows(verdict_rows.read_parts(
        folder, columns=["path", "archive", "scanned_at", "frame_indices"], filter=match).table)
    indices = found["frame_indices"][0].as_py() if found.num_rows else None
    return None if indices is None else [int(i) for i in indices]


def read_row_frames(folder: str | Path, row: dict, settings: dict | None = None) -> tuple[Clip, bool | None]:
    """Re-read the row's file as its scan did: ``(clip, indices_match)``; ``indices_match`` is None when
    the row recorded no indices (or the file cannot be read). ``settings``: the scanning model's clip
    settings (``ModelCard.clip_settings()``: size, crop and face settings) where its card is known; a
    face row is read with face crops even without it (the default face settings).

    The clip is decoded on the CPU (PyAV, or DALI's CPU decoder for VP8/VP9/MJPEG), with the plan the
    scan used, so the indices are comparable whatever decoder the scan ran."""
    recorded = recorded_indices(folder, row)
    sampling = row.get("sampling") if row.get("sampling") in SAMPLING_MODES else "uniform"
    settings = dict(settings or {"size": DEFAULT_FRAME_SIZE})
    if row.get("crop") == "face":
        settings.setdefault("crop", "face")
    settings["frames"] = len(recorded) if recorded else settings.get("frames", 20)
    spec = ClipSpec(**settings, sampling=sampling)
    (clip,) = ClipReader(spec, gpu=False).read([str(row_file(row))])
    if not clip.ok or recorded is None:
        return clip, None
    return clip, [int(i) for i in clip.indices] == recorded
