"""`dfscan evaluate` says where its videos lie against the model's scope: faces found, and videos a scan
would conclude untested, with warnings when the metrics measure the model outside what it was made for."""

from __future__ import annotations

from dfscan.kernels.scope import UNTESTED_NO_FACE, UNTESTED_SYNTHETIC, ClipFacts, measure_scope, scope_rule
from dfscan.training.evaluate import scope_report

FACE_CARD = {"crop": "face", "scope": measure_scope(data="synthetic", dataset="archive", layout="labels.csv",
                                                     videos={}, test_metrics=None, face_model=True,
                                                     train_facts=[ClipFacts(128, True, 50.0)])}


def test_faces_too_small_to_find_are_named(tmp_path):
    (tmp_path / "dfscan-synth.json").write_text("{}")  # the model's own kind of data
    facts = [ClipFacts(64, False, None)] * 62 + [ClipFacts(64, True, 40.0)] * 2
    report = scope_report(scope_rule(FACE_CARD, tmp_path), facts)
    assert report["faces_found"] == {"videos": 2, "of": 64}
    assert report["untested_videos"] == 62 and report["untested_reasons"] == {UNTESTED_NO_FACE: 62}
    assert report["scope_warnings"][0].startswith("a face was found in only 2 of 64 videos (3%)")
    assert report["scope_warnings"][1] == f"62 of 64 videos lie outside the model's scope (a scan would conclude " \
                                          f"'untested'), 62 because {UNTESTED_NO_FACE}"


def test_real_data_for_a_synthetic_model_is_outside_its_scope(tmp_path):
    report = scope_report(scope_rule(FACE_CARD, tmp_path), [ClipFacts(128, True, 50.0)] * 10)
    assert report["faces_found"] == {"videos": 10, "of": 10} and report["untested_videos"] == 10
    assert report["scope_warnings"] == [f"10 of 10 videos lie outside the model's scope (a scan would conclude "
                                        f"'untested'), 10 because {UNTESTED_SYNTHETIC}"]
    assert report["scope"].startswith("trained and tested on synthetic videos only")


def test_in_scope_data_raises_no_warning(tmp_path):
    (tmp_path / "dfscan-synth.json").write_text("{}")
    report = scope_report(scope_rule(FACE_CARD, tmp_path), [ClipFacts(128, True, 50.0)] * 10)
    assert report["scope_warnings"] == [] and report["untested_videos"] == 0
