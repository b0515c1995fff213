"""The verdict row: one row per file scanned in a run, defined here once.

This module owns everything that knows the row's columns: the schema and its version, how a row is
made (a worker's row from a clip and a probability, the driver's row for a file no worker could
finish, the driver's stamp of file identity and provenance), the verdict rule, how a folder of parts
of several schema versions is read, the newest row per file, and the counts that `dfscan report` and
the web app show. The sink writes rows, the report and the app read them; none of them lists columns.

Schema evolution. A verdicts folder that a nightly cron fills for months holds parts of every release
that wrote to it. So a new version only ever *appends* nullable columns: a column is never renamed,
retyped or dropped (a new meaning is a new column), and positional readers (DuckDB without
``union_by_name``) keep lining up the columns that both versions have. Every read goes through
``open_dataset``, which hands pyarrow the current schema explicitly: pyarrow's dataset discovery would
otherwise take the first file's schema, and the columns of every other version would vanish. With the
schema given, a column that an older part lacks reads as null, and a column that a newer release added
is dropped, so an older release still reads a folder that a newer one has written to.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import os
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from dfscan.kernels.verdict_rule import UNTESTED, conclusion
from dfscan.scanner import journal

if TYPE_CHECKING:  # only attributes are read: the driver, which builds no clip, never imports decoders
    from dfscan.kernels.clips import Clip
    from dfscan.kernels.errors import ErrorClass

# Bumped with every change of VERDICT_SCHEMA; kept in each part's Parquet metadata and in each run's
# manifest, so a reader can tell which release wrote a part.
SCHEMA_VERSION = 6  # 2: path_bytes, rotation, display_width, display_height, frames_replaced
#                    3: conclusion, inconclusive_band
#                    4: crop, face_found, face_frames, face_box
#                    5: fallback_from, fallback_reason
#                    6: untested_reason (and "untested", a new value of conclusion)
VERSION_KEY = "dfscan.schema_version"

# The row. New columns go at the end (see the module docstring).
VERDICT_SCHEMA = pa.schema(
    [
        # the file
        ("path", pa.string()),  # relative to archive
        ("archive", pa.string()),
        ("size", pa.int64()),
        ("mtime_ns", pa.int64()),
        ("inode", pa.int64()),
        # the outcome
        ("status", pa.string()),  # "ok" | "error"
        ("error_class", pa.string()),  # kernels.errors.ErrorClass value, null when ok
        ("error_message", pa.string()),
        ("p_fake", pa.float32()),  # null on error
        ("verdict", pa.string()),  # "real" | "fake", null on error
        ("threshold", pa.float32()),
        # what was read
        ("frame_indices", pa.list_(pa.int32())),
        ("codec", pa.string()),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("frame_count", pa.int64()),
        ("fps", pa.float64()),
        ("duration_s", pa.float64()),
        ("decoder", pa.string()),
        ("sampling", pa.string()),
        # provenance
        ("model_name", pa.string()),
        ("model_sha256", pa.string()),
        ("run_id", pa.string()),
        ("scanned_at", pa.timestamp("us", tz="UTC")),
        ("worker", pa.string()),  # host:node/gpuN or host:node/cpu, or "driver" (DRIVER_WORKER)
        # version 2
        ("path_bytes", pa.binary()),  # the name as the file system has it; `path` escapes bytes that are not UTF-8
        ("rotation", pa.int16()),  # display rotation, degrees counter-clockwise; frames were read upright
        ("display_width", pa.int32()),
        ("display_height", pa.int32()),
        ("frames_replaced", pa.int16()),  # of the sampled frames, those a damaged file never gave
        # version 3
        ("conclusion", pa.string()),  # "real" | "fake" | "inconclusive" (p_fake within the band) | "untested"
        #                               (version 6: outside the model's scope, kernels.scope): what to read
        ("inconclusive_band", pa.float32()),  # the card's band around the threshold
        # version 4
        ("crop", pa.string()),  # what the model saw: "frame" (whole frames) or "face" (face crops)
        ("face_found", pa.bool_()),  # face-crop models only: false means it fell back to whole frames
        ("face_frames", pa.int16()),  # of the frames the detector saw, those with the tracked face
        ("face_box", pa.list_(pa.float32())),  # median face box (x, y, w, h), fractions of the displayed frame
        # version 5
        ("fallback_from", pa.string()),  # the decoder that failed the file before `decoder` read it (GPU -> pyav)
        ("fallback_reason", pa.string()),  # that decoder's error, "DECODE_ERROR: DALI: ..."
        # version 6
        ("untested_reason", pa.string()),  # why the conclusion is "untested" (kernels.scope), null otherwise
    ],
    metadata={VERSION_KEY: str(SCHEMA_VERSION)},
)

STATUSES = ("ok", "error")
DRIVER_WORKER = "driver"  # the worker column of a row that the driver wrote itself
DRIVER_MESSAGE_CHARS = 500  # a driver row quotes a worker's last error, which may be a long traceback


# --- the outcome -----------------------------------------------------------------------------------
def ok_outcome(p_fake: float, threshold: float, band: float, untested_reason: str | None = None) -> dict:
    """The outcome columns of a file a model gave a probability: the threshold's call (``verdict``)
    and what a person should read (``conclusion``: inconclusive within ``band`` of the threshold, and
    ``untested`` whatever p_fake says when the clip lies outside the model's scope, with the reason:
    ``kernels.scope.ScopeRule.untested_reason``)."""
    p_fake = float(p_fake)
    said = UNTESTED if untested_reason else conclusion(p_fake, threshold, band)
    return {"status": "ok", "error_class": None, "error_message": None, "p_fake": p_fake,
            "verdict": conclusion(p_fake, threshold, 0.0), "conclusion": said,
            "inconclusive_band": band, "untested_reason": untested_reason or None}


def error_outcome(error_class: ErrorClass | str, message: str) -> dict:
    """The outcome columns of a refused file: no probability, no verdict."""
    return {"status": "error", "error_class": getattr(error_class, "value", error_class), "error_message": message,
            "p_fake": None, "verdict": None, "conclusion": None}


# --- making rows -----------------------------------------------------------------------------------
def clip_row(path: str, clip: Clip, p_fake: float | None, *, threshold: float, band: float, sampling: str,
             worker: str, untested_reason: str | None = None) -> dict:
    """A worker's row for one clip: what was read, and the outcome (``p_fake`` is read only when the
    clip is ok; ``untested_reason``: why the clip lies outside the model's scope). The driver adds the
    file's identity and provenance with ``stamp``."""
    probe = clip.probe
    row = {
        "path": path,
        "threshold": threshold,
        "frame_indices": None if clip.indices is None else [int(x) for x in clip.indices],
        "codec": probe.codec if probe else None,
        "width": probe.width if probe else None,
        "height": probe.height if probe else None,
        "frame_count": probe.frame_count if probe else None,
        "fps": probe.fps if probe else None,
        "duration_s": probe.duration_s if probe else None,
        "decoder": clip.decoder,
        "sampling": sampling,
        "worker": worker,
        "rotation": probe.rotation if probe else None,
        "display_width": probe.display_width if probe else None,
        "display_height": probe.display_height if probe else None,
        "frames_replaced": clip.frames_replaced if clip.ok else None,
        "crop": clip.crop,
        **face_columns(clip.faces),
        "fallback_from": clip.fallback_from,
        "fallback_reason": clip.fallback_reason,
    }
    if clip.ok:
        row.update(ok_outcome(p_fake, threshold, band, untested_reason))
    else:
        row.update(error_outcome(clip.error.error_class, clip.error.message))
    return row


