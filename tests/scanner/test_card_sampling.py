"""`dfscan run` reads clips the way the model card says, unless told otherwise, and each row records
the sampling it used; the driver refuses a card that does not say which output is p(fake)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dfscan.cli import app
from dfscan.scanner.run import UsageError, run_scan
from tests.scanner.conftest import make_videos, rows_by_path, scan_config

runner = CliRunner()
# 30 frames with a keyframe every 12 (tests.media): F=4 plans that differ
KEYFRAME_PLAN, UNIFORM_PLAN = [0, 1, 12, 24], [0, 10, 19, 29]


def _with_card(model: Path, run_dir: Path, **changes) -> Path:
    """The tiny model's file beside a card that differs in ``changes`` (the sha256 still matches)."""
    run_dir.mkdir()
    (run_dir / "model.keras").write_bytes(model.read_bytes())
    card = json.loads(model.with_suffix(".json").read_text())
    (run_dir / "model.json").write_text(json.dumps({**card, **changes}))
    return run_dir / "model.keras"


def _run(archive: Path, model: Path, out: Path, *extra: str) -> list[dict]:
    """The rows one `dfscan run` wrote."""
    result = runner.invoke(app, ["run", str(archive), "--model", str(model), "--out", str(out), "--gpus", "0",
                                 "--workers", "1", "--full", "--json", *extra])
    assert result.exit_code == 0, result.output
    run_id = json.loads(result.stdout.strip().splitlines()[-1])["run_id"]
    return [row for rows in rows_by_path(out).values() for row in rows if row["run_id"] == run_id]


@pytest.mark.usefixtures("ray_cluster")
def test_run_samples_as_the_card_says_unless_told(tmp_path, tiny_model):
    model = _with_card(tiny_model, tmp_path / "keyframe-model", sampling="keyframe")
    archive = tmp_path / "archive"
    make_videos(archive, ["a.mp4", "b/c.mp4"], frames=30)
    out = tmp_path / "verdicts"

    rows = _run(archive, model, out)  # no --sampling: the card's
    assert sorted(row["path"] for row in rows) == ["a.mp4", "b/c.mp4"]
    assert all(row["status"] == "ok" and row["sampling"] == "keyframe" and row["frame_indices"] == KEYFRAME_PLAN
               for row in rows), rows

    rows = _run(archive, model, out, "--sampling", "uniform")  # an explicit --sampling still wins
    assert len(rows) == 2
    assert all(row["sampling"] == "uniform" and row["frame_indices"] == UNIFORM_PLAN for row in rows), rows


def test_driver_refuses_a_card_without_a_fake_class(tmp_path, tiny_model):
    model = _with_card(tiny_model, tmp_path / "nofake", class_names=["real", "deepfake"])
    archive = tmp_path / "archive"
    make_videos(archive, ["a.mp4"])
    with pytest.raises(UsageError, match="refused model .*have no 'fake' class"):
        run_scan(scan_config(archive, model, tmp_path / "out"))
    assert not (tmp_path / "out").exists()  # refused before any worker starts or anything is written
