"""Read a verdicts folder (the scanner's Parquet dataset) for browsing, free of Streamlit.

The newest row of each file (by ``scanned_at``) is its verdict, as in ``dfscan report``. Hidden
names (``.part.tmp``, ``_runs/``, ``_SUCCESS``, ``_lock``) are never read: pyarrow skips them.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads

from kernels.clips import Clip, ClipReader, ClipSpec
from kernels.sampling import SAMPLING_MODES

# The columns the browser reads (a dataset may lack some; they read as empty). A row's frame_indices
# are read only when its frames are asked for: a million lists would not fit a browser's budget.
COLUMNS = ("path", "archive", "size", "status", "error_class", "error_message", "p_fake", "verdict", "threshold",
           "codec", "width", "height", "frame_count", "fps", "duration_s", "decoder", "sampling",
           "model_name", "model_sha256", "run_id", "scanned_at", "worker")
REQUIRED = ("path", "status")
TABLE_COLUMNS = ("path", "status", "verdict", "p_fake", "error_class", "error_message", "codec", "width", "height",
                 "frame_count", "duration_s", "decoder", "model_name", "scanned_at", "archive")
STATUSES = ("ok", "error")
VERDICTS = ("real", "fake")
DEFAULT_FRAME_SIZE = 224


class VerdictsError(ValueError):
    """A folder that cannot be browsed, with the reason in one line."""


@dataclasses.dataclass
class Verdicts:
    folder: str
    rows: int  # every row, history included
    newest: pd.DataFrame  # one row per (archive, path), sorted by path

    @property
    def files(self) -> int:
        return len(self.newest)


def signature(folder: str | Path) -> tuple:
    """Names, sizes and mtimes of the visible files: changes when a scan commits new parts."""
    folder = Path(folder)
    if not folder.is_dir():
        return ()
    entries = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if any(part.startswith((".", "_")) for part in rel.parts) or not path.is_file():
            continue
        stat = path.stat()
        entries.append((str(rel), stat.st_size, stat.st_mtime_ns))
    return tuple(entries)


def load(folder: str | Path) -> Verdicts:
    """The verdicts in ``folder``; raises ``VerdictsError`` with a clear reason."""
    path = Path(str(folder).strip()).expanduser()
    if not str(folder).strip():
        raise VerdictsError("type the path of a verdicts folder (the --out of `dfscan run`).")
    if not path.exists():
        raise VerdictsError(f"{path}: no such folder.")
    if not path.is_dir():
        raise VerdictsError(f"{path}: not a folder; give the --out folder of `dfscan run`.")
    try:
        dataset = pads.dataset(str(path), format="parquet")
        names = set(dataset.schema.names)
        if not dataset.files:
            raise VerdictsError(f"{path}: no verdicts yet (no Parquet files in this folder).")
        missing = [c for c in REQUIRED if c not in names]
        if missing:
            raise VerdictsError(f"{path}: not a dfscan verdicts dataset (no {', '.join(missing)} column).")
        table = dataset.to_table(columns=[c for c in COLUMNS if c in names])
    except (pa.ArrowException, OSError) as exc:
        raise VerdictsError(f"{path}: cannot be read as a Parquet dataset: {' '.join(str(exc).split())[:300]}") \
            from None
    frame = table.to_pandas()
    for column in COLUMNS:
        if column not in frame.columns:
            frame[column] = None
    return Verdicts(folder=str(path), rows=table.num_rows, newest=newest_rows(frame))


def newest_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The newest row per (archive, path) by ``scanned_at``."""
    if frame.empty:
        return frame.reset_index(drop=True)
    keyed = frame.assign(_archive=frame["archive"].fillna(""), _order=np.arange(len(frame)))
    keyed = keyed.sort_values(["scanned_at", "_order"], na_position="first", kind="stable")
    keyed = keyed.drop_duplicates(["_archive", "path"], keep="last")
    return keyed.sort_values(["_archive", "path"]).drop(columns=["_archive", "_order"]).reset_index(drop=True)


