"""The Opus rendition: the same master as the MP3, in Ogg Opus at ``OPUS_BITRATE``, for
apps that take a ``podcast:alternateEnclosure``.

Opus is encoded from the mix (not from the MP3: no second lossy generation) through the
mastering chain, resampled to 48 kHz, Opus's own rate, a segment at a time like the MP3
(``pipeline/segments.py``), so an edit encodes again only the segments it changed. Opus
packets are 20 ms (882 samples of the mix, 960 of the file); each segment starts in the
file on that grid, within 10 ms of its place in the mix (``segments.snapped``), and the
kept packets of all segments are written as one Ogg stream (mutagen's
``OggPage`` writes the pages and their checksums). A segment is encoded with ``CONTEXT``
packets of its neighbours on each side: the encoder reaches the cut in the state one
continuous encode would have, and the decoder, which crosses from one segment's packets
to the next, hears no seam (the tests hold the error at the cuts to the coding noise).

Two things differ from the MP3, and both are measured on the encoded segments: LAME
scales its input by 0.95 (-0.45 dB), which the MP3's mastering gain already makes up, so
the Opus gets that much less gain to come out as loud; and Opus overshoots the limiter's
peaks more than LAME does (about 1.6 dB at 64 kb/s against 0.7), so its limiter starts
lower, and lower again until the file's true peak meets the spec. Its loudness is measured
too (gated from the segments' blocks, as the MP3's is), and its gain set again when it is
more than ``Spec.keep_lu`` off: a clip of a few seconds can come out 0.6 LU quiet.
"""

from __future__ import annotations

import functools
import io
import itertools
import struct
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from mutagen.ogg import OggPage

from pipeline.cache import SegmentCache, SegmentReading
from pipeline.delivery import OPUS_BITRATE, SAMPLE_RATE
from pipeline.errors import PipelineError
from pipeline.files import atomic_output
from pipeline.loudness import Measurement, measure_stream
from pipeline.master import Spec, chain
from pipeline.mp3 import LAME_SCALE_DB, encode_pcm, encoder_version, segment_reading
from pipeline.segments import SegmentEncoder, Source, Stopped

OPUS_RATE = 48_000
PACKET = 960  # samples of a 20 ms Opus packet at 48 kHz
CONTEXT = 5  # packets (0.1 s) of the neighbours encoded each side of a segment
OPUS_MARGIN_DB = 1.0  # Opus's limiter starts this much under the MP3's, for its overshoot
PASSES = 3
SEGMENT_VERSION = 1  # bump when the way a segment is encoded changes
OPUS_VERSION = f"3 {OPUS_BITRATE} scale {LAME_SCALE_DB} margin {OPUS_MARGIN_DB} {PASSES}"
OPUS_TYPE = "audio/ogg"
"""What servers send it as (an Ogg file); the feed adds ``codecs="opus"``."""
_SERIAL = 0x4C694146  # the Ogg stream's serial number: fixed, so the same mix gives the same file
_VENDOR = b"Life is Artificial pipeline"


