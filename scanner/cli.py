"""The `dfscan` command line: a thin typer layer. Each command parses, builds a config, and calls one
library function. Bad arguments get a one-line message and exit code 2."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import List, Optional

import typer

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="dfscan: decide at scale whether videos are real or deepfakes.")


def fail_usage(message: str) -> None:
    """Bad usage: one clear line on stderr, exit code 2."""
    typer.echo(f"dfscan: error: {message}", err=True)
    raise typer.Exit(code=2)


@app.command()
def probe(files: List[Path] = typer.Argument(..., help="Video files to probe."),
          as_json: bool = typer.Option(False, "--json", help="One JSON object per line.")):
    """Probe files: container, codec, size, exact frame count, keyframes; or the error class."""
    from kernels.errors import VideoError
    from kernels.probe import probe as probe_file

    refused = 0
    for path in files:
        try:
            record = {"ok": True, **probe_file(path).as_dict()}
        except VideoError as exc:
            refused += 1
            record = {"ok": False, "path": str(path), **exc.as_dict()}
        if as_json:
            typer.echo(json.dumps(record))
        elif record["ok"]:
            typer.echo(f"{path}: {record['container']} {record['codec']} {record['profile'] or ''} "
                       f"{record['width']}x{record['height']} {record['pix_fmt']} {record['frame_count']} frames "
                       f"@ {record['fps'] or 0:.3f} fps, {record['duration_s'] or 0:.2f} s, "
                       f"keyframes {len(record['keyframes'])}, audio {'yes' if record['has_audio'] else 'no'}")
        else:
            typer.echo(f"{path}: {record['error_class']}: {record['error_message']}")
    raise typer.Exit(code=1 if refused else 0)


@app.command()
def frames(video: Path = typer.Argument(..., help="The video to sample."),
           out: Path = typer.Option(..., "--out", help="Directory for frame_<index>.png and sheet.png."),
           n_frames: int = typer.Option(20, "--frames", help="Frames per clip (F)."),
           size: int = typer.Option(224, "--size", help="Frame side S in pixels."),
           sampling: str = typer.Option("uniform", "--sampling", help="uniform | keyframe"),
           decoder: str = typer.Option("auto", "--decoder", help="auto | pyav | dali-cpu | dali-gpu")):
    """Write the frames the model sees, one PNG per sampled frame, plus a contact sheet."""
    from kernels.clips import ClipReader, ClipSpec
    from kernels.export import write_clip

    try:
        spec = ClipSpec(frames=n_frames, size=size, sampling=sampling, decoder=decoder)
        reader = ClipReader(spec)
    except ValueError as exc:
        fail_usage(str(exc))
    (clip,) = reader.read([str(video)])
    if not clip.ok:
        typer.echo(f"{video}: {clip.error.error_class.value}: {clip.error.message}", err=True)
        raise typer.Exit(code=1)
    written = write_clip(clip, out)
    typer.echo(f"{video}: {len(written) - 1} frames {clip.indices.tolist()} via {clip.decoder} -> {out}")


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
