"""`dfscan demo`, shrunk: every step runs and everything it promises is where it says; the model is a
face model, and the scan cut faces from every video."""

import json

import pyarrow.dataset as pads
import pytest

from dfscan.demo import DISCLAIMER, DemoConfig, run_demo
from dfscan.training.layouts import SYNTHETIC_MARKER


@pytest.mark.usefixtures("ray_cluster")
def test_demo_runs_end_to_end(tmp_path):
    lines: list[str] = []
    config = DemoConfig(out=tmp_path / "demo", videos=12, frames_per_video=8, video_size=96, frames=4, size=32,
                        epochs=1, steps_per_epoch=2, batch_size=4, workers=1)
    result = run_demo(config, say=lines.append)
    out = tmp_path / "demo"
    assert (out / "model" / "model.keras").is_file() and (out / "model" / "model.json").is_file()
    assert json.loads((out / "demo.json").read_text()) == result
    table = pads.dataset(str(out / "verdicts")).to_table()
    assert table.num_rows == 12 == result["scanned"]
    assert sorted(set(table.column("status").to_pylist())) == ["ok"]
    # the portrait's face was found in every video, and the model saw face crops
    assert set(table.column("crop").to_pylist()) == {"face"} and set(table.column("face_found").to_pylist()) == {True}
    assert json.loads((out / "model" / "model.json").read_text())["crop"] == "face"
    assert json.loads((out / "archive" / SYNTHETIC_MARKER).read_text())["kind"] == "portrait"
    assert result["test_videos"] >= 2 and result["videos_per_s"] > 0
    text = "\n".join(lines)
    assert DISCLAIMER in text and "test ROC AUC" in text and "videos/s" in text
