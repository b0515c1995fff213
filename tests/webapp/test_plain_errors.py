"""Every refusal has a sentence an editor reads; a cut-off video is told from a file that is not one."""

from __future__ import annotations

from dfscan.kernels.errors import ErrorClass
from dfscan.scanner.webapp.check import run_check
from dfscan.scanner.webapp.models import discover
from dfscan.scanner.webapp.plain_errors import CUT_OFF, NOT_A_VIDEO, PLAIN_WORDS, plain_words, starts_like_video
from tests.webapp.stubs import fake_run, stub_load


def test_every_error_class_has_its_own_sentence():
    assert set(PLAIN_WORDS) == set(ErrorClass)  # a new class without words fails here
    assert len(set(PLAIN_WORDS.values())) == len(ErrorClass)
    assert all(words and not words.endswith(".") and words == words.strip() for words in PLAIN_WORDS.values())
    assert plain_words("NOT_VIDEO") == "this is not a video file"
    assert plain_words("SOMETHING_NEW") == "the file could not be checked"  # a row of a newer release


def test_container_signatures():
    assert starts_like_video(b"\x00\x00\x00\x20ftypisom")
    assert starts_like_video(b"\x1a\x45\xdf\xa3\x01")  # Matroska, WebM
    assert starts_like_video(b"RIFF\x00\x00\x00\x00AVI LIST")
    assert not starts_like_video(b"this is not a video")
    assert not starts_like_video(b"G" + b"x" * 200)  # a text starting with the TS sync byte's letter
    assert not starts_like_video(b"")


def test_a_cut_off_download_and_a_text_file_read_differently(tmp_path, clip_file):
    fake_run(tmp_path / "models", "a")
    models = discover([str(tmp_path / "models")]).models
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(clip_file.read_bytes()[:1500])
    text = tmp_path / "notes.mp4"
    text.write_bytes(b"this is not a video " * 200)
    said = {}
    for path in (cut, text):
        result = run_check(path, models, load=stub_load, progress=lambda f, t: None)
        error_class, message = result.file_error
        said[path.name] = (error_class, result.plain_error(error_class))
        assert result.results[0].error_class == error_class and str(path) not in message
    assert said == {"cut.mp4": ("CONTAINER_INVALID", CUT_OFF), "notes.mp4": ("CONTAINER_INVALID", NOT_A_VIDEO)}
    assert CUT_OFF.startswith("the file is incomplete (cut off)")
