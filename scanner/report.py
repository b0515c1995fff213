"""`dfscan report OUT_DIR`: what the committed verdicts say, from the newest row of each file."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from dfscan.kernels.atomic import atomic_write_bytes
from dfscan.kernels.verdict_rule import CONCLUSIONS
from dfscan.kernels.csv_text import csv_text
from dfscan.kernels.scope import scope_from_dict
from dfscan.kernels.trust import explain_p_fake
from dfscan.scanner import quarantine, sink, verdicts
from dfscan.scanner.alarms import table_alarms

# Left out of the per-file export: an inode number means nothing off the host that scanned the file, and
# a name's raw bytes are no CSV or JSON text (the export's path shows them escaped).
NOT_EXPORTED = ("inode", "path_bytes")


def export_columns() -> list[str]:
    """Columns of the per-file CSV/JSON export: the row's, in schema order (frame indices become
    "0 5 9 ...")."""
    return [name for name in verdicts.VERDICT_SCHEMA.names if name not in NOT_EXPORTED]


@dataclasses.dataclass
class Report:
    out: str
    files: int  # distinct (archive, path)
    rows: int  # every committed row, history included
    runs: list[str]  # completed runs, oldest first
    incomplete_runs: list[str]  # runs with committed parts but no manifest (killed drivers)
    verdicts: dict[str, int]  # newest row per file: real / fake / error
    error_classes: dict[str, int]  # newest row per file
    fallbacks: dict[str, int]  # newest row per file: read by PyAV after this decoder failed it
    schema_version: int
    newest: pa.Table = dataclasses.field(repr=False)  # one row per file
    # The models behind the newest rows, with what their cards say of their quality (kernels.trust),
    # as the completed runs' manifests recorded it: {"model_sha256", "model_name", "files", "trust"}
    models: list[dict] = dataclasses.field(default_factory=list)
    # What the newest rows of each model, taken together, say about it (scanner.alarms): Alarm.as_dict()
    # plus "model_name" and "model_sha256"
    alarms: list[dict] = dataclasses.field(default_factory=list)
    # Committed parts that cannot be read, left out of every count here: {"name", "reason"}; and the parts
    # runs moved to OUT_DIR/_quarantine/ (scanner.quarantine.quarantined).
    damaged_parts: list[dict] = dataclasses.field(default_factory=list)
    quarantined: list[dict] = dataclasses.field(default_factory=list)

    def as_dict(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "newest"}
        return out


def build_report(out: str | Path, archive: str | None = None) -> Report:
    """Summarise OUT_DIR (optionally one archive of it)."""
    out = Path(out)
    if not out.is_dir():
        raise FileNotFoundError(f"no verdicts at {out}")
    read = verdicts.read_parts(out, filter=verdicts.archive_filter(archive))  # around damaged parts; moves nothing
    table = read.table
    newest = verdicts.newest_rows(table)
    counts = verdicts.count(newest)
    done = sink.completed_runs(out)
    runs = sorted(done)
    incomplete = sorted({sink.part_run_id(name) for name in sink.orphan_parts(out)})
    models = models_of(out, newest)
    return Report(out=str(out), files=newest.num_rows, rows=table.num_rows, runs=runs, incomplete_runs=incomplete,
                  verdicts=counts.outcomes, error_classes=counts.error_classes, fallbacks=counts.fallbacks,
                  schema_version=verdicts.SCHEMA_VERSION, newest=newest, models=models,
                  alarms=model_alarms(newest, models), damaged_parts=[dataclasses.asdict(part) for part in read.damaged],
                  quarantined=quarantine.quarantined(out))


def model_alarms(newest: pa.Table, models: list[dict]) -> list[dict]:
    """The alarms of each model's newest rows (``models_of``' records), judged with the scope its run's
    manifest recorded (none for older runs: then only the alarms that need no scope)."""
    alarms = []
    for model in models:
        rows = newest.filter(pc.equal(newest["model_sha256"], model["model_sha256"])) if model["model_sha256"] \
            else newest.filter(pc.is_null(newest["model_sha256"]))
        scope = scope_from_dict((model["trust"] or {}).get("scope"))
        alarms += [{**alarm.as_dict(), "model_name": model["model_name"], "model_sha256": model["model_sha256"]}
                   for alarm in table_alarms(rows, scope)]
    return alarms


def models_of(out: Path, newest: pa.Table) -> list[dict]:
    """Each model behind the newest rows (most files first), with its card's trust from the newest
    manifest that recorded it; None for runs of a dfscan that did not record it."""
    if newest.num_rows == 0:
        return []
    trust_of = {}
    for manifest in sink.read_manifests(out).values():  # oldest first: the newest record wins
        if _is_trust(manifest.get("model_trust")) and isinstance(manifest.get("model_sha256"), str):
            trust_of[manifest["model_sha256"]] = manifest["model_trust"]
    files = pa.table({"sha": newest["model_sha256"], "name": newest["model_name"]}).group_by(["sha", "name"]) \
        .aggregate([("sha", "count")]).to_pylist()
    return [{"model_sha256": f["sha"], "model_name": f["name"], "files": f["sha_count"], "trust": trust_of.get(f["sha"])}
            for f in sorted(files, key=lambda f: (-f["sha_count"], f["name"] or ""))]


def _is_trust(trust) -> bool:
    """Whether a manifest's model_trust has the shape format_report reads (a damaged manifest may not)."""
    return (isinstance(trust, dict) and isinstance(trust.get("summary"), str)
            and isinstance(trust.get("warnings"), list)
            and all(isinstance(trust.get(k), (int, float)) and not isinstance(trust.get(k), bool)
                    for k in ("threshold", "inconclusive_band")))


