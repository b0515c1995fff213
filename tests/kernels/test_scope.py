"""A model's scope: what its card records, and which clips it concludes "untested" on, rule by rule."""

from __future__ import annotations

import pytest

from dfscan.kernels import scope as sc
from dfscan.kernels.clips import Clip
from dfscan.kernels.scope import (
    ClipFacts,
    card_scope,
    measure_scope,
    p_fake_quantiles,
    scope_from_dict,
    scope_rule,
)
from tests.kernels.clip_parts import probe, track

FACE_SCOPE = measure_scope(
    data="real", dataset="ff", layout="faceforensics", videos={"train": {"real": 8, "fake": 8}, "test": {"real": 2, "fake": 2}},
    test_metrics={"p_fake_quantiles": p_fake_quantiles([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]), "n_videos": 4,
                  "confusion": [[2, 0], [0, 2]]},
    train_facts=[ClipFacts(640, True, 100.0), ClipFacts(1280, True, 240.0), ClipFacts(640, False, None)],
    test_facts=[ClipFacts(720, True, 150.0)], face_model=True)
FACE_CARD = {"crop": "face", "scope": FACE_SCOPE}


def test_the_card_records_what_the_model_saw():
    assert FACE_SCOPE["data"] == "real" and FACE_SCOPE["videos"]["test"] == {"real": 2, "fake": 2}
    assert FACE_SCOPE["long_side"] == [640.0, 1280.0]
    assert FACE_SCOPE["face_px"] == [100.0, 240.0]  # only where a face was found
    assert FACE_SCOPE["face_found"] == {"train": pytest.approx(2 / 3, abs=1e-4), "test": 1.0}
    assert FACE_SCOPE["test_called_fake"] == 0.5
    quantiles = FACE_SCOPE["test_p_fake"]
    assert quantiles["levels"][0] == 0.0 and quantiles["levels"][-1] == 1.0
    assert quantiles["real"][0] == 0.1 and quantiles["real"][-1] == 0.2 and quantiles["fake"][4] == 0.85
    with pytest.raises(ValueError, match="unknown data kind"):
        measure_scope(data="imaginary", dataset=None, layout=None, videos={}, test_metrics=None)


def test_clip_facts_from_a_clip_and_from_its_row_agree():
    clip = Clip("/a/x.mp4", probe=probe(1920, 1080), faces=track((1920, 1080), (100, 100, 200, 300)))
    facts = ClipFacts.of_clip(clip)
    assert facts == ClipFacts(long_side=1920, face_found=True, face_px=300.0)
    row = {"display_width": 1920, "display_height": 1080, "face_found": True,
           "face_box": [100 / 1920, 100 / 1080, 200 / 1920, 300 / 1080]}
    assert ClipFacts.of_row(row).long_side == 1920 and ClipFacts.of_row(row).face_px == pytest.approx(300.0)
    assert ClipFacts.of_clip(Clip("/a/x.mp4", probe=probe(64, 48))) == ClipFacts(64, None, None)


def test_a_synthetic_only_model_is_untested_outside_a_synth_archive(tmp_path):
    card = {"scope": measure_scope(data="synthetic", dataset="archive", layout="labels.csv", videos={},
                                   test_metrics=None)}
    facts = ClipFacts(128, None, None)
    assert scope_rule(card, tmp_path).untested_reason(facts) == sc.UNTESTED_SYNTHETIC
    assert scope_rule(card, None).untested_reason(facts) == sc.UNTESTED_SYNTHETIC  # an uploaded clip
    (tmp_path / sc.SYNTHETIC_MARKER).write_text("{}")
    assert scope_rule(card, tmp_path).untested_reason(facts) is None  # its own kind of archive


def test_an_old_card_follows_its_dataset_flag(tmp_path):
    old_synthetic = {"dataset": {"root": "/x/archive", "synthetic": True, "layout": "labels.csv"}}
    assert card_scope(old_synthetic).data == "synthetic" and not card_scope(old_synthetic).recorded
    assert scope_rule(old_synthetic, tmp_path).untested_reason(ClipFacts(4000, None, None)) == sc.UNTESTED_SYNTHETIC
    old_real = {"dataset": {"root": "/x/celeb-df", "synthetic": False}}
    # No ranges on an old card: nothing is judged out of range.
    assert scope_rule(old_real, tmp_path).untested_reason(ClipFacts(4000, None, None)) is None
    assert card_scope({}).data == "unknown"


def test_an_untrained_model_is_untested_everywhere(tmp_path):
    card = {"scope": measure_scope(data="untrained", dataset=None, layout=None, videos={}, test_metrics=None)}
    (tmp_path / sc.SYNTHETIC_MARKER).write_text("{}")
    assert scope_rule(card, tmp_path).untested_reason(ClipFacts(128, None, None)) == sc.UNTESTED_UNTRAINED


def test_a_face_model_without_a_face_is_untested(tmp_path):
    rule = scope_rule(FACE_CARD, tmp_path)
    assert rule.untested_reason(ClipFacts(720, False, None)) == sc.UNTESTED_NO_FACE
    assert rule.untested_reason(ClipFacts(720, True, 150.0)) is None
    # A whole-frame model has no face to find.
    assert scope_rule({"scope": FACE_SCOPE}, tmp_path).untested_reason(ClipFacts(720, None, None)) is None


@pytest.mark.parametrize("long_side, face_px, untested", [
    (320, 100.0, False), (319, 100.0, True),  # the smallest seen is 640: half of it is still in scope
    (2560, 200.0, False), (2561, 200.0, True),  # the largest seen is 1280: twice it is still in scope
    (1080, 50.0, False), (1080, 49.0, True), (1080, 480.0, False), (1080, 481.0, True),  # faces 100-240 px
])
def test_far_outside_the_resolutions_and_face_sizes_seen_is_untested(tmp_path, long_side, face_px, untested):
    reason = scope_rule(FACE_CARD, tmp_path).untested_reason(ClipFacts(long_side, True, face_px))
    assert (reason is not None) == untested
    if untested:
        assert ("on its long side" in reason) and ("640-1280 px" in reason or "100-240 px" in reason)


def test_a_scope_survives_the_manifest_round_trip():
    scope = card_scope(FACE_CARD)
    again = scope_from_dict(scope.as_dict())
    assert again == scope and again.long_side == (640.0, 1280.0) and again.recorded
    assert scope_from_dict(None) is None
    assert "trained and tested on real videos (ff, layout faceforensics)" in scope.describe()
    assert "faces 100-240 px" in scope.describe()


def test_a_malformed_scope_reads_as_unknown():
    scope = card_scope({"scope": {"data": "??", "long_side": "big", "face_px": [1, 2, 3], "test_called_fake": "x"}})
    assert (scope.data, scope.long_side, scope.face_px, scope.test_called_fake) == ("unknown", None, None, None)