@dataclass(frozen=True)
class OpusCodec:
    """Ogg Opus at ``bitrate``, 48 kHz, 20 ms packets (see above)."""

    bitrate: str = OPUS_BITRATE
    """Target bitrate (VBR)."""

    channels: int = 2
    frame: int = PACKET * SAMPLE_RATE // OPUS_RATE  # 882 samples of the mix
    rate: int = OPUS_RATE
    before: int = CONTEXT
    after: int = CONTEXT
    level_db: float = 0.0
    preroll: int = 4  # 80 ms: a decoder that starts there has converged (RFC 7845 4.6)

    def settings(self) -> str:
        """The segment key's codec part."""
        return f"opus-segment {SEGMENT_VERSION} {encoder_version()} {self.bitrate}"

    def frames(self, window: np.ndarray, filters: str) -> list[bytes]:
        """The window through ``filters`` and libopus, packet by packet."""
        output = ["-ar", str(OPUS_RATE), "-c:a", "libopus", "-b:a", self.bitrate]
        output += ["-application", "audio", "-frame_duration", "20"]
        output += ["-map_metadata", "-1", "-fflags", "+bitexact", "-f", "ogg"]
        pages = _pages(encode_pcm(window, filters, output))
        head, _tags, *packets = OggPage.to_packets(pages)
        if _preskip(head) != preskip():
            raise PipelineError(f"libopus began a segment with {_preskip(head)} samples of delay")
        return packets

    def meter(self, frames: Sequence[bytes], lead: int) -> SegmentReading:
        """The packets as decoded, through ffmpeg's meter (``pipeline/mp3.py``'s
        ``segment_reading``): the ``lead`` packets are decoded but not heard (a decoder
        starting afresh rings for a packet or two), as a player that seeks does."""
        stream = ogg_opus(frames, self.channels, None, preskip() + lead * PACKET)
        return segment_reading(measure_stream(stream, "ogg", "an Opus segment"), 0.0)

    def pack(self, frames: Sequence[bytes]) -> bytes:
        """The packets, each after its length (two bytes: a packet is at most 1275)."""
        return b"".join(struct.pack(">H", len(p)) + p for p in frames)

    def write(self, parts: Iterable[tuple[bytes, int | None]], path: Path, length: int) -> None:
        """The segments' packets (of each, as many as it has a place for) as one Ogg Opus
        file of ``length`` mix samples, a page at a time (a 3-hour file is 90 MB)."""
        packets = (packet for data, count in parts for packet in _unpack(data)[:count])
        samples = round(length * OPUS_RATE / SAMPLE_RATE)
        held = [0]

        def counted() -> Iterator[bytes]:
            for packet in packets:
                held[0] += 1
                yield packet

        with atomic_output(path) as tmp, tmp.open("wb") as handle:
            for page in _ogg_pages(counted(), self.channels, samples, preskip()):
                handle.write(page)
            if held[0] * PACKET < samples + preskip():
                raise PipelineError(f"{held[0]} Opus packets cannot hold {samples} samples")


OPUS = OpusCodec()


@functools.cache
def preskip() -> int:
    """libopus's delay at 48 kHz (its lookahead), read from an encode of silence: every
    segment's packets start that far before their samples, and so does the file."""
    output = ["-ar", str(OPUS_RATE), "-c:a", "libopus", "-application", "audio", "-f", "ogg"]
    pages = _pages(encode_pcm(np.zeros((PACKET, 2), np.float32), "anull", output))
    return _preskip(OggPage.to_packets(pages)[0])


def _pages(data: bytes) -> list[OggPage]:
    stream, pages = io.BytesIO(data), []
    while stream.tell() < len(data):
        pages.append(OggPage(stream))
    return pages


def _preskip(head: bytes) -> int:
    if not head.startswith(b"OpusHead"):
        raise PipelineError("libopus wrote no Opus header")
    return struct.unpack_from("<H", head, 10)[0]


def _unpack(data: bytes) -> list[bytes]:
    packets, at = [], 0
    while at < len(data):
        (size,) = struct.unpack_from(">H", data, at)
        packets.append(data[at + 2 : at + 2 + size])
        at += 2 + size
    return packets


def ogg_opus(
    packets: Sequence[bytes], channels: int, samples: int | None, delay: int | None = None
) -> bytes:
    """An Ogg Opus stream (RFC 7845) of 20 ms ``packets`` whose first ``delay`` samples
    are not heard (default ``preskip()``) and that holds ``samples`` (None: all the
    packets hold)."""
    delay = preskip() if delay is None else delay
    return b"".join(_ogg_pages(packets, channels, samples, delay))


def _ogg_pages(
    packets: Iterable[bytes], channels: int, samples: int | None, delay: int
) -> Iterator[bytes]:
    """``ogg_opus``'s pages, one at a time: each is written when the next is begun, so
    the last knows it is last."""
    head = b"OpusHead" + struct.pack("<BBHIhB", 1, channels, delay, OPUS_RATE, 0, 0)
    tags = b"OpusTags" + struct.pack("<I", len(_VENDOR)) + _VENDOR + struct.pack("<I", 0)
    groups = itertools.chain([[head], [tags]], _paged(packets))
    count, previous = 0, next(groups)
    for sequence, held in enumerate(groups, start=1):
        yield _page(sequence - 1, previous, count, False)
        count += len(held) if sequence > 1 else 0
        previous = held
    yield _page(sequence, previous, count, True, None if samples is None else delay + samples)


