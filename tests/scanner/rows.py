"""Verdict rows made by hand for the sink, index, report, compaction and quarantine tests, and a folder
holding parts of two schema versions."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa

from dfscan.scanner import sink, verdicts

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)


def row(path, minutes=0, status="ok", size=10, sha="a" * 64, **extra):
    base = dict(path=path, archive="/arch", size=size, mtime_ns=1, inode=7, status=status,
                error_class=None if status == "ok" else "DECODE_ERROR", p_fake=0.25 if status == "ok" else None,
                verdict="real" if status == "ok" else None, threshold=0.5, frame_indices=[0, 3, 5],
                model_sha256=sha, run_id="r1", scanned_at=T0 + dt.timedelta(minutes=minutes), worker="h/cpu")
    base.update(extra)
    return base


# The previous release (version 1), as the folders a nightly cron filled with it hold it: the schema is
# only ever appended to, so version 1 is this schema's first 25 columns.
V1_SCHEMA = pa.schema(list(verdicts.VERDICT_SCHEMA)[:25], metadata={verdicts.VERSION_KEY: "1"})


def write_two_versions(out, monkeypatch):
    """Version 1 (an earlier release) scans a, b, c; then this release rescans a and scans d."""
    sink.prepare_out_dir(out)
    with monkeypatch.context() as previous_release:
        previous_release.setattr(verdicts, "VERDICT_SCHEMA", V1_SCHEMA)
        previous_release.setattr(verdicts, "SCHEMA_VERSION", 1)
        old = sink.PartWriter(out, "20240101T000000Z-0ld0")
        old.add([row("a.mp4", minutes=0), row("b.mp4", minutes=0, status="error"), row("c.mp4", minutes=0)])
        old.flush()
        sink.commit_run(out, old.run_id, old.parts, "a" * 64, "tiny", {}, {}, [])
    new = sink.PartWriter(out, "20240201T000000Z-9e90")
    new.add([row("a.mp4", minutes=60, p_fake=0.9, verdict="fake", rotation=90), row("d.mp4", minutes=60, rotation=0)])
    new.flush()
    sink.commit_run(out, new.run_id, new.parts, "a" * 64, "tiny", {}, {}, [])
