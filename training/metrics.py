"""Video-level metrics for a binary real/fake detector, in numpy (no scikit-learn).

``y_true`` holds class indices (0 = real, 1 = fake) and ``p_fake`` the predicted probability of
"fake". "Positive" means fake throughout: precision, recall and f1 are for the fake class.
"""

from __future__ import annotations

import math

import numpy as np

from dfscan.kernels.verdict_rule import called_fake

_EPS = 1e-7  # probabilities are clipped to [eps, 1 - eps] for log-loss, as Keras does


def _check(y_true, p_fake) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true, dtype=np.int64).reshape(-1)
    p = np.asarray(p_fake, dtype=np.float64).reshape(-1)
    if y.shape != p.shape:
        raise ValueError(f"{y.size} labels but {p.size} scores")
    if y.size and not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be 0 (real) or 1 (fake)")
    if not np.isfinite(p).all():
        raise ValueError("scores must be finite")
    return y, p


def confusion(y_true, p_fake, threshold: float = 0.5) -> list[list[int]]:
    """2x2 counts, rows = truth [real, fake], columns = prediction [real, fake]; fake iff p >= threshold."""
    y, p = _check(y_true, p_fake)
    pred = called_fake(p, threshold).astype(np.int64)
    return [[int(np.sum((y == t) & (pred == q))) for q in (0, 1)] for t in (0, 1)]


def roc_curve(y_true, p_fake) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, tpr, thresholds), one point per distinct score from high to low, starting at (0, 0)."""
    y, p = _check(y_true, p_fake)
    order = np.argsort(-p, kind="mergesort")
    y, p = y[order], p[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(p)), y.size - 1]  # a tie moves the curve in one step
    tps = np.cumsum(y)[last_of_tie]
    fps = (last_of_tie + 1) - tps
    n_pos, n_neg = int(y.sum()), int(y.size - y.sum())
    tpr = np.r_[0.0, tps / n_pos] if n_pos else np.full(tps.size + 1, np.nan)
    fpr = np.r_[0.0, fps / n_neg] if n_neg else np.full(fps.size + 1, np.nan)
    return fpr, tpr, np.r_[np.inf, p[last_of_tie]]


def roc_auc(y_true, p_fake) -> float | None:
    """Probability that a random fake scores above a random real (ties count half); None when a
    class is missing. Computed from average ranks (Mann-Whitney U)."""
    y, p = _check(y_true, p_fake)
    n_pos, n_neg = int(y.sum()), int(y.size - y.sum())
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(p, kind="mergesort")
    ranks = np.empty(p.size, dtype=np.float64)
    sorted_p = p[order]
    # average rank (1-based) within each run of tied scores
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_p)) + 1]
    ends = np.r_[starts[1:], p.size]
    for s, e in zip(starts, ends):
        ranks[order[s:e]] = (s + 1 + e) / 2.0
    u = ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def eer(y_true, p_fake) -> float | None:
    """Equal error rate: where the false-positive rate equals the false-negative rate, interpolated
    linearly between the two ROC points around the crossing; None when a class is missing."""
    y, _ = _check(y_true, p_fake)
    if y.sum() == 0 or y.sum() == y.size:
        return None
    fpr, tpr, _ = roc_curve(y_true, p_fake)
    fnr = 1.0 - tpr
    diff = fnr - fpr  # starts at 1 (fpr 0, fnr 1) and ends at -1 (fpr 1, fnr 0)
    i = int(np.flatnonzero(diff <= 0)[0])
    if diff[i] == 0 or i == 0:
        return float(fpr[i])
    w = diff[i - 1] / (diff[i - 1] - diff[i])  # fraction of the step where diff crosses zero
    return float(fpr[i - 1] + w * (fpr[i] - fpr[i - 1]))


def log_loss(y_true, p_fake) -> float:
    """Mean negative log-likelihood of the true class."""
    y, p = _check(y_true, p_fake)
    p = np.clip(p, _EPS, 1.0 - _EPS)
    return float(-np.mean(np.where(y == 1, np.log(p), np.log(1.0 - p))))


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den else 0.0


def binary_metrics(y_true, p_fake, threshold: float = 0.5) -> dict:
    """Raw and class-balanced metrics, JSON-ready (undefined values are None, never NaN)."""
    y, p = _check(y_true, p_fake)
    (tn, fp), (fn, tp) = confusion(y, p, threshold)
    n_real, n_fake = tn + fp, fn + tp
    precision = _ratio(tp, tp + fp)
    recall = _ratio(tp, n_fake)
    specificity = _ratio(tn, n_real)
    per_class_loss = [log_loss(y[y == c], p[y == c]) for c in (0, 1) if np.any(y == c)]
    out = {
        "n_videos": int(y.size),
        "n_real": int(n_real),
        "n_fake": int(n_fake),
        "threshold": float(threshold),
        "accuracy": _ratio(tn + tp, y.size),
        # mean of the per-class recalls: what accuracy would be on a 50/50 set
        "balanced_accuracy": float(np.mean([r for r, n in ((specificity, n_real), (recall, n_fake)) if n]))
        if y.size else 0.0,
        "roc_auc": roc_auc(y, p),
        "log_loss": log_loss(y, p) if y.size else None,
        "balanced_log_loss": float(np.mean(per_class_loss)) if per_class_loss else None,
        "eer": eer(y, p),
        "precision": precision,
        "recall": recall,
        "f1": _ratio(2 * precision * recall, precision + recall),
        "confusion": [[int(tn), int(fp)], [int(fn), int(tp)]],
    }
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in out.items()}
