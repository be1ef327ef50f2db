"""The Opus rendition by segments: the joined packets are one valid Ogg Opus stream that
decodes to the mix's length, as clean at the cuts as a continuous encode is anywhere, its
loudness and peak known from the segments; unchanged segments are reused."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
from conftest import decode, ffprobe, rms_db
from test_mp3 import programme

from pipeline.audio import Audio
from pipeline.cache import SegmentCache
from pipeline.delivery import FRAME
from pipeline.loudness import measure
from pipeline.master import chain
from pipeline.opus import OPUS, OPUS_RATE, PACKET, preskip
from pipeline.segments import LEAD, SegmentEncoder, segments

RATE = 44_100
FILTERS = chain(0.0, -3.0, OPUS_RATE)


def stereo(seconds: float) -> np.ndarray:
    left = programme(seconds)
    return np.stack([left, np.roll(left, 3000) * 0.5], axis=1)


GRID = 56_448  # a whole number of MP3 frames and of 20 ms Opus packets (1.28 s)


def encoder(samples: np.ndarray, path, chapters=(), span=9 * GRID, cache=None, workers=2):
    return SegmentEncoder(Audio(samples, RATE), path, OPUS, list(chapters), cache, workers, span)


def windows_db(error: np.ndarray, size: int) -> np.ndarray:
    """RMS level of the error in each run of ``size`` samples that holds sound."""
    runs = error[: len(error) // size * size].reshape(-1, size, *error.shape[1:])
    levels = np.array([rms_db(run) for run in runs])
    return levels[levels > -90]


def test_joined_segments_are_one_valid_stream_as_clean_at_the_cuts(tmp_path) -> None:
    samples = stereo(40.0)
    # Cuts on both grids (LEAD before each chapter): the segments sit exactly in place.
    chapters = [14 * GRID + LEAD, 22 * GRID + LEAD]
    cut = encoder(samples, tmp_path / "seg.opus", chapters)
    out = cut.encode(FILTERS)
    assert out.encoded == 5
    # Every page's checksum and every packet check out with ffmpeg's strictest reading.
    strict = ["ffmpeg", "-v", "error", "-err_detect", "crccheck+bitstream+buffer+explode"]
    result = subprocess.run(
        [*strict, "-i", str(out.path), "-f", "null", "-"], capture_output=True, text=True
    )
    assert result.returncode == 0 and result.stderr == ""
    (stream,) = ffprobe(out.path)["streams"]
    assert (stream["codec_name"], stream["channels"], stream["sample_rate"]) == ("opus", 2, "48000")

    decoded = decode(out.path, rate=OPUS_RATE, channels=2)
    assert len(decoded) == round(len(samples) * OPUS_RATE / RATE)  # pre-skip and end trimmed
    whole = encoder(samples, tmp_path / "whole.opus", span=10**9, workers=1).encode(FILTERS)
    continuous = decode(whole.path, rate=OPUS_RATE, channels=2)
    assert rms_db(continuous) - rms_db(decoded - continuous) > 20  # the same sound
    # At each cut, the segments differ from the continuous encode no more than two
    # encodes of the same sound differ anywhere: no click, gap or seam.
    error = decoded - continuous
    usual = np.percentile(windows_db(error, 4000), 90)
    parts = segments(len(samples), chapters, 9 * GRID)
    assert [p.start for p in parts] == [0, 9 * GRID, 14 * GRID, 22 * GRID, 31 * GRID]
    for part in parts[1:]:
        at = part.start * OPUS_RATE // RATE
        assert rms_db(error[at - 2000 : at + 2000]) < usual + 3, part

    # Loudness gated from the segments' blocks and their highest true peak are what
    # ffmpeg's meter reads from the whole file.
    whole_file = measure(out.path)
    assert out.measurement().loudness_lufs == pytest.approx(whole_file.loudness_lufs, abs=0.15)
    assert out.true_peak_db == pytest.approx(whole_file.true_peak_db, abs=0.2)


def test_packets_sit_on_the_20_ms_grid() -> None:
    assert OPUS.frame * OPUS_RATE == PACKET * RATE  # 882 samples of the mix per packet
    assert 0 < preskip() < PACKET  # libopus's lookahead: 312 samples at 48 kHz


def test_only_changed_segments_are_encoded_again(tmp_path) -> None:
    cache = SegmentCache(tmp_path / "cache", ".opus")
    samples = stereo(30.0)
    first = encoder(samples, tmp_path / "a.opus", span=6 * GRID, cache=cache).encode(FILTERS)
    assert (first.encoded, first.reused) == (4, 0)
    again = encoder(samples, tmp_path / "b.opus", span=6 * GRID, cache=cache).encode(FILTERS)
    assert (again.encoded, again.reused) == (0, 4)
    assert again.path.read_bytes() == first.path.read_bytes()  # the same mix, the same file

    edited = samples.copy()
    middle = 2 * 6 * GRID + 3 * GRID  # the middle of the third segment
    edited[middle : middle + 2000] += 0.05
    changed = encoder(edited, tmp_path / "c.opus", span=6 * GRID, cache=cache).encode(FILTERS)
    assert (changed.encoded, changed.reused) == (1, 3)
    assert len(decode(changed.path, rate=OPUS_RATE, channels=2)) == len(
        decode(first.path, rate=OPUS_RATE, channels=2)
    )


def burst_at(samples: np.ndarray, at: int) -> None:
    """A loud 1 kHz burst of 50 ms from sample ``at``, after 0.3 s of silence."""
    samples[at - round(0.3 * RATE) : at + 3000] = 0.0
    t = np.arange(2205) / RATE
    samples[at : at + 2205] = (0.5 * np.sin(2 * np.pi * 1000 * t))[:, None]


def onset(decoded: np.ndarray, near: int, rate: int) -> int:
    """Where the burst nearest ``near`` (seconds x rate) starts in ``decoded``."""
    region = np.abs(decoded[near - rate // 5 : near + rate // 5, 0])
    return near - rate // 5 + int(np.argmax(region > 0.1))


def test_a_chapter_moved_by_an_edit_keeps_its_segments_and_its_place(tmp_path) -> None:
    """An edit in one chapter moves the next by whole MP3 frames, off Opus's 20 ms grid:
    the next chapter's segments are still taken from the cache, and it starts in the file
    within half a packet (10 ms) of where it starts in the mix."""
    cache = SegmentCache(tmp_path / "cache", ".opus")
    samples = stereo(30.0)
    chapter = 700 * FRAME
    burst_at(samples, chapter)
    first = encoder(samples, tmp_path / "a.opus", [chapter], 6 * GRID, cache).encode(FILTERS)

    # Three frames of silence inserted early in the first chapter.
    shift = 3 * FRAME
    moved = np.concatenate(
        [samples[: 50 * FRAME], np.zeros((shift, 2), np.float32), samples[50 * FRAME :]]
    )
    second = encoder(moved, tmp_path / "b.opus", [chapter + shift], 6 * GRID, cache).encode(FILTERS)
    # The first chapter's three segments are encoded again; the second's two are not.
    assert (first.encoded, second.encoded, second.reused) == (5, 3, 2)
    for encoded, at in ((first, chapter), (second, chapter + shift)):
        decoded = decode(encoded.path, rate=OPUS_RATE, channels=2)
        expected = round(at * OPUS_RATE / RATE)
        assert abs(onset(decoded, expected, OPUS_RATE) - expected) <= PACKET // 2 + 48
