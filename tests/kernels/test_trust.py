"""How far a model can be trusted: the words the card's metrics earn."""

import pytest

from dfscan.kernels.trust import card_trust, explain_p_fake, metric_warnings, untrusted


def metrics(auc, confusion, n=None):
    n = n if n is not None else sum(map(sum, confusion))
    return {"roc_auc": auc, "accuracy": (confusion[0][0] + confusion[1][1]) / n, "n_videos": n, "confusion": confusion}


GOOD = metrics(0.97, [[24, 1], [2, 23]])  # 50 test videos, both classes called


def test_a_good_model_has_nothing_to_warn_about():
    assert metric_warnings(GOOD) == [] and not untrusted(GOOD)


@pytest.mark.parametrize("measured, warnings", [
    # The run: AUC 0.52, every video called real, on 10 test videos.
    (metrics(0.52, [[5, 0], [5, 0]]), ["test AUC 0.52 is near chance (0.5): the model does not tell real from fake",
                                        "it calls every test video real", "measured on only 10 test videos"]),
    (metrics(0.35, [[20, 5], [22, 3]]), ["test AUC 0.35 is below chance: it ranks fakes as real (swapped labels?)"]),
    (metrics(0.45, [[20, 5], [22, 3]]), ["test AUC 0.45 is near chance (0.5): the model does not tell real from fake"]),
    (metrics(0.9, [[0, 25], [0, 25]]), ["it calls every test video fake"]),
    (metrics(None, [[0, 0], [3, 30]]), ["no test AUC (the test videos lack a real or a fake one)"]),
    (None, ["no test metrics recorded"]),
])
def test_warnings(measured, warnings):
    assert metric_warnings(measured) == warnings
    assert untrusted(measured) == any("only" not in w for w in warnings)  # too few videos alone is a caveat


def test_the_words_fit_an_evaluation_of_every_video():
    assert metric_warnings(metrics(0.5, [[2, 0], [2, 0]]), "all") == [
        "AUC 0.50 is near chance (0.5): the model does not tell real from fake", "it calls every video real",
        "measured on only 4 videos"]


def test_card_trust_reads_the_test_part_and_the_dataset():
    card = {"metrics": {"test": metrics(0.52, [[5, 0], [5, 0]]), "val": GOOD},
            "dataset": {"root": "runs/data/synth48/", "synthetic": True}}
    trust = card_trust(card)
    assert (trust.part, trust.auc, trust.n_videos, trust.dataset, trust.synthetic, trust.untrusted) == (
        "test", 0.52, 10, "synth48", True, True)
    assert trust.summary() == "test AUC 0.52, accuracy 0.50 on 10 videos of 'synth48' (synthetic)"
    assert trust.warnings[-1] == "trained and tested on synthetic videos only (dfscan synth), never on real deepfakes"
    only_val = card_trust({"metrics": {"test": None, "val": GOOD}, "dataset": {"root": "celeb"}})
    assert (only_val.part, only_val.auc, only_val.untrusted, only_val.warnings) == ("val", 0.97, False, ())
    bare = card_trust({})  # a card from elsewhere, with no metrics at all
    assert bare.untrusted and bare.summary() == "no measured quality on its card"


def test_the_sentence_says_what_p_fake_and_the_threshold_mean():
    assert explain_p_fake(0.5, 0.1) == (
        "p_fake is the model's estimate, from 0 to 1, that the video is fake: at or above 0.5 it is called fake, "
        "below it real, and within 0.1 of 0.5 (between 0.4 and 0.6) it is inconclusive; it is a score from one "
        "model, not proof.")
    assert "inconclusive" not in explain_p_fake(0.7, 0.0)