def face_columns(track) -> dict:
    """The face columns of a clip read with face crops (a ``kernels.faces.FaceTrack``); null otherwise."""
    if track is None:
        return {"face_found": None, "face_frames": None, "face_box": None}
    box = track.median_box
    return {"face_found": track.found, "face_frames": track.face_frames, "face_box": None if box is None else list(box)}


def driver_row(path: str, error_class: ErrorClass | str, message: str, *, sampling: str) -> dict:
    """The row the driver writes for a file that no worker could finish (DECODER_CRASH, TIMEOUT):
    nothing was read and no model ran, so only the outcome."""
    return {"path": path, **error_outcome(error_class, message[:DRIVER_MESSAGE_CHARS]), "threshold": None,
            "sampling": sampling, "worker": DRIVER_WORKER}


def stamp(row: dict, *, archive: str, size: int, mtime_ns: int, inode: int, model_name: str, model_sha256: str,
          run_id: str, scanned_at: dt.datetime) -> dict:
    """Complete a worker's (or the driver's) row in place: the file as the walk saw it, and the run and
    model that produced the row. Returns the row."""
    row.update(archive=archive, size=size, mtime_ns=mtime_ns, inode=inode, model_name=model_name,
               model_sha256=model_sha256, run_id=run_id, scanned_at=scanned_at)
    row["path_bytes"] = os.fsencode(row["path"])
    row["path"] = display_path(row["path"])
    return row


