import numpy as np
import pytest

from dfscan.kernels.sampling import decoded_frame_cost, keyframe_plan, plan_indices, shift_indices, split_unique, uniform_plan


def test_uniform_is_the_seed_linspace():
    assert uniform_plan(300, 20).tolist() == np.linspace(0, 299, 20).round().astype(int).tolist()
    assert uniform_plan(300, 20)[:4].tolist() == [0, 16, 31, 47]
    assert uniform_plan(20, 20).tolist() == list(range(20))


@pytest.mark.parametrize("frame_count, expected", [
    (1, [0] * 20),
    (5, [0, 1, 2, 3] + [4] * 16),
    (19, list(range(19)) + [18]),
])
def test_short_videos_repeat_the_last_frame(frame_count, expected):
    assert uniform_plan(frame_count, 20).tolist() == expected
    assert keyframe_plan(frame_count, [0], 20).tolist() == expected


def test_keyframe_plan_takes_runs_after_keyframes():
    assert keyframe_plan(300, [0, 250], 20).tolist() == list(range(10)) + list(range(250, 260))
    every_12 = list(range(0, 300, 12))
    plan = keyframe_plan(300, every_12, 20)
    assert len(plan) == 20 and len(set(plan.tolist())) == 20
    assert set(plan.tolist()) <= set(every_12)  # one frame per GOP: nothing decoded but keyframes


def test_keyframe_plan_needs_far_less_decoding_on_long_gops():
    keys = [0, 250]
    uniform_cost = decoded_frame_cost(uniform_plan(300, 20), keys)
    keyframe_cost = decoded_frame_cost(keyframe_plan(300, keys, 20), keys)
    assert keyframe_cost == 20
    assert uniform_cost == 287  # 0..236 from frame 0, then 250..299 after the seek
    assert uniform_cost / keyframe_cost > 10


def test_keyframe_plan_spills_into_more_gops_when_gops_are_short():
    plan = keyframe_plan(100, [0, 3, 50, 53], 20)
    assert len(plan) == 20
    assert plan.tolist() == sorted(plan.tolist())
    assert len(set(plan.tolist())) == 20


def test_plans_are_sorted_and_in_range():
    for n in (20, 21, 57, 1000):
        for keys in ([0], [0, 7], list(range(0, n, 30))):
            plan = keyframe_plan(n, keys, 20)
            assert plan.min() >= 0 and plan.max() < n and np.all(np.diff(plan) > 0)


def test_unknown_mode_and_bad_counts_are_refused():
    with pytest.raises(ValueError, match="unknown sampling"):
        plan_indices("random", 10, [0], 20)
    with pytest.raises(ValueError):
        uniform_plan(0, 20)


def test_shift_and_split():
    assert shift_indices(np.array([0, 5, 9]), 3, 10).tolist() == [3, 8, 9]
    assert shift_indices(np.array([0, 5, 9]), -2, 10).tolist() == [0, 3, 7]
    unique, inverse = split_unique(np.array([0, 1, 4, 4, 4]))
    assert unique.tolist() == [0, 1, 4] and inverse.tolist() == [0, 1, 2, 2, 2]