def _export_rows(newest: pa.Table) -> list[dict]:
    rows = []
    for row in newest.select(export_columns()).to_pylist():
        for name, value in row.items():  # frame indices, a face box: "0 3 5" in a CSV cell
            if isinstance(value, list):
                row[name] = " ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in value)
        if row["scanned_at"] is not None:
            row["scanned_at"] = row["scanned_at"].isoformat()
        rows.append(row)
    return rows


def write_report(report: Report, dest: str | Path, fmt: str | None = None) -> Path:
    """The newest verdict per file as CSV (one row per file) or JSON (summary plus files).
    ``fmt`` defaults to the destination's extension. Written atomically; a failed write is a ValueError
    of one line (the CLI's usage error: choose another destination)."""
    dest = Path(dest)
    if dest.resolve().is_relative_to(Path(report.out).resolve()):  # the dataset would read it as Parquet
        raise ValueError(f"write the report outside the verdict dataset {report.out}")
    fmt = (fmt or dest.suffix.lstrip(".") or "csv").lower()
    rows = _export_rows(report.newest)
    if fmt == "json":
        data = (json.dumps({**report.as_dict(), "newest": rows}, indent=1, default=str) + "\n").encode()
    elif fmt == "csv":
        data = csv_text(export_columns(), rows).encode()  # formula-like cells neutralised (kernels.csv_text)
    else:
        raise ValueError(f"unknown report format {fmt!r}; expected csv or json")
    try:  # a new file renamed into place: a link planted at ``dest`` is replaced, its target never written
        dest.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(dest, data)
    except OSError as exc:
        raise ValueError(f"cannot write {dest}: {exc.strerror or exc}") from None
    return dest


def format_report(report: Report) -> str:
    """The plain-text summary `dfscan report` prints."""
    lines = [f"dfscan: alarm: {alarm['message']} (model {alarm['model_name']})" for alarm in report.alarms]
    lines += [f"verdicts in {report.out} (schema v{report.schema_version})",
             f"  files: {report.files}   rows: {report.rows}   completed runs: {len(report.runs)}"
             + (f"   incomplete runs: {len(report.incomplete_runs)}" if report.incomplete_runs else ""),
             "  newest verdict per file: " + (", ".join(f"{k} {report.verdicts.get(k, 0)}" for k in (
                 *CONCLUSIONS, *sorted(set(report.verdicts) - {*CONCLUSIONS, "error"}, key=str), "error"))
                 if report.files else "none")]
    if report.error_classes:
        lines.append("  errors by class: " + ", ".join(f"{k} {v}" for k, v in report.error_classes.items()))
    if report.fallbacks:
        lines.append("  read by PyAV after their decoder failed them: "
                     + ", ".join(f"{k} {v}" for k, v in report.fallbacks.items()) + " (fallback_reason says why)")
    if report.runs:
        lines.append(f"  last completed run: {report.runs[-1]}")
    explained = set()
    for model in report.models:
        name, sha, trust = model["model_name"] or "(no model)", (model["model_sha256"] or "")[:12], model["trust"]
        lines.append(f"  model {name} ({sha}): {model['files']} files; "
                     + (trust["summary"] if trust else "its card was not recorded by the run that used it"))
        if trust:
            lines.extend(f"    warning: {warning}" for warning in trust["warnings"])
            scope = scope_from_dict(trust.get("scope"))
            if scope is not None:
                lines.append(f"    scope: {scope.describe()}")
            explained.add((trust["threshold"], trust["inconclusive_band"]))
    lines.extend(f"  {explain_p_fake(threshold, band)}" for threshold, band in sorted(explained))
    lines.extend(quarantine.summary_lines([verdicts.DamagedPart(**part) for part in report.damaged_parts],
                                          report.quarantined))
    return "\n".join(lines)
