"""The MP3 codec of the segment encoder (``pipeline/segments.py``): LAME through ffmpeg.

LAME's bit reservoir is off, so no frame borrows bits from the one before it and the kept
frames of all segments join into one valid stream (the tests decode it against the mix);
a segment gets ``CONTEXT_FRAMES`` of its neighbours each side (0.1 s: the limiter's
release, the MDCT overlap). The joined frames get ffmpeg's Info header (frame count,
size, seek table), into which the encoder delay and padding of the LAME tag are written,
so gapless decoders give back exactly the mix's samples.
"""

from __future__ import annotations

import functools
import io
import shutil
import subprocess
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from mutagen.mp3 import HeaderNotFoundError, MPEGFrame

from pipeline.cache import SegmentReading
from pipeline.delivery import BITRATE, FRAME, SAMPLE_RATE
from pipeline.errors import PipelineError
from pipeline.files import temporary_name
from pipeline.loudness import BLOCK_S, Measurement, measure_stream, require_ffmpeg

LAME_SCALE_DB = -0.446  # LAME scales its input by 0.95 by default: the file is this much quieter
ENCODER_DELAY = 576  # LAME's priming samples, written to the LAME tag
DECODER_DELAY = 529  # the decoder's own delay: 576 + 529 samples come before the audio
CONTEXT_FRAMES = 4  # 0.1 s of context each side: the limiter's release, the MDCT overlap
SEGMENT_VERSION = 1  # bump when the way a segment is encoded changes
_LAME_DELAY = 141  # LAME tag offsets from the "Info" tag (ffmpeg's mp3enc.c)
_LAME_TAG_CRC = 154
_CRC_SPAN = 190  # the tag CRC covers the frame's first 190 bytes (CRC field zeroed)


@dataclass(frozen=True)
class Mp3Codec:
    """CBR MP3 at ``bitrate``, 44.1 kHz, bit reservoir off (see above)."""

    bitrate: str = BITRATE
    """Constant bitrate."""

    frame: int = FRAME
    rate: int = SAMPLE_RATE
    before: int = CONTEXT_FRAMES
    after: int = CONTEXT_FRAMES
    level_db: float = LAME_SCALE_DB
    preroll: int = 2  # the first kept frame is decoded whole (the bit reservoir is off)

    def settings(self) -> str:
        """The segment key's codec part (the key's text since MP3 segments were first kept)."""
        return f"mp3-segment {SEGMENT_VERSION} {encoder_version()} {self.bitrate}"

    def frames(self, window: np.ndarray, filters: str) -> list[bytes]:
        """The window through ``filters`` and LAME, frame by frame."""
        output = ["-ar", str(SAMPLE_RATE), "-c:a", "libmp3lame", "-b:a", self.bitrate]
        output += ["-reservoir", "0", "-write_xing", "0", "-id3v2_version", "0", "-f", "mp3"]
        return split_frames(encode_pcm(window, filters, output))

    def meter(self, frames: Sequence[bytes], lead: int) -> SegmentReading:
        """The frames as decoded, through ffmpeg's meter (see ``segment_reading``)."""
        measured = measure_stream(b"".join(frames), "mp3", "a segment")
        return segment_reading(measured, lead * FRAME / SAMPLE_RATE)

    def pack(self, frames: Sequence[bytes]) -> bytes:
        """The frames, joined."""
        return b"".join(frames)

    def write(self, parts: Iterable[tuple[bytes, int | None]], path: Path, length: int) -> None:
        """The segments' frames as one gapless MP3 of ``length`` samples (cuts fall on
        frames, so every segment's frames are taken)."""
        _join((data for data, _ in parts), path)
        _write_lame_delay(path, length)


MP3 = Mp3Codec()


def _join(segments: Iterable[bytes], path: Path) -> None:
    """The segments' frames as one MP3 file at ``path`` (ffmpeg writes its header)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # Named with the process id, so a run killed here leaves a folder the next one sweeps.
    tmp = temporary_name(path.with_name("mp3"), ".tmp")
    tmp.mkdir()
    try:
        raw = tmp / "frames.mp3"
        with raw.open("wb") as handle:
            for data in segments:
                handle.write(data)
        _remux(raw, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def split_frames(data: bytes) -> list[bytes]:
    """A headerless MPEG audio stream cut into its frames (mutagen reads each header)."""
    stream, frames = io.BytesIO(data), []
    while stream.tell() < len(data):
        start = stream.tell()
        try:
            MPEGFrame(stream)
        except HeaderNotFoundError as exc:
            raise PipelineError(f"LAME wrote an unreadable frame at byte {start}: {exc}") from exc
        frames.append(data[start : stream.tell()])
    return frames


def encoder_version() -> str:
    """ffmpeg's version line: part of segment keys, so a new ffmpeg encodes afresh."""
    # Asked at once by both codecs' encoding threads: one ffmpeg run, not one each.
    with _VERSION_LOCK:
        return _encoder_version()


