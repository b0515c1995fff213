"""Video-level evaluation of a saved model, through the same compiled predict step the scanner uses."""

from __future__ import annotations

import collections
import dataclasses
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from dfscan.kernels.atomic import atomic_path
from dfscan.kernels.clips import ClipReader, ClipSpec
from dfscan.kernels.predict import load_predictor
from dfscan.kernels.scope import ClipFacts, ScopeRule, p_fake_quantiles, scope_rule
from dfscan.kernels.trust import metric_warnings
from dfscan.training.clip_cache import ClipSource
from dfscan.training.faceforensics import FFOptions
from dfscan.training.layouts import Dataset, VideoItem, scan_dataset
from dfscan.training.metrics import binary_metrics, roc_curve
from dfscan.training.splits import load_split, make_split

SPLIT_FILE = "split.json"  # written by training beside model.keras


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    data: str
    model: str  # RUN_DIR/model.keras or RUN_DIR
    split: str = "test"  # "test": the run's test part (or the layout's official one) | "all": every video
    layout: str = "auto"
    faceforensics: FFOptions = FFOptions()  # layout faceforensics: compression, methods, DeepFakeDetection
    batch_size: int = 8
    decoder: str = "auto"
    plot: str | None = None  # write a ROC curve PNG here
    threshold: float | None = None  # None: the model card's decision threshold


def predict_items(predictor, source: ClipSource, items: Sequence[VideoItem]) -> tuple[np.ndarray, list[VideoItem]]:
    """p(fake) for the readable items, batch by batch at the predictor's one compiled shape.

    Returns (p_fake (n,) float32, the n items that were read); unreadable items are left out and
    stay listed in ``source.errors``.
    """
    batch_size = predictor.batch_size
    scores: list[np.ndarray] = []
    kept: list[VideoItem] = []
    for start in range(0, len(items), batch_size):
        chunk = list(items[start:start + batch_size])
        clips = source.get([i.path for i in chunk])
        ok = [(item, clip) for item, clip in zip(chunk, clips) if clip is not None]
        if not ok:
            continue
        batch = np.stack([clip for _, clip in ok])  # (n <= B, F, S, S, 3) uint8
        scores.append(predictor.predict(batch))
        kept += [item for item, _ in ok]
    p_fake = np.concatenate(scores) if scores else np.zeros(0, dtype=np.float32)
    return p_fake, kept


def plot_roc(y_true, p_fake, path: str | os.PathLike, title: str = "ROC") -> None:
    """ROC curve PNG (object-oriented matplotlib: no pyplot, no global backend switch)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.5, 4.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1)
    y = np.asarray(y_true)
    if y.size and 0 < y.sum() < y.size:
        fpr, tpr, _ = roc_curve(y, p_fake)
        ax.plot(fpr, tpr, linewidth=2)
    else:
        ax.text(0.5, 0.5, "ROC undefined: one class only", ha="center")
    ax.set(xlabel="false positive rate (real called fake)", ylabel="true positive rate (fake caught)",
           xlim=(0, 1), ylim=(0, 1.01), title=title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(path, suffix=Path(path).suffix) as temporary:
        fig.savefig(temporary)


def score_items(predictor, source: ClipSource, items: Sequence[VideoItem], *, threshold: float,
                plot: str | os.PathLike | None = None, title: str = "ROC") -> dict:
    """Predict, then metrics (and optionally the ROC plot) for ``items``."""
    p_fake, kept = predict_items(predictor, source, items)
    y = np.array([item.label for item in kept], dtype=np.int64)
    metrics = binary_metrics(y, p_fake, threshold)
    metrics["p_fake_quantiles"] = p_fake_quantiles(y, p_fake)  # per class: the card's scope, the run's alarms
    unreadable = [{"path": i.path, **(source.errors[i.path].as_dict() if source.errors.get(i.path) else {})}
                  for i in items if i.path in source.errors]
    metrics["n_unreadable"] = len(unreadable)
    metrics["unreadable"] = unreadable[:20]  # a sample; the count is exact
    if plot is not None:
        plot_roc(y, p_fake, plot, title)
    return metrics


def select_items(dataset: Dataset, split: str, model_dir: Path, seed: int) -> list[VideoItem]:
    """The videos ``--split`` names: the official test part where the layout has one, else the test
    part of the split saved beside the model (or remade from its seed); or everything."""
    if split == "all":
        return list(dataset.items)
    if split != "test":
        raise ValueError(f"unknown split {split!r}; expected test or all")
    by_path = {item.path: item for item in dataset.items}
    saved = model_dir / SPLIT_FILE
    if dataset.official_test is not None:
        test = dataset.official_test
    elif saved.is_file():
        test = load_split(saved).test
    else:
        test = make_split(dataset, seed=seed).test
    found = [by_path[p] for p in test if p in by_path]
    if test and not found:
        raise ValueError(f"none of the model's {len(test)} test videos are under {dataset.root}; "
                         f"evaluate another dataset with split 'all'")
    return found


def evaluate(config: EvalConfig, say: Callable[[str], None] | None = None) -> dict:
    """Video-level metrics of a saved model on a dataset, as one JSON-ready dict; ``say`` gets the
    layout's notes (what it used and left out)."""
    predictor = load_predictor(config.model, config.batch_size, threshold=config.threshold)
    card = predictor.card
    dataset = scan_dataset(config.data, config.layout, config.faceforensics)
    for note in dataset.notes if say else ():
        say(note)
    seed = int(card.get("dataset", {}).get("seed", 0))
    items = select_items(dataset, config.split, Path(predictor.loaded.path).parent, seed)
    reader = ClipReader(ClipSpec(**card.clip_settings(), sampling=predictor.sampling,
                                 decoder=config.decoder))
    source = ClipSource(reader, dataset.root, max_cache_bytes=0)  # each video is read once: no cache
    metrics = score_items(predictor, source, items, threshold=predictor.threshold, plot=config.plot,
                          title=f"{card.name} on {Path(dataset.root).name} ({config.split})")
    facts = [source.facts[item.path] for item in items if item.path in source.facts]
    in_scope = scope_report(scope_rule(card, dataset.root), facts)
    return {**metrics, "split": config.split, "layout": dataset.layout, "model": card.name,
            "model_sha256": card.sha256, **in_scope,
            "warnings": metric_warnings(metrics, config.split) + in_scope["scope_warnings"]}


def scope_report(rule: ScopeRule, facts: Sequence[ClipFacts]) -> dict:
    """How the evaluated videos lie against the model's scope: faces found (face models), the videos
    the scanner would conclude ``untested`` on and why, and warnings in plain words when the evaluation
    measures the model outside what it was trained for (its AUC then says little about the model)."""
    n = len(facts)
    reasons = collections.Counter(reason for reason in (rule.untested_reason(f) for f in facts) if reason)
    out = {"untested_videos": sum(reasons.values()), "untested_reasons": dict(reasons.most_common()),
           "scope": rule.scope.describe(), "scope_warnings": []}
    if rule.face_model:
        found = sum(bool(f.face_found) for f in facts)
        out["faces_found"] = {"videos": found, "of": n}
        if n and found / n < 0.5:
            out["scope_warnings"].append(
                f"a face was found in only {found} of {n} videos ({found / n:.0%}): the rest were scored on whole "
                f"frames this face model never saw, so the metrics above say little about it (faces under about "
                f"1/16 of the frame's long side are not found)")
    if reasons:
        reason, count = reasons.most_common(1)[0]
        out["scope_warnings"].append(f"{out['untested_videos']} of {n} videos lie outside the model's scope (a scan "
                                     f"would conclude 'untested'), {count} because {reason}")
    return out
