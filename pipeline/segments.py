"""Encoding the mix a segment at a time, so an edit re-encodes only the part it changed.

The mix is cut on its codec's frame grid (``Codec.frame``), in the silence before each
chapter and before about one turn in ``EVERY`` (``anchors``), and every ``span`` after
each of those. Each segment goes through the mastering filters and the encoder
with a few of its neighbours' frames before and after it (``Codec.before``/``after``),
so the limiter and the encoder reach its edges in the state one continuous encode would
have; only the frames that belong to the segment are kept, and the kept frames of all
segments join into one stream (``Codec.write``). Segments are encoded in parallel, and
with a cache each one's frames are kept under a hash of everything that made them (its
samples and context, the filters, the codec's settings): after an edit only the segments
whose audio changed are encoded again. Each segment's frames are also decoded and metered
as they will be heard, so the file's loudness and true peak are known without measuring
it whole. The codecs: MP3 (``pipeline/mp3.py``) and Opus (``pipeline/opus.py``).
"""

from __future__ import annotations

import hashlib
import itertools
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TypeVar

import numpy as np

from pipeline.cache import SegmentCache, SegmentReading
from pipeline.delivery import FRAME, SAMPLE_RATE
from pipeline.errors import PipelineError
from pipeline.loudness import Measurement, integrated, short_term

# Cuts go this far before the sound they anchor on: then neither side's context reaches the
# other side's sound as long as QUIET (0.24 s) of silence comes first.
LEAD = 5 * FRAME
# A segment may also start before a turn that nothing sounds for this long before: LEAD,
# then the context a segment is encoded with (MP3's 4 frames; Opus's 5 packets are less).
QUIET = LEAD + 4 * FRAME
# About one in this many of those turns starts a segment (see ``anchors``): an edit
# re-encodes about this many turns; fewer, longer segments start fewer encoders.
EVERY = 3
# The longest segment (54 s: an edit re-encodes about this much): a whole number of both
# codecs' frames (MP3's 1152 samples, Opus's 20 ms: 882), so a segment after an anchor
# holds the same frames wherever its anchor moves.
SPAN = 42 * 56_448


class Stopped(Exception):
    """The encode was asked to stop (the render is stopping)."""


class Source(Protocol):
    """What is encoded: a whole ``Audio``, or the mix, which sounds a window at a time."""

    @property
    def sample_rate(self) -> int:
        """Samples per second."""
        ...

    @property
    def length(self) -> int:
        """Samples in all."""
        ...

    def window(self, lo: int, hi: int) -> np.ndarray:
        """Samples ``lo`` to ``hi``."""
        ...

    def window_key(self, lo: int, hi: int) -> str | None:
        """A digest that changes whenever ``window(lo, hi)`` would, without making it
        (None: hash the samples)."""
        ...


T = TypeVar("T")


class Codec(Protocol):
    """How one format encodes, meters and joins segments."""

    frame: int
    """Mix samples per frame (MP3: 1152; Opus: 20 ms)."""

    rate: int
    """The file's sample rate (the mastering chain ends there)."""

    before: int
    """Frames of context encoded before a segment."""

    after: int
    """Frames of context encoded after a segment."""

    level_db: float
    """How much quieter the file is than what the filters give it."""

    preroll: int
    """Frames decoded before a segment's first when it is metered, so that is decoded
    as the whole file decodes it."""

    def settings(self) -> str:
        """What, besides its samples and filters, makes a segment's frames (in its key)."""
        ...

    def frames(self, window: np.ndarray, filters: str) -> list[bytes]:
        """The window (mix samples) through ``filters`` and the encoder, frame by frame."""
        ...

    def meter(self, frames: Sequence[bytes], lead: int) -> SegmentReading:
        """The frames as decoded, metered; the segment starts ``lead`` frames in."""
        ...

    def pack(self, frames: Sequence[bytes]) -> bytes:
        """A segment's kept frames as bytes (what the cache keeps)."""
        ...

    def write(self, parts: Iterable[tuple[bytes, int | None]], path: Path, length: int) -> None:
        """The packed segments, in order, each with how many of its frames to take (None:
        all), as one file of ``length`` mix samples at ``path``; each is taken as it is
        written, so the file is never held whole."""
        ...


@dataclass(frozen=True)
class Segment:
    """A run of whole frames of the mix, encoded on its own."""

    start: int
    """First sample (on the codec's frame grid)."""

    end: int
    """One past the last sample (on the grid, or the mix's end)."""


