"""A hostile model file is refused by `dfscan run` and `dfscan evaluate` with exit 2 and one line,
before Ray starts and before any deep-learning library reads it (issue 11, items 4 and 5)."""

import zipfile

import pytest
from typer.testing import CliRunner

import dfscan.scanner.run
from dfscan.cli import app
from dfscan.kernels.card import MAX_FRAMES, MAX_SIZE
from tests.hostile_models import HOSTILE_CONFIGS, nested, read_config, with_input, write_model
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

    monkeypatch.setattr(dfscan.scanner.run, "connect_ray", no_ray)
    out = tmp_path / "out"
    result = runner.invoke(app, ["run", str(archive), "--model", str(model), "--out", str(out), "--gpus", "0"])
    line = _one_error_line(result)
    assert line.startswith(f"dfscan: error: refused model {model}: model.keras: ") and named in line
    assert not out.exists()  # refused before the run touched anything


@pytest.mark.parametrize("frames, size, card, batch, named", [
    (100_000, 4096, {"frames": 100_000, "size": 4096}, 8,
     f"model.json: asks for 100000 frames of 4096x4096 pixels; dfscan reads at most {MAX_FRAMES} frames of at most "
     f"{MAX_SIZE}x{MAX_SIZE} pixels"),
    (100_000, 4096, {"frames": 20}, 8,
     "model.keras: config.json: its input asks for 100000 frames of 4096x4096 pixels; dfscan reads at most "
     f"{MAX_FRAMES} frames"),
    (MAX_FRAMES, MAX_SIZE, {"frames": MAX_FRAMES, "size": MAX_SIZE}, 8,
     "model.json: a batch of 8 clips of 256 frames of 1024x1024 pixels holds 6442450944 bytes, over the limit of "
     "2147483648 bytes a batch; use --batch-size 2 or less"),
], ids=["100000x4096", "card says 20 frames", "batch bytes"])
def test_run_refuses_a_model_asking_for_huge_clips_before_ray_starts(tmp_path, tiny_model, monkeypatch, frames, size,
                                                                      card, batch, named):
    """Night-safety item 3: a worker asked for such clips died at start-up (ActorDiedError); the driver
    refuses them from the card and the config, whose sha256 matches."""
    model = write_model(tiny_model, tmp_path / "model", config=with_input(frames, size)(read_config(tiny_model)),
                        card=card)
    archive = tmp_path / "archive"
    make_videos(archive, ["a.mp4"])

    def no_ray(*args, **kwargs):
        raise AssertionError("Ray was started for a refused model")

    monkeypatch.setattr(dfscan.scanner.run, "connect_ray", no_ray)
    out = tmp_path / "out"
    result = runner.invoke(app, ["run", str(archive), "--model", str(model), "--out", str(out), "--gpus", "0",
                                 "--batch-size", str(batch)])
    assert _one_error_line(result).startswith(f"dfscan: error: refused model {model}: {named}")
    assert not out.exists()


@pytest.mark.parametrize("kind", ["builtins.eval", "bytecode activation", "nested", "bzip2"])
def test_evaluate_refuses_a_hostile_model(tmp_path, tiny_model, kind):
    model, named = _hostile(tiny_model, tmp_path / "model", kind)
    data = tmp_path / "data"
    make_videos(data, ["real/a.mp4", "fake/b.mp4"])
    result = runner.invoke(app, ["evaluate", "--data", str(data), "--model", str(model), "--split", "all"])
    line = _one_error_line(result)
    assert line.startswith("dfscan: error: model.keras: ") and named in line