def _paged(packets: Iterable[bytes]) -> Iterator[list[bytes]]:
    """The packets by page: a page a second, at most 255 lacing values (the last page
    may be empty)."""
    page: list[bytes] = []
    lacing = 0
    for packet in packets:
        need = len(packet) // 255 + 1
        if lacing + need > 255 or len(page) == 50:
            yield page
            page, lacing = [], 0
        page.append(packet)
        lacing += need
    yield page


def _page(
    sequence: int, held: list[bytes], count: int, last: bool, end: int | None = None
) -> bytes:
    """One Ogg page of the stream; ``count``: the audio packets up to its end."""
    ogg = OggPage()
    ogg.serial, ogg.sequence, ogg.packets = _SERIAL, sequence, held
    ogg.position = count * PACKET if sequence > 1 else 0
    ogg.first, ogg.last = sequence == 0, last
    if last and end is not None:
        ogg.position = end  # the end trimmed to the mix's length
    return ogg.write()


def opus_levels(mp3_gain_db: float, mp3_limit_db: float) -> tuple[float, float]:
    """The Opus rendition's first gain and limit, from the MP3's (see above)."""
    return mp3_gain_db + LAME_SCALE_DB, mp3_limit_db - OPUS_MARGIN_DB


class OpusRendition:
    """The Opus rendition of a mix, made in the background by ``encoder`` to ``spec``
    from ``gain_db`` and ``limit_db`` (``opus_levels``, or where the last render's
    ended): lower limits while its true peak is over the ceiling, another gain while its
    loudness is further than ``Spec.keep_lu`` from the target. ``result`` waits for it
    and gives its measurement; ``kill`` stops it."""

    def __init__(
        self, encoder: SegmentEncoder, gain_db: float, limit_db: float, spec: Spec
    ) -> None:
        self.encoder, self.spec = encoder, spec
        self.gain_db, self.limit_db = gain_db, limit_db
        self.outcome: Measurement | PipelineError | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        spec = self.spec
        try:
            for _ in range(PASSES):
                encoded = self.encoder.encode(chain(self.gain_db, self.limit_db, OPUS_RATE))
                measured = encoded.measurement()
                over = measured.true_peak_db - spec.true_peak_db
                off = spec.loudness_lufs - measured.loudness_lufs
                if over <= 0 and abs(off) <= spec.keep_lu:
                    self.outcome = measured
                    return
                self.limit_db -= max(0.0, over + 0.2)
                self.gain_db += off if abs(off) > spec.keep_lu else 0.0
            self.outcome = self._checked(measured)
        except Stopped:
            self.outcome = PipelineError("the Opus rendition was stopped")
        except PipelineError as exc:
            self.outcome = exc

    def _checked(self, measured: Measurement) -> Measurement | PipelineError:
        """The last pass's measurement if it meets the spec; else what it missed."""
        spec = self.spec
        off = abs(measured.loudness_lufs - spec.loudness_lufs)
        if measured.true_peak_db <= spec.true_peak_db and off <= spec.tolerance_lu:
            return measured
        return PipelineError(
            f"the Opus rendition missed the delivery spec after {PASSES} encodes: "
            f"{measured.loudness_lufs:.1f} LUFS, {measured.true_peak_db:.1f} dBTP (target "
            f"{spec.loudness_lufs} LUFS, at most {spec.true_peak_db} dBTP)"
        )

    def result(self) -> Measurement:
        """Wait for the file; its loudness and true peak, or an error."""
        self.thread.join()
        if isinstance(self.outcome, Measurement):
            return self.outcome
        raise self.outcome or PipelineError("the Opus rendition was stopped")

    def kill(self) -> None:
        """Stop it (the render is stopping): no segment is started after this, and the one
        being encoded is let finish (a fraction of a second), so nothing is left behind."""
        self.encoder.stop.set()
        self.thread.join()


def opus_encoder(
    audio: Source, path: Path, anchors: Sequence[int], cache: Path | None, workers: int
) -> SegmentEncoder:
    """The segment encoder of the Opus rendition of ``audio`` at ``path``, cut before
    ``anchors`` (``segments.anchors``)."""
    segments = SegmentCache(cache, ".opus") if cache is not None else None
    return SegmentEncoder(audio, path, OPUS, anchors, segments, workers)
