from dfscan.benchmarks.decode_bound import run_decode_bound
from tests.media import write_corrupt_corpus, write_index_video


def test_decode_bound_counts_every_frame_and_survives_bad_files(tmp_path):
    good = [str(write_index_video(tmp_path / f"g{i}", 17 + i, "h264")) for i in range(2)]
    bad = [str(tmp_path / "bad" / name) for name in write_corrupt_corpus(tmp_path / "bad")]
    result = run_decode_bound(good + bad, parallel_files=2)
    assert result.videos == 2 + len(bad)
    assert result.frames_decoded == 17 + 18
