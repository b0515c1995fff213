"""Fixtures of the scanner tests: one Ray cluster per session, one tiny model, tiny archives.

The session cluster has 2 logical CPUs and 2 logical GPUs (there is no real GPU). Scans that should
run on CPU workers say ``gpus=0`` explicitly, because the default (every visible GPU) would start
GPU actors; the logical-GPU test asks for ``gpus=2``. Tests needing a cluster of their own (two nodes)
run it in a subprocess, so only one cluster lives in this process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dfscan.scanner.config import ScanConfig
from tests.media import write_index_video

REPO = Path(__file__).resolve().parents[2]
FRAMES, SIZE = 4, 32  # the tiny model's clip shape


def save_model_in_subprocess(folder: Path, name: str, **settings) -> Path:
    """A tiny untrained cnn-lstm (``tests.models.save_tiny_model``) saved with its card, built in a
    subprocess so this process (the Ray driver) never imports TensorFlow, like the real driver."""
    code = ("import sys\n"
            "from tests.models import save_tiny_model\n"
            f"save_tiny_model(sys.argv[1], {name!r}, frames={FRAMES}, size={SIZE}, "
            + ", ".join(f"{key}={value!r}" for key, value in settings.items()) + ")\n")
    subprocess.run([sys.executable, "-c", code, str(folder)], check=True, cwd=REPO, env=child_env(), timeout=300,
                   capture_output=True)
    return folder / "model.keras"


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A tiny untrained cnn-lstm saved with its card (uniform sampling, threshold 0.5)."""
    return save_model_in_subprocess(tmp_path_factory.mktemp("model"), "tiny-cnn-lstm", sampling="uniform",
                                    threshold=0.5)


@pytest.fixture(scope="session")
def synthetic_tiny_model(tmp_path_factory) -> Path:
    """The tiny model with a card that says it was trained on synthetic videos only, and a threshold of
    0, so it calls every file fake: the demo model on real footage, in miniature."""
    return save_model_in_subprocess(tmp_path_factory.mktemp("synthetic-model"), "synthetic-tiny", threshold=0.0,
                                    data="synthetic")


def child_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(REPO))
    env.update(extra)
    return env


def make_videos(root: Path, names: list[str], frames: int = 6) -> list[str]:
    """Tiny H.264 videos (64x48) at the given archive-relative names."""
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"tmp_{path.stem}.mp4")
        write_index_video(tmp, frames, "h264", width=64, height=48)
        os.replace(tmp, path)
    return sorted(names)


@pytest.fixture
def archive(tmp_path) -> tuple[Path, list[str]]:
    """Ten tiny videos in nested folders (one with an upper-case extension)."""
    root = tmp_path / "archive"
    names = [f"a/clip_{i:02d}.mp4" for i in range(4)] + [f"b/c/clip_{i:02d}.mp4" for i in range(5)] + ["TOP.MP4"]
    return root, make_videos(root, names)


def scan_config(archive: Path, model: Path, out: Path, **kwargs) -> ScanConfig:
    defaults = dict(gpus=0, workers=1, batch_size=4, progress=False, commit_rows=4, commit_seconds=0.5)
    defaults.update(kwargs)
    return ScanConfig(archive=archive, model=model, out=out, **defaults)


def config_json(config: ScanConfig) -> str:
    import json

    return json.dumps(config.as_dict())


def rows_by_path(out: Path) -> dict[str, list[dict]]:
    """Every committed row, grouped by path."""
    import pyarrow.dataset as pads

    grouped: dict[str, list[dict]] = {}
    for row in pads.dataset(str(out)).to_table().to_pylist():
        grouped.setdefault(row["path"], []).append(row)
    return grouped