def counts(frame: pd.DataFrame) -> dict[str, int]:
    """Files by verdict: real, fake, and error for refused files."""
    ok = frame["status"] == "ok"
    return {"files": int(len(frame)), "real": int((ok & (frame["verdict"] == "real")).sum()),
            "fake": int((ok & (frame["verdict"] == "fake")).sum()), "error": int((~ok).sum())}


def error_counts(frame: pd.DataFrame) -> pd.DataFrame:
    """Refused files by error class, most frequent first."""
    errors = frame.loc[frame["status"] != "ok", "error_class"].fillna("(none)")
    table = errors.value_counts().rename_axis("error_class").reset_index(name="files")
    return table.sort_values(["files", "error_class"], ascending=[False, True]).reset_index(drop=True)


def histogram(frame: pd.DataFrame, bins: int = 20) -> pd.DataFrame:
    """p_fake of the ok files in ``bins`` equal bins over [0, 1]: columns start, end, files."""
    values = pd.to_numeric(frame["p_fake"], errors="coerce").dropna().to_numpy(dtype=np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    hist, _ = np.histogram(np.clip(values, 0.0, 1.0), bins=edges)
    return pd.DataFrame({"start": edges[:-1], "end": edges[1:], "files": hist.astype(int)})


def filter_rows(frame: pd.DataFrame, statuses: list[str], verdicts: list[str], p_range: tuple[float, float],
                text: str = "") -> pd.DataFrame:
    """Rows whose status is in ``statuses``; ok rows also need a verdict in ``verdicts`` and ``p_fake``
    within ``p_range`` (inclusive); ``text`` is a case-insensitive substring of the path."""
    status = frame["status"]
    keep = status.isin(statuses)
    p_fake = pd.to_numeric(frame["p_fake"], errors="coerce")
    low, high = p_range
    ok_passes = frame["verdict"].isin(verdicts) & p_fake.between(low, high)
    keep &= (status != "ok") | ok_passes
    if text.strip():
        keep &= frame["path"].fillna("").str.contains(text.strip(), case=False, regex=False)
    return frame[keep].reset_index(drop=True)


def row_file(row: dict) -> Path:
    """Where the row's file is: ARCHIVE/path (path alone when the row has no archive)."""
    archive = row.get("archive")
    return Path(archive) / row["path"] if archive else Path(row["path"])


def recorded_indices(folder: str | Path, row: dict) -> list[int] | None:
    """The frame indices the row's scan recorded (its newest row in ``folder``), or None."""
    dataset = pads.dataset(str(folder), format="parquet")
    if "frame_indices" not in dataset.schema.names:
        return None
    match = pads.field("path") == row["path"]
    if "archive" in dataset.schema.names:
        archive = row.get("archive")
        match &= pads.field("archive").is_null() if archive is None else pads.field("archive") == archive
    columns = [c for c in ("frame_indices", "scanned_at") if c in dataset.schema.names]
    found = dataset.to_table(columns=columns, filter=match).to_pylist()
    if not found:
        return None
    if "scanned_at" in columns:
        found.sort(key=lambda r: (r["scanned_at"] is not None, r["scanned_at"] or 0))
    indices = found[-1]["frame_indices"]
    return None if indices is None else [int(i) for i in indices]


def read_row_frames(folder: str | Path, row: dict, size: int = DEFAULT_FRAME_SIZE) -> tuple[Clip, bool | None]:
    """Re-read the row's file with the row's sampling and frame count: ``(clip, indices_match)``;
    ``indices_match`` is None when the row recorded no indices (or the file cannot be read).

    The clip is decoded on the CPU (PyAV, or DALI's CPU decoder for VP8/VP9/MJPEG), with the plan the
    scan used, so the indices are comparable whatever decoder the scan ran."""
    recorded = recorded_indices(folder, row)
    sampling = row.get("sampling") if row.get("sampling") in SAMPLING_MODES else "uniform"
    spec = ClipSpec(frames=len(recorded) if recorded else 20, size=size, sampling=sampling)
    (clip,) = ClipReader(spec, gpu=False).read([str(row_file(row))])
    if not clip.ok or recorded is None:
        return clip, None
    return clip, [int(i) for i in clip.indices] == recorded