@dataclass(frozen=True)
class Encoded:
    """A file written from segments."""

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

    def measurement(self) -> Measurement:
        """The file's loudness, gated from its segments' blocks, and its true peak."""
        return Measurement(
            loudness_lufs=integrated(self.momentary),
            true_peak_db=self.true_peak_db,
            times=self.times,
            momentary=self.momentary,
            short_term=short_term(self.momentary),
        )


def anchors(
    chapters: Sequence[int], quiet: Sequence[tuple[int, str]], every: int = EVERY
) -> list[int]:
    """Where segments are cut (``lead`` before each): every chapter start, and each turn
    of ``quiet`` (its start and a digest of who says what, ``Mix.quiet_starts``) whose
    digest falls in one of ``every`` buckets. Chosen by what is said, not where: an edit
    moves what follows it by whole frames (``Timing.grid``) but leaves the same turns
    chosen, so every segment after the edited one keeps its key."""
    chosen = [at for at, digest in quiet if int(digest[:8], 16) % every == 0]
    return sorted({*chapters, *chosen})


def segments(
    length: int, anchors: Sequence[int], span: int = SPAN, lead: int = LEAD
) -> list[Segment]:
    """The mix of ``length`` samples cut ``lead`` samples before each of the ``anchors``
    that fall on an MP3 frame (``anchors``), and every ``span`` samples after that.
    Cutting in the silence before a sound keeps each side's context out of the other's
    sound, and the cuts stay put, relative to their anchor, when something before it
    changes length: an edit re-encodes only the segments it reaches."""
    ahead = [a - lead for a in anchors if lead < a < length and a % FRAME == 0]
    starts = sorted({0, *ahead})
    cuts = [c for a, b in itertools.pairwise([*starts, length]) for c in range(a, b, span)]
    return [Segment(a, b) for a, b in itertools.pairwise([*cuts, length])]


