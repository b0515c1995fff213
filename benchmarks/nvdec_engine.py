"""What NVDEC itself gives on this content, apart from dfscan's host side: two ``gpu_check`` stages.

- ``engine``: one decoder in one thread decodes every frame of each file, nothing copied out, no
  colour conversion or resize. A decoder session's pictures follow one another, so this is about one
  NVDEC engine's rate on the clip set; the H200 run of 2026-11-28 could not tell whether its uniform
  rate (62 % of the application note's limit, NVDEC 96 % busy) was the engines or that note.
- ``feed``: ``NvdecDecoder`` alone (probe and cut done beforehand) on keyframe plans, fed one packet
  per run of the cut against one per access unit, the same frames checked equal: the host time each
  ``Decode`` call costs, which bounded keyframe scans on the H200.

The streams are cut and held in memory before the clock starts, so neither stage times the demux.
On a CPU both run against a stand-in for PyNvVideoCodec (tests/benchmarks/test_nvdec_engine.py).
"""

from __future__ import annotations

import time

import numpy as np

from dfscan.benchmarks.gpu_e2e import CheckFailed
from dfscan.kernels.decode.gops import cut_to_annex_b
from dfscan.kernels.decode.nvdec import NVDEC_FEEDS, NvdecDecoder, load_pynvvideocodec
from dfscan.kernels.probe import probe
from dfscan.kernels.sampling import plan_indices

CHUNK_BYTES = 1 << 20  # a whole file in pieces of this size: the parser finds the pictures itself


class EngineCheckFailed(CheckFailed):
    """A stage's frames are not what the files hold."""


def engine_rate(paths: list[str]) -> dict:
    """Every frame of every file through one persistent decoder, counted and dropped."""
    nvc = load_pynvvideocodec()
    owner = NvdecDecoder(size=8)  # its persistent decoders, reconfigured per file as in a scan
    streams = []
    for path in paths:
        facts = probe(path)
        cut = cut_to_annex_b(facts, np.arange(facts.frame_count))
        streams.append((facts, cut.data, len(cut.frames)))
    owner.decoder_for(streams[0][0])  # creating the decoder is not the engine's rate
    produced, expected = 0, sum(count for _, _, count in streams)
    started = time.perf_counter()
    for facts, data, _ in streams:
        _, decoder = owner.decoder_for(facts)
        payload = np.frombuffer(data, dtype=np.uint8)
        for start in [*range(0, len(data), CHUNK_BYTES), None]:  # None: the flush
            packet = nvc.PacketData()
            if start is not None:
                piece = payload[start:start + CHUNK_BYTES]
                packet.bsl_data, packet.bsl = piece.ctypes.data, piece.size
            produced += len(decoder.Decode(packet))
    seconds = time.perf_counter() - started
    if produced != expected:
        raise EngineCheckFailed(f"NVDEC returned {produced} frames where the files hold {expected}")
    return {"videos_per_s": len(paths) / seconds, "frames_decoded_per_s": produced / seconds,
            "seconds": seconds, "videos": len(paths), "frames": produced, "threads": 1, "resize": None}


def feed_rates(paths: list[str], frames: int, size: int) -> dict:
    """Keyframe plans through ``NvdecDecoder`` with each feed; the clips must be equal."""
    probes = [probe(path) for path in paths]
    plans = [plan_indices("keyframe", p.frame_count, p.keyframes, frames) for p in probes]
    result, clips = {}, {}
    for feed in NVDEC_FEEDS:
        decoder = NvdecDecoder(size=size, feed=feed)
        decoder.decode_batch(probes[:1], plans[:1])  # builds the decoder and the conversion
        fed_before, decoded_before = decoder.packets_fed, decoder.frames_decoded
        started = time.perf_counter()
        out, errors = decoder.decode_batch(probes, plans)
        seconds = time.perf_counter() - started
        failed = [f"{p.path}: {e}" for p, e in zip(probes, errors) if e is not None]
        if failed:
            raise EngineCheckFailed(f"feed={feed}: {failed[0]}")
        clips[feed] = [np.asarray(clip) for clip in out]  # (F, S, S, 3) uint8, to the host for the check
        result[feed] = {"videos_per_s": len(paths) / seconds,
                        "frames_decoded_per_s": (decoder.frames_decoded - decoded_before) / seconds,
                        "packets_per_video": (decoder.packets_fed - fed_before) / len(paths), "seconds": seconds}
    unequal = [p.path for p, a, b in zip(probes, *clips.values()) if not np.array_equal(a, b)]
    if unequal:
        raise EngineCheckFailed(f"feed=run and feed=unit gave different frames for {len(unequal)} files, "
                                f"first {unequal[0]}")
    return {**result["run"], "videos": len(paths), "by_feed": result,
            "unit_over_run_seconds": result["unit"]["seconds"] / result["run"]["seconds"]}
