"""Metrics against values worked out by hand (and AUC against brute-force pair counting)."""

import itertools
import math

import numpy as np
import pytest

from dfscan.training.metrics import (
    binary_metrics,
    confusion,
    eer,
    log_loss,
    roc_auc,
    roc_curve,
)

# The classic four-point example: one fake (0.35) ranks below one real (0.4).
Y = [0, 0, 1, 1]
P = [0.1, 0.4, 0.35, 0.8]


def test_worked_example_every_metric():
    m = binary_metrics(Y, P, threshold=0.5)
    assert m["n_videos"] == 4 and m["n_real"] == 2 and m["n_fake"] == 2
    assert m["confusion"] == [[2, 0], [1, 1]]  # rows truth [real, fake], columns prediction
    assert m["accuracy"] == 0.75
    assert m["balanced_accuracy"] == 0.75  # (2/2 + 1/2) / 2
    assert m["roc_auc"] == 0.75  # 3 of the 4 (fake, real) pairs are ordered right
    assert m["precision"] == 1.0 and m["recall"] == 0.5
    assert m["f1"] == pytest.approx(2 / 3)
    expected_loss = -(math.log(0.9) + math.log(0.6) + math.log(0.35) + math.log(0.8)) / 4
    assert m["log_loss"] == pytest.approx(expected_loss, abs=1e-12)
    assert m["eer"] == 0.5  # at threshold 0.4: one real of two called fake, one fake of two missed


def test_roc_curve_points_and_ties():
    fpr, tpr, thresholds = roc_curve(Y, P)
    np.testing.assert_allclose(fpr, [0, 0, 0.5, 0.5, 1])
    np.testing.assert_allclose(tpr, [0, 0.5, 0.5, 1, 1])
    assert thresholds[0] == np.inf and list(thresholds[1:]) == [0.8, 0.4, 0.35, 0.1]
    # tied scores move the curve in one diagonal step
    fpr, tpr, _ = roc_curve([0, 1], [0.5, 0.5])
    np.testing.assert_allclose(fpr, [0, 1])
    np.testing.assert_allclose(tpr, [0, 1])
    assert roc_auc([0, 1], [0.5, 0.5]) == 0.5


def test_auc_matches_pair_counting_with_ties():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 60)
    p = rng.integers(0, 7, 60) / 6.0  # few distinct values: many ties
    pairs = [(1.0 if a > b else 0.5 if a == b else 0.0)
             for a, b in itertools.product(p[y == 1], p[y == 0])]
    assert roc_auc(y, p) == pytest.approx(np.mean(pairs), abs=1e-12)


def test_eer_perfect_inverted_and_interpolated():
    assert eer([0, 1], [0.2, 0.9]) == 0.0
    assert eer([0, 1], [0.9, 0.2]) == 1.0
    # fnr drops from 1/2 to 0 while fpr stays at 1/3: the rates are equal at fpr = 1/3
    assert eer([0, 0, 0, 1, 1], [0.1, 0.6, 0.7, 0.65, 0.9]) == pytest.approx(1 / 3)
    # crossing inside a diagonal (tied) step from (fpr 0, fnr 1/2) to (fpr 1/2, fnr 0): halfway, 1/4
    assert eer([0, 0, 1, 1], [0.5, 0.1, 0.5, 0.9]) == pytest.approx(0.25)


def test_threshold_and_confusion_orientation():
    # p >= threshold is fake; rows are the truth
    assert confusion([0, 1, 1], [0.5, 0.49, 0.5], threshold=0.5) == [[0, 1], [1, 1]]


def test_log_loss_is_clipped_and_finite():
    assert math.isfinite(log_loss([1, 0], [0.0, 1.0]))
    assert log_loss([1, 0], [1.0, 0.0]) == pytest.approx(0.0, abs=1e-6)


def test_single_class_gives_none_not_nan():
    m = binary_metrics([1, 1, 1], [0.2, 0.7, 0.9])
    assert m["roc_auc"] is None and m["eer"] is None
    assert m["balanced_accuracy"] == pytest.approx(2 / 3)  # only the fake recall exists
    assert m["confusion"] == [[0, 0], [1, 2]]


def test_class_balanced_loss_weights_classes_equally():
    # one real, three fakes: the real's loss counts for half in the balanced version
    y, p = [0, 1, 1, 1], [0.5, 0.9, 0.9, 0.9]
    m = binary_metrics(y, p)
    assert m["balanced_log_loss"] == pytest.approx((-math.log(0.5) - math.log(0.9)) / 2)
    assert m["log_loss"] == pytest.approx((-math.log(0.5) - 3 * math.log(0.9)) / 4)


def test_bad_inputs_refused():
    with pytest.raises(ValueError):
        binary_metrics([0, 1], [0.5])
    with pytest.raises(ValueError):
        binary_metrics([0, 2], [0.5, 0.5])
    with pytest.raises(ValueError):
        binary_metrics([0, 1], [0.5, float("nan")])
