"""A quiet command line: a user sees dfscan's own output, not TensorFlow's start-up chatter or Ray's
notices, unless --verbose; and a model no better than chance is called that, in plain words. Each
command runs in a subprocess of its own, as a user's shell runs it."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from tests.face_media import write_face_video
from tests.models import write_face_card
from tests.scanner.conftest import REPO, child_env, make_videos

# TensorFlow's native start-up lines (absl, oneDNN, "Could not find cuda drivers", cuInit) and Ray's
# "WARNING authentication_token_setup.py:85 -- Token authentication is enabled for this Ray cluster".
CHATTER = re.compile(r"absl::InitializeLog|^[IWE]\d{4} |oneDNN|cuInit|cuda|Token authentication|(?-i:WARNING)",
                     re.IGNORECASE | re.MULTILINE)
# The smallest demo (the sizes tests/scanner/test_demo.py runs), set before the command line reads them.
SMALL_DEMO = ("import functools, dfscan.demo as demo\n"
              "demo.DemoConfig = functools.partial(demo.DemoConfig, videos=12, frames_per_video=8, video_size=96,"
              " frames=4, size=32, epochs=1, steps_per_epoch=2, batch_size=4)\n")


def _dfscan(*args: str, prelude: str = "") -> subprocess.CompletedProcess:
    env = child_env()
    env.pop("TF_CPP_MIN_LOG_LEVEL")  # as a user's shell has it
    env.pop("RAY_ADDRESS", None)  # a cluster of its own, as a nightly run starts it
    return subprocess.run([sys.executable, "-c", prelude + "from dfscan.cli import app; app()", *args], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=900)


def test_evaluate_prints_only_its_own_words_unless_verbose(tmp_path, tiny_model):
    make_videos(tmp_path / "data", ["real/a.mp4", "real/b.mp4", "fake/c.mp4", "fake/d.mp4"])
    args = ("evaluate", "--data", str(tmp_path / "data"), "--model", str(tiny_model), "--split", "all")
    quiet = _dfscan(*args)
    assert quiet.returncode == 0, quiet.stderr
    assert CHATTER.search(quiet.stderr) is None, quiet.stderr
    metrics = json.loads(quiet.stdout)
    assert metrics["n_videos"] == 4 and metrics["warnings"][-1] == "measured on only 4 videos"
    # An untrained model: stderr says so in plain words, one "dfscan: warning:" line per problem.
    assert quiet.stderr.splitlines() == [f"dfscan: warning: {w}" for w in metrics["warnings"]]
    verbose = _dfscan("--verbose", *args)
    assert verbose.returncode == 0 and CHATTER.search(verbose.stderr) is not None  # the chatter is still there


@pytest.mark.ray
def test_run_prints_only_its_summary(tmp_path, tiny_model):
    """A local cluster of its own: Ray's notice that it turned token authentication on is not printed."""
    make_videos(tmp_path / "archive", ["a.mp4", "b/c.mp4"])
    result = _dfscan("run", str(tmp_path / "archive"), "--model", str(tiny_model), "--out", str(tmp_path / "out"),
                     "--gpus", "0", "--workers", "1", "--json")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    (line,) = result.stdout.splitlines()
    assert json.loads(line)["ok"] == 2


@pytest.mark.ray
@pytest.mark.training
def test_demo_prints_only_its_own_lines(tmp_path):
    """`dfscan demo` (at the smallest sizes) trains, evaluates and scans on a cluster of its own: nothing on
    stderr, and stdout holds only the demo's own lines."""
    result = _dfscan("demo", "--out", str(tmp_path / "demo"), "--workers", "1", prelude=SMALL_DEMO)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert CHATTER.search(result.stdout) is None, result.stdout
    assert result.stdout.startswith(f"dfscan demo -> {tmp_path / 'demo'}\n")
    assert "4/4 scan" in result.stdout and "videos/s" in result.stdout


@pytest.mark.parametrize("how", ["--crop face", "--model"])
def test_frames_with_face_crops_prints_only_its_line(tmp_path, how):
    """Face crops start TensorFlow (the detector); its start-up lines used to appear twice."""
    video = write_face_video(tmp_path / "face", 8, "vp9")
    args = ["--crop", "face", "--frames", "4", "--size", "32"]
    if how == "--model":
        args = ["--model", str(write_face_card(tmp_path / "run", frames=4, size=32, margin=1.3))]
    result = _dfscan("frames", str(video), "--out", str(tmp_path / "frames"), *args)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    (line,) = result.stdout.splitlines()
    assert line.startswith(f"{video}: 4 frames ") and "crop face" in line
