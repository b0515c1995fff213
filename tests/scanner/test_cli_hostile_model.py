"""A hostile model file is refused by `dfscan run` and `dfscan evaluate` with exit 2 and one line,
before Ray starts and before any deep-learning library reads it (issue 11, items 4 and 5)."""

import zipfile

import pytest
from typer.testing import CliRunner

import scanner.run
from scanner.cli import app
from tests.hostile_models import HOSTILE_CONFIGS, nested, read_config, write_model
from tests.scanner.conftest import make_videos

runner = CliRunner()


def _hostile(tiny_model, out_dir, kind: str):
    """The tiny model rewritten as ``kind``, with a card whose sha256 matches; and what its refusal names."""
    if kind == "nested":
        return write_model(tiny_model, out_dir, config_bytes=nested(10_000)), "nested too deeply"
    if kind == "bzip2":
        return (write_model(tiny_model, out_dir, config=read_config(tiny_model), compression=zipfile.ZIP_BZIP2),
                "compression method 12")
    poison, named = HOSTILE_CONFIGS[kind]
    return write_model(tiny_model, out_dir, config=poison(read_config(tiny_model))), named


def _one_error_line(result) -> str:
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("dfscan: error: ")
    return line


@pytest.mark.parametrize("kind", ["os.system", "TFSMLayer", "nested", "bzip2"])
def test_run_refuses_a_hostile_model_before_ray_starts(tmp_path, tiny_model, monkeypatch, kind):
    model, named = _hostile(tiny_model, tmp_path / "model", kind)
    archive = tmp_path / "archive"
    make_videos(archive, ["a.mp4"])  # something to scan: a model that passed would start Ray

    def no_ray(*args, **kwargs):
        raise AssertionError("Ray was started for a refused model")

    monkeypatch.setattr(scanner.run, "connect_ray", no_ray)
    out = tmp_path / "out"
    result = runner.invoke(app, ["run", str(archive), "--model", str(model), "--out", str(out), "--gpus", "0"])
    line = _one_error_line(result)
    assert line.startswith(f"dfscan: error: refused model {model}: model.keras: ") and named in line
    assert not out.exists()  # refused before the run touched anything


@pytest.mark.parametrize("kind", ["builtins.eval", "bytecode activation", "nested", "bzip2"])
def test_evaluate_refuses_a_hostile_model(tmp_path, tiny_model, kind):
    model, named = _hostile(tiny_model, tmp_path / "model", kind)
    data = tmp_path / "data"
    make_videos(data, ["real/a.mp4", "fake/b.mp4"])
    result = runner.invoke(app, ["evaluate", "--data", str(data), "--model", str(model), "--split", "all"])
    line = _one_error_line(result)
    assert line.startswith("dfscan: error: model.keras: ") and named in line