def snapped(parts: Sequence[Segment], frame: int) -> list[int | None]:
    """How many frames of each segment the file takes (None: the last, all of them):
    each segment starts in the file at its start rounded to the nearest frame (MP3 cuts
    fall on frames; Opus's 20 ms grid is not the MP3's, so a segment that ends before an
    anchor gives one frame more or less of the silence before it, as rounding falls, and
    no segment is ever more than half a frame from its place in the mix)."""
    starts = [(part.start + frame // 2) // frame for part in parts]
    return [b - a for a, b in itertools.pairwise(starts)] + [None]


def encode_segments(
    source: Source,
    parts: Sequence[Segment],
    filters: str,
    path: Path,
    codec: Codec,
    cache: SegmentCache | None = None,
    workers: int = 1,
    stop: threading.Event | None = None,
) -> Encoded:
    """Encode ``source`` (mono, or stereo as (n, 2), at ``SAMPLE_RATE``) through
    ``filters`` to ``path``, a segment at a time (in parallel, on ``workers`` threads
    driving the encoder), reusing cached segments; ``stop`` set: ``Stopped`` before the
    next segment."""

    def one(part: Segment) -> tuple[bytes, SegmentReading, bool]:
        if stop is not None and stop.is_set():
            raise Stopped
        return encode_segment(source, part, filters, codec, cache)

    counts = snapped(parts, codec.frame)
    # The file's length: its last segment's place in the file, then all of that segment.
    length = sum(n for n in counts if n is not None) * codec.frame
    length += source.length - parts[-1].start
    readings: list[tuple[SegmentReading, bool]] = []

    def taken(
        results: Iterator[tuple[bytes, SegmentReading, bool]],
    ) -> Iterator[tuple[bytes, int | None]]:
        for (data, reading, new), count in zip(results, counts, strict=True):
            readings.append((reading, new))
            yield data, count

    pool = ThreadPoolExecutor(max_workers=max(1, workers))
    try:
        # Written as they come, in order: a render holds a few segments, not the file.
        codec.write(taken(_in_order(pool, one, parts, 2 * max(1, workers))), path, length)
    finally:  # on Ctrl-C, start no more segments
        pool.shutdown(wait=True, cancel_futures=True)
    times = [
        part.start / SAMPLE_RATE + t
        for part, (reading, _) in zip(parts, readings, strict=True)
        for t in reading.times
    ]
    return Encoded(
        path=path,
        true_peak_db=max(reading.true_peak_db for reading, _ in readings),
        times=tuple(times),
        momentary=tuple(m for reading, _ in readings for m in reading.momentary),
        encoded=sum(1 for _, new in readings if new),
        reused=sum(1 for _, new in readings if not new),
    )


def _in_order(
    pool: ThreadPoolExecutor, task: Callable[[Segment], T], items: Sequence[Segment], ahead: int
) -> Iterator[T]:
    """``task`` of each item on ``pool``, in order, at most ``ahead`` begun and not yet
    taken (``pool.map`` would begin them all and hold every result)."""
    futures: deque[Future[T]] = deque()
    pending = iter(items)
    for item in itertools.islice(pending, ahead):
        futures.append(pool.submit(task, item))
    while futures:
        result = futures.popleft().result()
        for item in itertools.islice(pending, 1):
            futures.append(pool.submit(task, item))
        yield result


def encode_segment(
    source: Source, part: Segment, filters: str, codec: Codec, cache: SegmentCache | None
) -> tuple[bytes, SegmentReading, bool]:
    """One segment's frames and reading, from the cache or encoded now (and whether it was
    encoded now), with the codec's context around it (see above)."""
    length, frame = source.length, codec.frame
    last = part.end == length
    skip = min(codec.before, part.start // frame)
    lo = part.start - skip * frame
    keep = None if last else -(-(part.end - part.start) // frame)  # up to the next frame
    hi = length if keep is None else min(length, part.start + (keep + codec.after) * frame)
    # The key from what makes the window, when the source can say (the mix: a segment in
    # the cache is then not mixed at all), else from its samples.
    recipe = source.window_key(lo, hi)
    window = source.window(lo, hi) if recipe is None else None
    key = _key(recipe if window is None else window, filters, codec.settings(), skip, keep)
    found = cache.get(key) if cache is not None else None
    if found is not None:
        return *found, False
    window = source.window(lo, hi) if window is None else window
    frames = codec.frames(window, filters)
    kept = frames[skip:] if keep is None else frames[skip : skip + keep]
    if keep is not None and len(kept) != keep:
        raise PipelineError(f"the encoder gave {len(frames)} frames for {hi - lo} samples")
    lead = min(skip, codec.preroll)
    reading = codec.meter(frames[skip - lead : skip + len(kept)], lead)
    data = codec.pack(kept)
    if cache is not None:
        cache.put(key, data, reading)
    return data, reading, True


def _key(window: np.ndarray | str, filters: str, codec: str, skip: int, keep: int | None) -> str:
    """A segment's key: the codec, filters and frames kept, and the window's samples or
    its recipe (``Source.window_key``)."""
    digest = hashlib.sha256(f"{codec} {filters} {skip} {keep}\0".encode())
    if isinstance(window, str):
        digest.update(f"recipe {window}".encode())
    else:
        digest.update(memoryview(np.ascontiguousarray(window, dtype="<f4")))
    return digest.hexdigest()


@dataclass
class SegmentEncoder:
    """The mix's encoder, which mastering drives (``pipeline/master.py``): each pass
    writes ``path`` through new filters, a segment at a time, on ``workers`` threads,
    encoding again only the segments ``cache`` does not hold."""

    audio: Source
    """The mix."""

    path: Path
    """Where the file goes."""

    codec: Codec
    """The format (``pipeline/mp3.py``'s ``MP3``, ``pipeline/opus.py``'s ``OPUS``)."""

    anchors: Sequence[int] = ()
    """Where segments start, just before (samples; see ``anchors``, ``segments``)."""

    cache: SegmentCache | None = None
    """Segments already encoded (None: encode every one)."""

    workers: int = 1
    """Segments encoded at once."""

    span: int = SPAN
    """Longest segment, in samples: an edit re-encodes about this much."""

    stop: threading.Event = field(default_factory=threading.Event)
    """Set to stop before the next segment (``Stopped``)."""

    last: Encoded | None = None
    """What the last pass wrote."""

    @property
    def sample_rate(self) -> int:
        """The file's sample rate: the mastering chain ends there."""
        return self.codec.rate

    @property
    def level_db(self) -> float:
        """How much quieter the file is than what the filters give it."""
        return self.codec.level_db

    def encode(self, filters: str) -> Encoded:
        """Write the file through ``filters`` (an ffmpeg filter graph)."""
        if self.audio.sample_rate != SAMPLE_RATE:
            raise ValueError(f"segments are cut on {SAMPLE_RATE} Hz frames")
        parts = segments(self.audio.length, self.anchors, self.span)
        self.last = encode_segments(
            self.audio, parts, filters, self.path, self.codec, self.cache, self.workers, self.stop
        )
        return self.last
