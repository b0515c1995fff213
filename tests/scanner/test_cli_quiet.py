"""A quiet command line: a user sees dfscan's own output, not TensorFlow's start-up chatter, unless
--verbose; and a model no better than chance is called that, in plain words."""

from __future__ import annotations

import json
import re
import subprocess
import sys

from tests.scanner.conftest import REPO, child_env, make_videos

CHATTER = re.compile(r"absl::InitializeLog|^[IWE]\d{4} |oneDNN|cuInit|cuda", re.IGNORECASE | re.MULTILINE)


def _dfscan(*args: str) -> subprocess.CompletedProcess:
    env = child_env()
    env.pop("TF_CPP_MIN_LOG_LEVEL")  # as a user's shell has it
    return subprocess.run([sys.executable, "-c", "from scanner.cli import app; app()", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


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
