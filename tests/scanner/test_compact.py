"""`dfscan compact`: the same rows in the same read order, in fewer parts; and no row lost or read twice when
the compaction is killed after any of its steps (in a subprocess, by os._exit), whether readers look before
the next run finishes it or after."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dfscan.scanner import compact, journal, sink, verdicts
from dfscan.scanner.index import CommittedIndex
from dfscan.scanner.report import build_report
from dfscan.scanner.walk import FileEntry
from tests.scanner.conftest import REPO, child_env
from tests.scanner.rows import V1_SCHEMA, row

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
RUNS = [f"2024010{day}T000000Z-0000000{day}" for day in range(1, 6)]


def nightly_folder(out, monkeypatch) -> None:
    """Five nights of parts (the first by the previous release), 3 parts each, with rescans and
    scanned_at ties across parts (which the read order breaks), and a killed run's orphan part."""
    sink.prepare_out_dir(out)
    for night, run_id in enumerate(RUNS):
        with monkeypatch.context() as release:
            if night == 0:
                release.setattr(verdicts, "VERDICT_SCHEMA", V1_SCHEMA)
            writer = sink.PartWriter(out, run_id, commit_rows=3)
            rows = [row(f"f{(night * 4 + i) % 11}.mp4", minutes=night if i else 0, size=night, run_id=run_id,
                        status="error" if i == 2 else "ok") for i in range(9)]
            for first in range(0, 9, 3):
                writer.add(rows[first:first + 3])
            if night != 3:  # night 3's driver was killed: its parts are orphans
                sink.commit_run(out, run_id, writer.parts, "a" * 64, "tiny", {}, {}, [])


def snapshot(out) -> pa.Table:
    return verdicts.read_table(out)


def test_compaction_keeps_every_row_in_read_order(tmp_path, monkeypatch):
    out = tmp_path / "verdicts"
    nightly_folder(out, monkeypatch)
    before, newest = snapshot(out), verdicts.newest_rows(snapshot(out))
    walk = [FileEntry(f"f{i}.mp4", size, 1, 7) for i in range(11) for size in range(5)]
    decisions = CommittedIndex.build(out, "/arch", "a" * 64, retry_errors=True).needs_scan(walk)
    report = build_report(out)
    assert len(sink.committed_parts(out)) == 15 and before.num_rows == 45
    this_release = pq.read_schema(out / f"part-{RUNS[1]}-000000.parquet")  # as the sink writes a part

    result = compact.compact(out, rows_per_part=20)
    assert (result.parts_before, result.parts_after, result.rows, result.rewritten) == (15, 3, 45, 15)
    assert result.line() == f"{out}: 15 parts -> 3 (15 parts, 45 rows rewritten into 3) in {result.seconds:.1f} s"
    parts = sink.committed_parts(out)
    assert parts == result.new_parts and [pq.read_metadata(out / p).num_rows for p in parts] == [20, 20, 5]
    assert all(pq.read_schema(out / p).equals(this_release, check_metadata=True) for p in parts)
    assert snapshot(out).equals(before)  # every row, in the same order: scanned_at ties resolve alike
    assert verdicts.newest_rows(snapshot(out)).equals(newest)
    assert (CommittedIndex.build(out, "/arch", "a" * 64, retry_errors=True).needs_scan(walk) == decisions).all()
    after = build_report(out)
    assert (after.files, after.rows, after.verdicts, after.runs) == (report.files, report.rows, report.verdicts,
                                                                     report.runs)
    assert sink.orphan_parts(out) == []  # compacted parts are committed, no killed run's
    record = json.loads(journal.journal_path(out, parts[0][5:30]).read_text())
    assert record["replaces"] == [f"part-{run}-{seq:06d}.parquet" for run in RUNS for seq in range(3)]
    assert journal.journal_path(out, parts[0][5:30], ".done").exists() and not (out / "_compact" / parts[0][5:30]).exists()

    # The next nights add small parts; the next compaction keeps the large leading parts and rewrites the rest.
    time.sleep(1.1)  # a later second than the compaction's id: a run id's random half orders runs of one second
    writer = sink.PartWriter(out, sink.new_run_id(), commit_rows=2)
    writer.add([row("new.mp4", minutes=99), row("f1.mp4", minutes=99)])
    writer.add([row("f2.mp4", minutes=99)])
    writer.flush()
    before = snapshot(out)
    again = compact.compact(out, rows_per_part=20)
    assert (again.parts_before, again.parts_after, again.rewritten, again.rows) == (5, 3, 3, 8)
    assert sink.committed_parts(out)[:2] == parts[:2] and snapshot(out).equals(before)
    assert compact.compact(out, rows_per_part=20).rewritten == 0  # nothing small left after the large parts


KILLER = """
import os, sys
from pathlib import Path
from dfscan.scanner import compact
out, step = Path(sys.argv[1]), sys.argv[2]
if step == "writing":  # killed while the second new part is being written
    real = compact.atomic_file
    calls = []
    def atomic_file(*args, **kwargs):
        calls.append(args)
        if len(calls) == 2:
            os._exit(9)
        return real(*args, **kwargs)
    compact.atomic_file = atomic_file
compact.compact(out, rows_per_part=20, on_step=lambda done: os._exit(9) if done == step else None)
print("finished")
"""


@pytest.mark.parametrize("step", ["writing", *compact.STEPS])
def test_a_compaction_killed_after_any_step_loses_and_duplicates_no_row(tmp_path, monkeypatch, step):
    out = tmp_path / "verdicts"
    nightly_folder(out, monkeypatch)
    before = snapshot(out)
    proc = subprocess.run([sys.executable, "-c", KILLER, str(out), step], cwd=REPO, env=child_env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 9, proc.stderr
    committed = step not in ("writing", "staged")
    # Readers, before anything finishes the compaction: the old parts, or the journal's outcome.
    assert snapshot(out).equals(before)
    assert len(sink.committed_parts(out)) == (3 if committed else 15)
    assert sink.orphan_parts(out) == ([] if committed else [f"part-{RUNS[3]}-{seq:06d}.parquet" for seq in range(3)])
    # The next run (run_scan calls recover under the lock) finishes it, or rolls it back.
    with sink.OutDirLock(out, "the next run"):
        recovered = compact.recover(out)
    assert recovered == ([] if not committed or step == "done" else [journal.journal_ids(out)[0]])
    assert snapshot(out).equals(before)
    assert sorted(p.name for p in out.glob("part-*")) == sink.committed_parts(out)
    assert len(sink.committed_parts(out)) == (3 if committed else 15)
    assert [p.name for p in (out / "_compact").iterdir() if p.is_dir()] == []
    # And the next compaction has nothing left to finish.
    result = compact.compact(out, rows_per_part=20)
    assert result.recovered == [] and snapshot(out).equals(before)
    assert len(sink.committed_parts(out)) == 3 and sorted(p.name for p in out.glob("part-*")) == sink.committed_parts(out)
    assert [j.done for j in journal.read_journals(out)] == [True]  # one compaction committed, and finished


def test_a_compaction_waits_for_no_run(tmp_path, monkeypatch):
    out = tmp_path / "verdicts"
    nightly_folder(out, monkeypatch)
    with sink.OutDirLock(out, "a-running-scan"):
        with pytest.raises(sink.OutDirLocked, match="a-running-scan"):
            compact.compact(out)
    assert len(sink.committed_parts(out)) == 15


def test_parts_of_a_newer_release_are_not_compacted(tmp_path, monkeypatch):
    out = tmp_path / "verdicts"
    nightly_folder(out, monkeypatch)
    newer = pa.schema(list(verdicts.VERDICT_SCHEMA) + [pa.field("next_column", pa.string())],
                      metadata={verdicts.VERSION_KEY: str(verdicts.SCHEMA_VERSION + 1)})
    pq.write_table(pa.Table.from_pylist([row("x.mp4")], schema=newer), out / f"part-{RUNS[-1]}-000009.parquet")
    with pytest.raises(compact.CompactError, match="newer dfscan"):
        compact.compact(out)
    assert len(sink.committed_parts(out)) == 16


def test_an_unreadable_part_fails_the_compaction_in_one_line(tmp_path, monkeypatch):
    out = tmp_path / "verdicts"
    nightly_folder(out, monkeypatch)
    (out / f"part-{RUNS[2]}-000001.parquet").write_bytes(b"PAR1 not parquet PAR1")
    with pytest.raises(compact.CompactError, match="cannot compact .*; the committed rows are as they were"):
        compact.compact(out)
    assert len(sink.committed_parts(out)) == 15 and list((out / "_compact").iterdir()) == []


def test_an_unreadable_journal_stops_readers(tmp_path, monkeypatch):
    out = tmp_path / "verdicts"
    nightly_folder(out, monkeypatch)
    (out / "_compact").mkdir()
    (out / "_compact" / f"{RUNS[-1]}.json").write_text("{not json")
    with pytest.raises(journal.JournalError, match="cannot read the compaction journal"):
        verdicts.read_table(out)


def test_cli_compact(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from dfscan.cli import app

    out = tmp_path / "verdicts"
    nightly_folder(out, monkeypatch)
    result = CliRunner().invoke(app, ["compact", str(out)])
    assert result.exit_code == 0 and result.output.startswith(f"{out}: 15 parts -> 1 (15 parts, 45 rows")
    assert CliRunner().invoke(app, ["compact", str(out)]).output.strip() == f"{out}: 1 part, nothing to compact"
    missing = CliRunner().invoke(app, ["compact", str(tmp_path / "nowhere")])
    assert missing.exit_code == 2 and "no verdicts at" in missing.output
    bad = CliRunner().invoke(app, ["compact", str(out), "--rows-per-part", "0"])
    assert bad.exit_code == 2 and "rows per part must be 1 or more" in bad.output
    bad = CliRunner().invoke(app, ["run", str(tmp_path), "--model", "m.keras", "--out", str(out), "--compact-after", "0"])
    assert bad.exit_code == 2 and "--compact-after must be 1 or more parts, got 0" in bad.output
