"""The device run's scan stage (benchmarks/scan_check.py): the archive of copies, the agreement
arithmetic, and p_fake agreement between decoders on the same clips: nvdec's CPU stand-in against PyAV
here, nvdec and dali-gpu against PyAV on a GPU (marked gpu): median difference at most 0.02."""

import os

import numpy as np
import pytest

from dfscan.benchmarks import scan_check
from tests.kernels.nvdec_fake import fake_nvc  # noqa: F401 - the fixture


def test_the_archive_is_copies_of_a_few_encoded_files(tmp_path):
    paths = scan_check.write_scan_archive(tmp_path, videos=5, distinct=2, resolution="64x48", seconds=0.2)
    assert [p.name for p in paths] == [f"video_{n:05d}.mp4" for n in range(5)]
    assert len({os.stat(p).st_ino for p in paths}) == 2  # hard links of the two encodes
    assert paths[0].read_bytes() == paths[2].read_bytes() != paths[1].read_bytes()
    again = scan_check.write_scan_archive(tmp_path, videos=5, distinct=2, resolution="64x48", seconds=0.2)
    assert again == paths  # kept, not encoded again


def test_agreement_is_the_median_and_max_per_file_difference_on_shared_files():
    scores = {"nvdec:4": {"a": 0.5, "b": 0.7, "c": 0.1, "d": 0.9},
              "pyav:4": {"a": 0.52, "b": 0.7, "c": 0.2},
              "dali-gpu:1": {}}
    pairs = {row["pair"]: row for row in scan_check.agreement(scores)}
    assert pairs["nvdec:4 vs pyav:4"]["files"] == 3
    assert pairs["nvdec:4 vs pyav:4"]["median"] == pytest.approx(0.02)
    assert pairs["nvdec:4 vs pyav:4"]["max"] == pytest.approx(0.1)
    assert pairs["nvdec:4 vs pyav:4"]["p_fake_spread"] == pytest.approx(0.6)
    assert pairs["dali-gpu:1 vs nvdec:4"]["files"] == 0


def agreement_clips(directory) -> list[str]:
    from dfscan.benchmarks.archive import write_bench_video

    return [str(write_bench_video(directory / f"agree_{i}.mp4", 320, 240, 40, 30, "h264", seed=i, block=64))
            for i in range(8)]


def assert_decoders_agree(scores: dict, decoders: list[str]) -> None:
    assert all(len(scores[d]) == 8 for d in decoders), {d: len(s) for d, s in scores.items()}
    reference = np.array([scores["pyav"][p] for p in sorted(scores["pyav"])])
    for decoder in decoders:
        if decoder == "pyav":
            continue
        mine = np.array([scores[decoder][p] for p in sorted(scores["pyav"])])
        difference = np.abs(mine - reference)
        assert np.median(difference) <= scan_check.MAX_MEDIAN_DIFFERENCE, (decoder, difference)
    # Not vacuous: the model tells the clips apart by more than the decoders disagree.
    assert reference.max() - reference.min() > 0.05, reference


def test_p_fake_of_the_nvdec_stand_in_agrees_with_pyav(tmp_path, fake_nvc):
    model = scan_check.save_scan_model(tmp_path / "model", "cnn-lstm", 8, 64, "keyframe")
    scores = scan_check.p_fake_by_decoder(agreement_clips(tmp_path), model, ["nvdec", "pyav"], gpu=True)
    assert_decoders_agree(scores, ["nvdec", "pyav"])


@pytest.mark.gpu
def test_p_fake_of_the_gpu_decoders_agrees_with_pyav(tmp_path):
    model = scan_check.save_scan_model(tmp_path / "model", "cnn-lstm", 8, 64, "keyframe")
    scores = scan_check.p_fake_by_decoder(agreement_clips(tmp_path), model, ["nvdec", "dali-gpu", "pyav"])
    assert_decoders_agree(scores, ["nvdec", "dali-gpu", "pyav"])
