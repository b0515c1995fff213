"""Quality of a training recipe on FaceForensics++: `dfscan train --recipe` over several seeds, with the
validation AUC, the time, and (only when asked, once, at the end) the test AUC. docs/quality.md reports it.

    python -m dfscan.benchmarks.recipe_quality --data FF_ROOT --out WORK [--recipe ff-residual] [--seeds 0,1,2]
        [--set FIELD=VALUE ...] [--with-test]

Without ``--with-test`` the runs never see a test-split video: WORK/tuning_data is a tree of hard links (or
copies, across file systems) to the train and val videos only, so tuning cannot peek at the test part.
Each seed is one ``training.fit.train`` run (its folder WORK/seed-N), timed as the read (decode and face
detection, once per video) and the fit. Results: WORK/recipe-quality.json and one JSON line per seed on stdout.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import statistics
import time
from pathlib import Path

from dfscan.kernels.atomic import write_json_atomic
from dfscan.kernels.provenance import dfscan_version
from dfscan.training.faceforensics import FFOptions
from dfscan.training.fit import TrainConfig, train
from dfscan.training.layouts import scan_dataset
from dfscan.training.recipes import RECIPES, recipe_settings
from dfscan.training.splits import make_split


def tuning_tree(data: Path, out: Path, options: FFOptions) -> tuple[Path, int]:
    """A copy of ``data`` holding only its train and val videos (hard links where the file system allows);
    returns the tree and how many test videos were left out."""
    dataset = scan_dataset(data, "faceforensics", options)
    split = make_split(dataset)
    out.mkdir(parents=True, exist_ok=True)
    for relative in (*split.train, *split.val):
        target = out / relative
        if target.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(Path(dataset.root) / relative, target)
        except OSError:  # another file system
            shutil.copyfile(Path(dataset.root) / relative, target)
    return out, len(split.test)


def _spread(values: list[float]) -> dict:
    return {"mean": round(statistics.fmean(values), 4), "min": round(min(values), 4), "max": round(max(values), 4),
            "std": round(statistics.pstdev(values), 4)} if values else {}


def parse_settings(pairs: list[str]) -> dict[str, object]:
    """``FIELD=VALUE`` pairs as TrainConfig fields, each VALUE read as its field's default's type."""
    fields = {field.name: field for field in dataclasses.fields(TrainConfig)}
    settings = {}
    for pair in pairs:
        name, _, text = pair.partition("=")
        if name not in fields or not text:
            raise ValueError(f"--set takes FIELD=VALUE with a TrainConfig field, got {pair!r}")
        default = fields[name].default
        if isinstance(default, bool):
            settings[name] = text.lower() in ("1", "true", "yes")
        elif isinstance(default, (int, float)):
            settings[name] = type(default)(text)
        else:
            settings[name] = text
    return settings


def measure(data: Path, work: Path, recipe: str, seeds: list[int], with_test: bool,
            options: FFOptions = FFOptions(), epochs: int | None = None, settings: dict | None = None) -> dict:
    """Train ``recipe`` once per seed (``epochs`` and ``settings`` over the recipe's) and report each run
    and the spread."""
    left_out = 0
    if not with_test:
        data, left_out = tuning_tree(data, work / "tuning_data", options)
    runs = []
    for seed in seeds:
        started = time.monotonic()
        config = TrainConfig(data=str(data), out=str(work / f"seed-{seed}"), layout="faceforensics",
                             faceforensics=options, verbose=0,
                             **recipe_settings(recipe, given={**(settings or {}), "seed": seed,
                                                              **({"epochs": epochs} if epochs else {})}))
        result = train(config)
        metrics, training = result.metrics, result.metrics["training"]
        seconds = time.monotonic() - started
        run = {"seed": seed, "val_auc": metrics["val"].get("roc_auc"), "val_videos": metrics["val"].get("n_videos"),
               "best_epoch": training["best_epoch"], "epochs_run": training["epochs_run"],
               "fit_seconds": training["fit_seconds"], "seconds": round(seconds, 1),
               "read_and_score_seconds": round(seconds - training["fit_seconds"], 1),
               "train_videos": result.card["dataset"]["train"]["videos"]}
        if with_test:
            run["test_auc"] = metrics["test"].get("roc_auc")
            run["test_videos"] = metrics["test"].get("n_videos")
        print(json.dumps(run), flush=True)
        runs.append(run)
    report = {
        "recipe": recipe, "settings": {**RECIPES[recipe].settings, **(settings or {})}, "seeds": seeds,
        "with_test": with_test,
        "test_videos_left_out": left_out, "runs": runs,
        "val_auc": _spread([r["val_auc"] for r in runs if r["val_auc"] is not None]),
        "test_auc": _spread([r["test_auc"] for r in runs if r.get("test_auc") is not None]) if with_test else None,
        "fit_seconds": _spread([r["fit_seconds"] for r in runs]),
        "seconds": _spread([r["seconds"] for r in runs]),
        "cpu_count": os.cpu_count(), "dfscan": dfscan_version(),
        "options": dataclasses.asdict(options),
    }
    write_json_atomic(work / "recipe-quality.json", report)
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="a FaceForensics++ root")
    parser.add_argument("--out", type=Path, required=True, help="work folder for the runs and the report")
    parser.add_argument("--recipe", default="ff-residual", choices=sorted(RECIPES))
    parser.add_argument("--seeds", default="0,1,2", help="comma list")
    parser.add_argument("--compression", default="c23")
    parser.add_argument("--methods", default=None, help="comma list; default every method present")
    parser.add_argument("--epochs", type=int, default=None, help="default: the recipe's")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="a TrainConfig field over the recipe's (repeatable)")
    parser.add_argument("--with-test", action="store_true", help="train on the whole tree and score its test part "
                        "(do this once, after the recipe is chosen)")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    options = FFOptions.parse(args.compression, args.methods, False)
    try:
        settings = parse_settings(args.set)
    except ValueError as exc:
        parser.error(str(exc))
    report = measure(args.data, args.out, args.recipe, seeds, args.with_test, options, args.epochs, settings)
    print(json.dumps({k: report[k] for k in ("recipe", "val_auc", "test_auc", "fit_seconds", "seconds")}))


if __name__ == "__main__":
    main()
