"""Why a file or a model was refused, in words an editor reads: one sentence per ``ErrorClass``.

The technical class and message stay in the results and exports, one click away in the page; what the
page says first is the sentence. A test checks that every ErrorClass has one, so a new class cannot be
left out.
"""

from __future__ import annotations

from pathlib import Path

from dfscan.kernels.errors import ErrorClass

PLAIN_WORDS: dict[ErrorClass, str] = {
    ErrorClass.NOT_FOUND: "the file is not there (moved or deleted)",
    ErrorClass.PERMISSION: "the file cannot be read (no permission)",
    ErrorClass.EMPTY: "the file is empty",
    ErrorClass.NOT_VIDEO: "this is not a video file",
    ErrorClass.CONTAINER_INVALID: "the file is incomplete (cut off) or damaged, or not a video file",
    ErrorClass.DECODE_ERROR: "the video is damaged: too few of its pictures can be decoded",
    ErrorClass.LIMIT_EXCEEDED: "the video is larger or longer than dfscan accepts",
    ErrorClass.TIMEOUT: "reading the video took too long, so it was given up",
    ErrorClass.UNSUPPORTED_CODEC: "the video is in a format (codec) dfscan cannot read",
    ErrorClass.DECODER_CRASH: "the video crashed the decoder every time it was read",
    ErrorClass.MODEL_REFUSED: "the model could not be used (its file was refused)",
}
# The container could not be opened: whether the bytes begin as a video container tells a cut-off
# download (it starts as a video) from a file that never was one.
NOT_A_VIDEO = PLAIN_WORDS[ErrorClass.NOT_VIDEO]
CUT_OFF = "the file is incomplete (cut off): it starts as a video but the rest is missing or damaged"
HEAD_BYTES = 192  # a transport stream shows its sync byte at 0 and again at 188


def starts_like_video(head: bytes) -> bool:
    """Whether the first bytes are those of a container dfscan reads: ISO BMFF (mp4, mov: a box type at
    byte 4), Matroska/WebM (EBML), AVI (RIFF....AVI ), MPEG program or transport streams."""
    return (head[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot")
            or head.startswith(b"\x1a\x45\xdf\xa3")
            or (head.startswith(b"RIFF") and head[8:12] == b"AVI ")
            or head.startswith(b"\x00\x00\x01\xba")
            or (len(head) > 188 and head[0] == head[188] == 0x47))


def file_head(path: str | Path) -> bytes:
    """The first bytes of a file, b"" when it cannot be read."""
    try:
        with open(path, "rb") as handle:
            return handle.read(HEAD_BYTES)
    except OSError:
        return b""


def plain_words(error_class: str | ErrorClass | None, head: bytes | None = None) -> str:
    """The sentence for an error class (a value as rows store it); ``head``, the file's first bytes
    where known, tells a cut-off video from a file that is not one."""
    try:
        known = ErrorClass(error_class)
    except ValueError:
        return "the file could not be checked"
    if known is ErrorClass.CONTAINER_INVALID and head is not None:
        return CUT_OFF if starts_like_video(head) else NOT_A_VIDEO
    return PLAIN_WORDS[known]