def display_path(path: str) -> str:
    """A walk's path as text a person, Parquet and a browser can hold. Linux names are bytes: a name that
    is not UTF-8 reaches Python with surrogate escapes, which no UTF-8 writer takes; its stray bytes
    are shown as \\xNN here, and ``path_bytes`` keeps the name exactly."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def rows_to_table(rows: list[dict]) -> pa.Table:
    """Rows (dicts keyed by column name; missing keys are null) to a table of the current schema."""
    schema = VERDICT_SCHEMA  # read at call time: tests stand in the next release's schema
    columns = {name: [row.get(name) for row in rows] for name in schema.names}
    return pa.Table.from_pydict(columns, schema=schema)


# --- reading ---------------------------------------------------------------------------------------
def part_files(folder: str | Path) -> list[Path]:
    """dfscan's own committed parts in ``folder``: regular files named ``part-*.parquet`` at its top
    level. Nothing else there is ever read: a cron's ``>> /verdicts/dfscan.log``, a user's files, a
    subfolder, a link planted to point elsewhere, half-written parts (hidden names), manifests, locks.
    While a compaction is unfinished (scanner.journal), its outcome is read: the parts it adds, some
    perhaps still in ``_compact/``, and none of the parts it replaces."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    parts = sorted(path for path in folder.glob("part-*.parquet") if path.is_file() and not path.is_symlink())
    return journal.visible_parts(folder, parts)  # an unfinished `dfscan compact` read as finished


def open_dataset(folder: str | Path, parts: list[Path] | None = None) -> pads.Dataset:
    """Every committed part in ``folder`` (or the given ``parts``), whichever schema version wrote it,
    read as the current schema (see the module docstring); no parts read as zero rows. A damaged part
    fails the read: ``read_parts`` reads around it."""
    parts = part_files(folder) if parts is None else parts
    if not parts:
        return pads.dataset(VERDICT_SCHEMA.empty_table())
    return pads.dataset([str(path) for path in parts], format="parquet", schema=VERDICT_SCHEMA)


@dataclasses.dataclass(frozen=True)
class DamagedPart:
    """A committed part that cannot be read (cut off, bit rot, no permission): its name and why."""

    name: str
    reason: str  # one line, what pyarrow or the OS said


@dataclasses.dataclass
class PartsRead:
    table: pa.Table  # the rows of every readable part, in part order
    damaged: list[DamagedPart]  # the parts left out
    readable: list[Path]  # the parts read


DAMAGE = (pa.ArrowException, OSError)  # what reading a damaged or unreadable part raises


def damage_reason(exc: BaseException) -> str:
    """One line, at most 300 characters, of why a part could not be read."""
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:300]


def read_parts(folder: str | Path, columns: list[str] | None = None, filter=None,  # noqa: A002 - pyarrow's name
               parts: list[Path] | None = None) -> PartsRead:
    """The rows of ``folder``'s committed parts that can be read; a part that cannot is left out and
    named in ``damaged``, so one rotten file never hides the others. Reads nothing but the parts, and
    moves nothing: readers may run read-only (``scanner.quarantine`` moves damaged parts, under the
    run's lock). Every part is read at once when all are sound, one by one to find the damaged ones."""
    parts = part_files(folder) if parts is None else parts
    try:
        return PartsRead(open_dataset(folder, parts).to_table(columns=columns, filter=filter), [], list(parts))
    except DAMAGE:
        pass
    tables, damaged, readable = [], [], []
    for part in parts:
        try:
            tables.append(open_dataset(folder, [part]).to_table(columns=columns, filter=filter))
            readable.append(part)
        except DAMAGE as exc:
            damaged.append(DamagedPart(part.name, damage_reason(exc)))
    table = pa.concat_tables(tables) if tables else open_dataset(folder, []).to_table(columns=columns, filter=filter)
    return PartsRead(table, damaged, readable)


def damaged_parts(folder: str | Path) -> list[DamagedPart]:
    """The committed parts of which any column cannot be read, each part read whole on its own (what
    the run checks before it trusts the dataset; memory holds one part at a time)."""
    damaged = []
    for part in part_files(folder):
        try:
            open_dataset(folder, [part]).to_table()
        except DAMAGE as exc:
            damaged.append(DamagedPart(part.name, damage_reason(exc)))
    return damaged


def archive_filter(archive: str | None):
    """The rows of one archive, or all rows (None)."""
    return (pads.field("archive") == archive) if archive is not None else None


def read_table(folder: str | Path, columns: list[str] | None = None, archive: str | None = None) -> pa.Table:
    """The rows in ``folder`` (all of them, history included), optionally of one archive only; rows of
    damaged parts left out (``read_parts`` names them)."""
    return read_parts(folder, columns, archive_filter(archive)).table