_VERSION_LOCK = threading.Lock()


@functools.cache
def _encoder_version() -> str:
    args = [require_ffmpeg(), "-hide_banner", "-version"]
    return _run(args, b"").stdout.decode("utf-8", errors="replace").splitlines()[0]


def _run(args: list[str], data: bytes | memoryview) -> subprocess.CompletedProcess[bytes]:
    result = subprocess.run(args, input=data, capture_output=True, check=False)
    if result.returncode != 0:
        detail = result.stderr.decode("utf-8", errors="replace").strip()[-300:]
        raise PipelineError(f"ffmpeg failed: {detail}")
    return result


def encode_pcm(window: np.ndarray, filters: str, output: list[str]) -> bytes:
    """The window (mix samples, 32-bit float) through ``filters`` and the encoder that
    ffmpeg's ``output`` arguments name, as the bytes it writes to its stdout."""
    channels = str(window.shape[1] if window.ndim == 2 else 1)
    args = [require_ffmpeg(), "-hide_banner", "-loglevel", "error", "-f", "f32le"]
    args += ["-ar", str(SAMPLE_RATE), "-ac", channels, "-i", "pipe:0", "-af", filters]
    args += ["-ac", channels, *output, "pipe:1"]
    # As bytes: subprocess counts a memoryview in items, and a float is four of them.
    return _run(args, memoryview(np.ascontiguousarray(window, dtype="<f4")).cast("B")).stdout


def segment_reading(measured: Measurement, lead_s: float) -> SegmentReading:
    """What the meter read of a segment decoded from ``lead_s`` before its start: its true
    peak, and its momentary loudness every 100 ms from 400 ms into the segment."""
    ticks = [
        (round(t - lead_s, 3), m)
        for t, m in zip(measured.times, measured.momentary, strict=True)
        if t - lead_s >= BLOCK_S - 1e-6
    ]
    return SegmentReading(
        measured.true_peak_db, tuple(t for t, _ in ticks), tuple(m for _, m in ticks)
    )


def _remux(raw: Path, path: Path) -> None:
    """Frames to an MP3 with an Info header: ffmpeg counts them and builds the seek table."""
    args = [
        require_ffmpeg(),
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",
        "-f",
        "mp3",
        "-i",
        str(raw),
    ]
    args += ["-c:a", "copy", "-write_xing", "1", "-id3v2_version", "0", "-f", "mp3", str(path)]
    _run(args, b"")


def _write_lame_delay(path: Path, length: int) -> None:
    """Write LAME's encoder delay and the end padding into the Info frame's LAME tag (a
    stream copy cannot know them), and the tag's CRC again."""
    with path.open("r+b") as handle:
        header = handle.read(2 * FRAME)
        stream = io.BytesIO(header)
        MPEGFrame(stream)
        frame = bytearray(header[: stream.tell()])
        tag = frame.find(b"Info")
        if tag < 0:
            raise PipelineError(f"ffmpeg wrote no Info header to {path}")
        frames = int.from_bytes(frame[tag + 8 : tag + 12], "big")
        padding = frames * FRAME - length - ENCODER_DELAY
        if not DECODER_DELAY <= padding < 4096:
            raise PipelineError(f"{frames} frames cannot hold {length} samples")
        delay = (ENCODER_DELAY << 12) | padding
        frame[tag + _LAME_DELAY : tag + _LAME_DELAY + 3] = delay.to_bytes(3, "big")
        crc = slice(tag + _LAME_TAG_CRC, tag + _LAME_TAG_CRC + 2)
        frame[crc] = b"\0\0"
        frame[crc] = crc16(bytes(frame[:_CRC_SPAN])).to_bytes(2, "big")
        handle.seek(0)
        handle.write(frame)


def crc16(data: bytes) -> int:
    """CRC-16/ARC (polynomial 0x8005, reflected), the LAME tag's checksum."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc
