"""MP3 encoding a segment at a time, so an edit re-encodes only the part it changed.

The mix is cut at MPEG frame boundaries (1152 samples; chapters start on them, see
``pipeline/assemble.py``). Each segment goes through the mastering filters and LAME with
``CONTEXT_FRAMES`` of its neighbours' audio before and after it, so the limiter and the
encoder reach its edges in the state one continuous encode would have; only the frames
that belong to the segment are kept. LAME's bit reservoir is off, so no frame borrows bits
from the one before it, and the kept frames of all segments join into one valid stream
(the tests decode it against the mix). Segments are encoded in parallel, and with a cache
each one's frames are kept under a hash of everything that made them (its samples and
context, the filters, the encoder settings): after an edit only the segments whose audio
changed are encoded again.

The joined frames get ffmpeg's Info header (frame count, size, seek table), into which the
encoder delay and padding of the LAME tag are written, so gapless decoders give back
exactly the mix's samples.
"""

from __future__ import annotations

import functools
import hashlib
import io
import itertools
import shutil
import subprocess
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from mutagen.mp3 import HeaderNotFoundError, MPEGFrame

from pipeline.audio import Audio
from pipeline.cache import SegmentCache, SegmentReading
from pipeline.delivery import BITRATE, FRAME, SAMPLE_RATE
from pipeline.errors import PipelineError
from pipeline.files import temporary_name
from pipeline.loudness import BLOCK_S, measure_mp3, require_ffmpeg

LAME_SCALE_DB = -0.446  # LAME scales its input by 0.95 by default: the file is this much quieter
ENCODER_DELAY = 576  # LAME's priming samples, written to the LAME tag
DECODER_DELAY = 529  # the decoder's own delay: 576 + 529 samples come before the audio
CONTEXT_FRAMES = 4  # 0.1 s of context each side: the limiter's release, the MDCT overlap
# Cuts go this far before a chapter's first sound: then neither side's context reaches the
# other side's sound as long as 0.24 s of silence comes first (the music gap is 0.3 s).
LEAD_FRAMES = CONTEXT_FRAMES + 1
SPAN = 2048 * FRAME  # longest segment, 53 s: an edit re-encodes about this much
SEGMENT_VERSION = 1  # bump when the way a segment is encoded changes
_LAME_DELAY = 141  # LAME tag offsets from the "Info" tag (ffmpeg's mp3enc.c)
_LAME_TAG_CRC = 154
_CRC_SPAN = 190  # the tag CRC covers the frame's first 190 bytes (CRC field zeroed)


@dataclass(frozen=True)
class Segment:
    """A run of whole frames of the mix, encoded on its own."""

    start: int
    """First sample (a multiple of ``FRAME``)."""

    end: int
    """One past the last sample (a multiple of ``FRAME``, or the mix's end)."""


@dataclass(frozen=True)
class Encoded:
    """An MP3 written from segments."""

    path: Path
    """The file."""

    true_peak_db: float
    """Highest true peak of the decoded segments (dBTP)."""

    times: tuple[float, ...]
    """Seconds at which the segments' momentary loudness was read, every 100 ms (not in
    the first 400 ms of a segment: a block there would reach into its neighbour)."""

    momentary: tuple[float, ...]
    """Momentary loudness (400 ms) at each of ``times``, LUFS: the blocks whose gating
    gives the file's integrated loudness (``pipeline/loudness.py``)."""

    encoded: int
    """Segments encoded this time."""

    reused: int
    """Segments whose frames came from the cache."""


def segments(
    length: int, anchors: Sequence[int], span: int = SPAN, lead: int = LEAD_FRAMES * FRAME
) -> list[Segment]:
    """The mix of ``length`` samples cut ``lead`` samples before each of the ``anchors``
    that fall on a frame (chapter starts), and every ``span`` samples after that. Cutting
    in the silence before a chapter keeps each side's context out of the other's sound,
    and the cuts stay put, relative to their chapter, when something before it changes
    length: an edit re-encodes only the segments it reaches."""
    starts = sorted({0} | {a - lead for a in anchors if lead < a < length and a % FRAME == 0})
    cuts = [c for a, b in itertools.pairwise([*starts, length]) for c in range(a, b, span)]
    return [Segment(a, b) for a, b in itertools.pairwise([*cuts, length])]


@dataclass
class SegmentEncoder:
    """The mix's encoder, which mastering drives (``pipeline/master.py``): each pass
    writes ``path`` through new filters, a segment at a time, on ``workers`` threads,
    encoding again only the segments ``cache`` does not hold."""

    audio: Audio
    """The mix."""

    path: Path
    """Where the MP3 goes."""

    chapters: Sequence[int] = ()
    """Chapter starts (samples): segments are cut just before them (see ``segments``)."""

    cache: SegmentCache | None = None
    """Segments already encoded (None: encode every one)."""

    workers: int = 1
    """Segments encoded at once."""

    last: Encoded | None = None
    """What the last pass wrote."""

    @property
    def sample_rate(self) -> int:
        """The mix's sample rate."""
        return self.audio.sample_rate

    @property
    def level_db(self) -> float:
        """How much quieter the file is than what the filters give it (LAME's scale)."""
        return LAME_SCALE_DB

    def encode(self, filters: str) -> Encoded:
        """Write the MP3 through ``filters`` (an ffmpeg filter graph)."""
        samples, rate = self.audio.samples, self.audio.sample_rate
        parts = segments(len(samples), self.chapters)
        self.last = encode_segments(
            samples, rate, parts, filters, self.path, self.cache, self.workers
        )
        return self.last


def encode_segments(
    samples: np.ndarray,
    rate: int,
    parts: Sequence[Segment],
    filters: str,
    path: Path,
    cache: SegmentCache | None = None,
    workers: int = 1,
    bitrate: str = BITRATE,
) -> Encoded:
    """Encode ``samples`` (mono, or stereo as (n, 2)) through ``filters`` to a CBR MP3 at
    ``path``, a segment at a time (in parallel, on ``workers`` threads driving ffmpeg),
    reusing cached segments."""
    if rate != SAMPLE_RATE:
        raise ValueError(f"segments are cut on {SAMPLE_RATE} Hz frames, not {rate} Hz")
    length = len(samples)

    def one(part: Segment) -> tuple[bytes, SegmentReading, bool]:
        return _encode_segment(samples, part, filters, bitrate, cache)

    pool = ThreadPoolExecutor(max_workers=max(1, workers))
    try:
        results = list(pool.map(one, parts))
    finally:  # on Ctrl-C, start no more segments
        pool.shutdown(wait=True, cancel_futures=True)
    _join([data for data, _, _ in results], path)
    _write_lame_delay(path, length)
    times = [
        part.start / SAMPLE_RATE + t
        for part, (_, reading, _) in zip(parts, results, strict=True)
        for t in reading.times
    ]
    return Encoded(
        path=path,
        true_peak_db=max(reading.true_peak_db for _, reading, _ in results),
        times=tuple(times),
        momentary=tuple(m for _, reading, _ in results for m in reading.momentary),
        encoded=sum(1 for *_, new in results if new),
        reused=sum(1 for *_, new in results if not new),
    )


def _encode_segment(
    samples: np.ndarray,
    part: Segment,
    filters: str,
    bitrate: str,
    cache: SegmentCache | None,
) -> tuple[bytes, SegmentReading, bool]:
    """One segment's frames and reading, from the cache or encoded now (and whether it was
    encoded now), with ``CONTEXT_FRAMES`` of its neighbours around it (see above)."""
    length = len(samples)
    last = part.end == length
    lo = max(0, part.start - CONTEXT_FRAMES * FRAME)
    hi = length if last else min(length, part.end + CONTEXT_FRAMES * FRAME)
    window = samples[lo:hi]
    skip, keep = (part.start - lo) // FRAME, None if last else (part.end - part.start) // FRAME
    key = _key(window, filters, bitrate, skip, keep)
    found = cache.get(key) if cache is not None else None
    if found is not None:
        return *found, False
    frames = split_frames(_lame(window, SAMPLE_RATE, filters, bitrate))
    kept = frames[skip:] if keep is None else frames[skip : skip + keep]
    if keep is not None and len(kept) != keep:
        raise PipelineError(f"LAME gave {len(frames)} frames for a {hi - lo}-sample segment")
    # Decoded from up to two frames earlier, so the first kept frame is decoded whole.
    before = min(skip, 2)
    frames_read = b"".join(frames[skip - before : skip + len(kept)])
    reading = _meter(frames_read, before * FRAME / SAMPLE_RATE)
    data = b"".join(kept)
    if cache is not None:
        cache.put(key, data, reading)
    return data, reading, True


def _join(segments: list[bytes], path: Path) -> None:
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


@functools.cache
def encoder_version() -> str:
    """ffmpeg's version line: part of segment keys, so a new ffmpeg encodes afresh."""
    args = [require_ffmpeg(), "-hide_banner", "-version"]
    return _run(args, b"").stdout.decode("utf-8", errors="replace").splitlines()[0]


def _key(window: np.ndarray, filters: str, bitrate: str, skip: int, keep: int | None) -> str:
    settings = f"{SEGMENT_VERSION} {encoder_version()} {bitrate} {filters} {skip} {keep}"
    digest = hashlib.sha256(f"mp3-segment {settings}\0".encode())
    digest.update(memoryview(np.ascontiguousarray(window, dtype="<f4")))
    return digest.hexdigest()


def _run(args: list[str], data: bytes | memoryview) -> subprocess.CompletedProcess[bytes]:
    result = subprocess.run(args, input=data, capture_output=True, check=False)
    if result.returncode != 0:
        detail = result.stderr.decode("utf-8", errors="replace").strip()[-300:]
        raise PipelineError(f"ffmpeg failed: {detail}")
    return result


def _lame(window: np.ndarray, rate: int, filters: str, bitrate: str) -> bytes:
    """The window through ``filters`` and LAME: bare frames, no header frame, no tag."""
    channels = str(window.shape[1] if window.ndim == 2 else 1)
    args = [require_ffmpeg(), "-hide_banner", "-loglevel", "error", "-f", "f32le", "-ar", str(rate)]
    args += ["-ac", channels, "-i", "pipe:0", "-af", filters, "-ar", str(SAMPLE_RATE)]
    args += ["-ac", channels]
    args += ["-c:a", "libmp3lame", "-b:a", bitrate, "-reservoir", "0"]
    args += ["-write_xing", "0", "-id3v2_version", "0", "-f", "mp3", "pipe:1"]
    # As bytes: subprocess counts a memoryview in items, and a float is four of them.
    return _run(args, memoryview(np.ascontiguousarray(window, dtype="<f4")).cast("B")).stdout


def _meter(frames: bytes, lead_s: float) -> SegmentReading:
    """A segment's frames as decoded, through ffmpeg's ebur128 meter: its true peak, and
    its momentary loudness every 100 ms from 400 ms after ``lead_s`` (where it starts)."""
    measured = measure_mp3(frames, "a segment")
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