def read_batches(parts: list[Path], columns: list[str] | None = None, archive: str | None = None,
                 batch_size: int = 16384) -> Iterator[pa.RecordBatch]:
    """The rows of ``parts`` (``part_files``' list) as ``read_table`` reads them (the current schema's columns;
    one that an older part lacks is null), in read order, one part and one batch at a time. Memory stays
    flat however large the parts: pyarrow.dataset decodes whole row groups ahead (about 110 MB more for a
    part of 1,000,000 rows)."""
    schema = VERDICT_SCHEMA
    wanted = pa.schema([schema.field(name) for name in columns], metadata=schema.metadata) if columns else schema
    for path in parts:
        part = pq.ParquetFile(path)
        present = set(part.schema_arrow.names)
        if archive is not None and "archive" not in present:
            continue  # a null archive is no archive's
        read = [name for name in wanted.names if name in present]
        if archive is not None and "archive" not in read:
            read.append("archive")
        for batch in part.iter_batches(batch_size=batch_size, columns=read, use_threads=False):
            if archive is not None:
                batch = batch.filter(pc.fill_null(pc.equal(batch["archive"], archive), False))
            yield pa.RecordBatch.from_arrays(
                [batch[f.name].cast(f.type) if f.name in present else pa.nulls(batch.num_rows, f.type) for f in wanted],
                schema=wanted)


def newest_rows(table: pa.Table) -> pa.Table:
    """The newest row of each file, the file's current verdict, sorted by (archive, path).

    A file is its (archive, path); a null archive counts as "". Newest is the latest ``scanned_at``; a
    row without one is older than any row with one, and of rows scanned at the same instant the last
    read wins (parts are named by run id, which sorts by start time). ``table`` needs the archive, path
    and scanned_at columns (read them as null where they are absent)."""
    if table.num_rows == 0:
        return table
    archive = pc.fill_null(table["archive"], "")
    # A file is its name's bytes where the row has them (version 2): the escaped `path` of the byte
    # 0xff and a name spelled with a literal "\xff" read alike, and must not count as one file.
    name = table["path"].cast(pa.binary())
    if "path_bytes" in table.column_names:
        name = pc.coalesce(table["path_bytes"], name)
    when = pc.fill_null(table["scanned_at"].cast(pa.int64()), pa.scalar(-(2 ** 63), pa.int64()))
    # Rows from oldest to newest; the read position breaks ties, so no sort stability is assumed.
    read = pa.array(range(table.num_rows), pa.int64())
    by_age = pc.sort_indices(pa.table({"when": when, "read": read}),
                             sort_keys=[("when", "ascending"), ("read", "ascending")])
    aged = pa.table({"archive": archive.take(by_age), "name": name.take(by_age),
                     "age": pa.array(range(table.num_rows), pa.int64())})
    newest_age = aged.group_by(["archive", "name"]).aggregate([("age", "max")])["age_max"]
    rows = by_age.take(newest_age.combine_chunks())
    order = pc.sort_indices(pa.table({"archive": archive.take(rows), "path": table["path"].take(rows)}),
                            sort_keys=[("archive", "ascending"), ("path", "ascending")])
    return table.take(rows.take(order))


# --- counting --------------------------------------------------------------------------------------
def _sorted_counts(counts: collections.Counter) -> dict:
    return dict(sorted(counts.items(), key=lambda item: (item[0] is None, item[0] or "")))


@dataclasses.dataclass(frozen=True)
class Counts:
    """What the newest rows say, file by file (each file counts once)."""

    files: int
    # "real" / "fake" / "inconclusive" / "untested" (the conclusion of an ok row; the verdict of a row
    # older than version 3) or "error"; those present
    outcomes: dict[str | None, int]
    error_classes: dict[str | None, int]  # refused files by error class; None where a row names none
    # Files a decoder failed before PyAV read them, by that decoder (version 5): many means a GPU decoder
    # is failing and the scan ran on CPUs; `fallback_reason` in their rows says why.
    fallbacks: dict[str, int] = dataclasses.field(default_factory=dict)

    def of(self, outcome: str) -> int:
        return self.outcomes.get(outcome, 0)


def count(newest: pa.Table) -> Counts:
    """Count the rows of ``newest_rows`` (needs status, verdict, conclusion and error_class). A row
    whose status is not "ok" is an error, whatever else it says."""
    if newest.num_rows == 0:
        return Counts(files=0, outcomes={}, error_classes={})
    ok = pc.fill_null(pc.equal(newest["status"], "ok"), False)
    said = newest["verdict"]
    if "conclusion" in newest.column_names:
        said = pc.coalesce(newest["conclusion"], said)
    outcome = pc.if_else(ok, said, pa.scalar("error"))
    outcomes = collections.Counter({v["values"]: v["counts"] for v in pc.value_counts(outcome).to_pylist()})
    classes = pc.value_counts(newest["error_class"].filter(pc.invert(ok))).to_pylist()
    error_classes = collections.Counter({v["values"]: v["counts"] for v in classes})
    fallbacks = collections.Counter()
    if "fallback_from" in newest.column_names:
        fell_back = newest["fallback_from"].drop_null()
        fallbacks.update({v["values"]: v["counts"] for v in pc.value_counts(fell_back).to_pylist()})
    return Counts(files=newest.num_rows, outcomes=_sorted_counts(outcomes), error_classes=_sorted_counts(error_classes),
                  fallbacks=_sorted_counts(fallbacks))
