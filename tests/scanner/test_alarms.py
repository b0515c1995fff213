"""Scan-level alarms: each fires on the rows it describes, names its number, and stays quiet on a
normal spread."""

from __future__ import annotations

import dataclasses

import numpy as np
import pyarrow as pa
import pytest

from dfscan.kernels.scope import card_scope, measure_scope, p_fake_quantiles
from dfscan.scanner import verdicts
from dfscan.scanner.alarms import SHIFT_DISTANCE, AlarmKind, OutcomeStats, shift_distance, table_alarms

RNG = np.random.default_rng(0)
# A card measured on 25 real videos scoring 0-0.3 and 25 fakes scoring 0.7-1, videos 640-1280 px.
TEST_Y = [0] * 25 + [1] * 25
TEST_P = list(np.linspace(0.0, 0.3, 25)) + list(np.linspace(0.7, 1.0, 25))
SCOPE = card_scope({"scope": measure_scope(
    data="real", dataset="celeb", layout="celeb-df-v2", videos={"test": {"real": 25, "fake": 25}},
    test_metrics={"p_fake_quantiles": p_fake_quantiles(TEST_Y, TEST_P), "n_videos": 50,
                  "confusion": [[25, 0], [0, 25]]})})
SCOPE = dataclasses.replace(SCOPE, long_side=(640.0, 1280.0))


def ok_row(p_fake: float, *, long_side: int = 1280, face_found: bool | None = None, untested: str | None = None) -> dict:
    return {"status": "ok", **verdicts.ok_outcome(p_fake, 0.5, 0.1, untested), "display_width": long_side,
            "display_height": long_side * 9 // 16, "face_found": face_found, "face_box": None}


def kinds(rows, scope=SCOPE) -> dict:
    stats = OutcomeStats(scope)
    for row in rows:
        stats.add(row)
    return {alarm.kind: alarm for alarm in stats.alarms()}


def test_one_answer_to_everything():
    # The night: 215 real clips, every one called fake at p_fake 0.98-0.995.
    rows = [ok_row(p) for p in np.linspace(0.98, 0.995, 215)]
    alarm = kinds(rows)[AlarmKind.ONE_CLASS]
    assert alarm.message.startswith("the model called 215 of 215 files fake (p_fake 0.980-0.995): a model that "
                                    "gives one answer to everything is not measuring these files")
    assert alarm.value == 1.0


def test_a_mostly_real_archive_is_normal_but_a_collapsed_one_is_not():
    spread = [ok_row(p) for p in np.linspace(0.0, 0.35, 100)]  # a newsroom's real footage: all real, spread out
    assert AlarmKind.ONE_CLASS not in kinds(spread)
    collapsed = [ok_row(p) for p in np.linspace(0.010, 0.012, 100)]
    assert kinds(collapsed)[AlarmKind.ONE_CLASS].message.startswith("the model called 100 of 100 files real")
    # 94 of 100 fake is not "one class": the share must reach 95 %.
    mixed = [ok_row(0.99)] * 94 + [ok_row(0.01)] * 6
    assert AlarmKind.ONE_CLASS not in kinds(mixed)
    assert AlarmKind.ONE_CLASS in kinds([ok_row(0.99)] * 95 + [ok_row(0.01)] * 5)
    assert kinds([ok_row(0.99)] * 9) == {}  # too few files to judge a model by


def test_a_run_that_does_not_score_like_the_test_videos():
    middle = [ok_row(p) for p in RNG.uniform(0.45, 0.55, 200)]  # the card's test never scored there
    alarm = kinds(middle)[AlarmKind.DISTRIBUTION_SHIFT]
    assert alarm.value > SHIFT_DISTANCE and f"{alarm.value:.2f}" in alarm.message
    like_test = [ok_row(p) for p in RNG.choice(TEST_P, 200)]  # any mix of the two classes is in place
    assert AlarmKind.DISTRIBUTION_SHIFT not in kinds(like_test)
    mostly_real = [ok_row(p) for p in RNG.uniform(0.0, 0.3, 180)] + [ok_row(p) for p in RNG.uniform(0.7, 1.0, 20)]
    assert kinds(mostly_real) == {}


def test_the_distance_is_the_kolmogorov_smirnov_one():
    histogram = np.zeros(1000, dtype=np.int64)
    histogram[500] = 10  # every file at 0.5
    quantiles = p_fake_quantiles(TEST_Y, TEST_P)
    # At 0.5 the real CDF is 1 and the fake CDF 0: half real, half fake leaves a gap of 0.5 on either side.
    assert shift_distance(histogram, quantiles) == pytest.approx(0.5, abs=0.01)
    assert shift_distance(histogram, {"levels": quantiles["levels"], "real": None, "fake": quantiles["fake"]}) is None


def test_a_face_model_that_found_few_faces():
    rows = [ok_row(0.2, face_found=True)] * 3 + [ok_row(0.2, face_found=False)] * 7
    alarm = kinds(rows)[AlarmKind.FEW_FACES]
    assert alarm.message.startswith("the face model found a face in 3 of 10 files (30%)") and alarm.value == 0.3
    assert AlarmKind.FEW_FACES not in kinds([ok_row(0.2, face_found=True)] * 5 + [ok_row(0.2, face_found=False)] * 5)


def test_most_files_outside_the_resolutions_seen():
    rows = [ok_row(0.2, long_side=3840)] * 6 + [ok_row(0.2)] * 4
    alarm = kinds(rows)[AlarmKind.OUT_OF_RANGE]
    assert alarm.message.startswith("6 of 10 files (60%) are far outside the resolutions the model was measured on "
                                    "(640-1280 px")
    assert AlarmKind.OUT_OF_RANGE not in kinds([ok_row(0.2, long_side=3840)] * 5 + [ok_row(0.2)] * 5)
    assert AlarmKind.OUT_OF_RANGE not in kinds(rows, scope=None)  # an old card: no range known


def test_most_conclusions_untested():
    rows = [ok_row(0.3, untested="the model saw synthetic videos only")] * 6 + [ok_row(0.3)] * 4
    alarm = kinds(rows)[AlarmKind.UNTESTED]
    assert alarm.message == "6 of 10 conclusions are untested, most because the model saw synthetic videos only"
    assert alarm.as_dict() == {"kind": "UNTESTED", "message": alarm.message, "value": 0.6}


def test_errors_are_not_judged_and_a_table_gives_the_same_alarms():
    rows = [ok_row(p) for p in np.linspace(0.98, 0.995, 12)]
    errors = [{"status": "error", **verdicts.error_outcome("NOT_VIDEO", "x")}] * 50
    assert list(kinds(rows + errors)) == [AlarmKind.ONE_CLASS]
    table = verdicts.rows_to_table([{"path": f"{i}.mp4", **row} for i, row in enumerate(rows + errors)])
    assert [a.as_dict() for a in table_alarms(table, SCOPE)] == [a.as_dict() for a in kinds(rows).values()]
    assert isinstance(table, pa.Table)
