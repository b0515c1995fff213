"""Generated test data of the web app tests: the tiny models' settings, and a small verdicts folder as
`dfscan run` writes it (Parquet parts of VERDICT_SCHEMA rows, history rows that a newer row replaces,
and hidden files that readers must skip)."""

from __future__ import annotations

import datetime
from pathlib import Path

import pyarrow.parquet as pq

from dfscan.scanner.verdicts import rows_to_table
from tests.media import write_index_video

# (name, frames, sampling, threshold): two clip shapes, so the app decodes the upload twice. Untrained,
# both say p_fake ~ 0.5, so the thresholds make one verdict "fake" and the other "real".
TINY_MODELS = (("tiny-a", 4, "uniform", 0.25), ("tiny-b", 6, "keyframe", 0.75))
TINY_SIZE = 32
NIGHT = datetime.datetime(2026, 3, 1, 2, 0, tzinfo=datetime.timezone.utc)
UNIFORM_4_OF_30 = [0, 10, 19, 29]  # plan_indices("uniform", 30, ..., 4)


def verdict_row(archive: Path, path: str, status: str, p_fake: float | None = None, error_class: str | None = None,
         hours: int = 0) -> dict:
    ok = status == "ok"
    return {"path": path, "archive": str(archive), "size": 3000, "mtime_ns": 1, "inode": 1, "status": status,
            "error_class": None if ok else error_class, "error_message": None if ok else f"{error_class} in test",
            "p_fake": p_fake, "verdict": (("fake" if p_fake >= 0.5 else "real") if ok else None), "threshold": 0.5,
            "frame_indices": UNIFORM_4_OF_30 if ok else None, "codec": "h264", "width": 128, "height": 96,
            "frame_count": 30, "fps": 25.0, "duration_s": 1.2, "decoder": "pyav", "sampling": "uniform",
            "model_name": "tiny-a", "model_sha256": "ab" * 32, "run_id": f"run{hours}",
            "scanned_at": NIGHT + datetime.timedelta(hours=hours), "worker": "host/cpu"}


def write_verdicts(out: Path, archive: Path) -> dict:
    """Six files (1 real, 3 fake, NOT_VIDEO, DECODE_ERROR) in eight rows; two real videos in ``archive``."""
    for name in ("keep/real.mp4", "keep/fake.mp4"):
        (archive / name).parent.mkdir(parents=True, exist_ok=True)
        write_index_video(archive / name, 30, "h264")
    old = [verdict_row(archive, "keep/real.mp4", "ok", 0.8, hours=-24),  # replaced by the newer "real"
           verdict_row(archive, "bad/decode.mkv", "ok", 0.3, hours=-24)]  # replaced by the newer error
    new = [verdict_row(archive, "keep/real.mp4", "ok", 0.12), verdict_row(archive, "keep/fake.mp4", "ok", 0.91),
           verdict_row(archive, "other/f2.mp4", "ok", 0.66), verdict_row(archive, "other/f3.mp4", "ok", 0.93),
           verdict_row(archive, "bad/notvideo.mp4", "error", error_class="NOT_VIDEO"),
           verdict_row(archive, "bad/decode.mkv", "error", error_class="DECODE_ERROR")]
    out.mkdir(parents=True)
    pq.write_table(rows_to_table(new[3:] + old), out / "part-run-1-000000.parquet")
    pq.write_table(rows_to_table(new[:3]), out / "part-run-2-000000.parquet")
    (out / ".part-run-3-000000.parquet.tmp").write_bytes(b"half-written")
    (out / "_runs").mkdir()
    (out / "_runs" / "run-1.json").write_text("{}")
    (out / "_SUCCESS").write_text("")
    return {"rows": len(old) + len(new), "files": len(new)}

