"""MP3 encoding by segments: the joined frames decode to the mix, sample-aligned and as
clean at the cuts as anywhere else; the LAME tag is right; unchanged segments are reused."""

from __future__ import annotations

import hashlib
import itertools
import subprocess

import mutagen.mp3
import numpy as np
import pyloudnorm
import pytest
import soundfile
from conftest import decode, rms_db

from pipeline.audio import Audio
from pipeline.cache import SegmentCache
from pipeline.delivery import FRAME
from pipeline.loudness import integrated, measure
from pipeline.master import chain
from pipeline.mp3 import CONTEXT_FRAMES, LAME_SCALE_DB, MP3, crc16
from pipeline.segments import LEAD, Encoded, Segment
from pipeline.segments import anchors as choose
from pipeline.segments import encode_segments as encode_with
from pipeline.segments import segments as cut

RATE = 44_100


def programme(seconds: float, seed: int = 1) -> np.ndarray:
    """Speech-like test audio: noise bursts and tones with gaps, at about -20 LUFS."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * RATE)) / RATE
    tone = 0.1 * np.sin(2 * np.pi * (180 + 40 * np.sin(t)) * t)
    noise = 0.01 * rng.standard_normal(len(t))
    gate = (np.sin(2 * np.pi * 0.7 * t) > -0.3).astype(np.float64)
    return ((tone + noise) * gate).astype(np.float32)


FILTERS = chain(0.0, -2.0, RATE)


def segments(length: int, anchors: list[int], span: int = 2048 * FRAME, lead: int = LEAD):
    """The MP3 grid's segments (``pipeline/segments.py``)."""
    return cut(length, anchors, span, lead)


def encode_segments(
    samples: np.ndarray, rate: int, parts: list[Segment], filters: str, path, cache=None, workers=1
) -> Encoded:
    """``samples`` (at ``rate``) encoded to MP3 by segments."""
    assert rate == RATE
    return encode_with(Audio(samples, RATE), parts, filters, path, MP3, cache, workers)


def test_integrated_loudness_gates_blocks_as_bs1770() -> None:
    # Blocks under -70 LUFS are dropped, then those 10 LU under the rest's loudness.
    assert integrated([-20.0] * 10 + [-80.0] * 50) == pytest.approx(-20.0)
    assert integrated([-20.0] * 10 + [-35.0] * 10) == pytest.approx(-20.0)
    mixed = integrated([-20.0] * 10 + [-26.0] * 10)  # both pass: their power mean
    assert mixed == pytest.approx(10 * np.log10((10**-2 + 10**-2.6) / 2))
    assert integrated([-90.0, -75.0]) == float("-inf")


def test_segments_cut_at_chapters_and_spans() -> None:
    length = 10_000 * FRAME + 77
    anchors = [0, 3000 * FRAME, 3000 * FRAME + 5, 7000 * FRAME]
    parts = segments(length, anchors, 2048 * FRAME, lead=8 * FRAME)
    cuts = [p.start // FRAME for p in parts]
    assert cuts == [0, 2048, 2992, 5040, 6992, 9040]  # 3000 * FRAME + 5 is not on a frame
    assert parts[-1].end == length
    assert all(a.end == b.start for a, b in itertools.pairwise(parts))


def test_turns_are_chosen_as_cuts_by_what_is_said_not_where() -> None:
    """About one quiet turn in ``every`` starts a segment, chosen by its digest: moving
    the turns after an edit by whole frames keeps the same ones chosen, moved alike."""
    digests = [hashlib.sha256(f"turn {i}".encode()).hexdigest() for i in range(300)]
    quiet = [(1000 * FRAME * (i + 1), d) for i, d in enumerate(digests)]
    chosen = choose([0, 5 * FRAME], quiet, every=3)
    assert chosen[:2] == [0, 5 * FRAME]  # the chapters, always
    assert 70 < len(chosen) - 2 < 130  # about one in three
    moved = [(at + 7 * FRAME if at > 4000 * FRAME else at, d) for at, d in quiet]
    again = choose([0, 5 * FRAME], moved, every=3)
    assert again == [a + 7 * FRAME if a > 4000 * FRAME else a for a in chosen]
    assert choose([], quiet, every=1) == [at for at, _ in quiet]


def test_joined_segments_decode_to_the_mix(tmp_path) -> None:
    samples = programme(40.0)
    anchors = [700 * FRAME, 1100 * FRAME]
    parts = segments(len(samples), anchors, 500 * FRAME)
    assert len(parts) == 4
    out = encode_segments(samples, RATE, parts, FILTERS, tmp_path / "seg.mp3", workers=2)
    decoded = decode(out.path)
    assert len(decoded) == len(samples)  # the LAME tag's delay and padding are right
    error = decoded - samples
    overall = rms_db(error)
    assert overall < rms_db(samples) - 20  # 96 kbps: the coding noise is far below the signal
    for part in parts[1:]:
        near = error[part.start - 2 * FRAME : part.start + 2 * FRAME]
        assert rms_db(near) < overall + 3, part  # no click or gap at the cut

    # Loudness gated from the segments' 400 ms blocks, and their highest true peak, are
    # what ffmpeg's meter reads from the whole file (and pyloudnorm from its samples).
    whole_file = measure(out.path)
    assert integrated(out.momentary) == pytest.approx(whole_file.loudness_lufs, abs=0.1)
    by_pyloudnorm = pyloudnorm.Meter(RATE).integrated_loudness(decoded.astype(np.float64))
    assert integrated(out.momentary) == pytest.approx(by_pyloudnorm, abs=0.2)
    assert out.true_peak_db == pytest.approx(whole_file.true_peak_db, abs=0.1)
    assert len(out.times) == len(out.momentary) > 0.9 * len(whole_file.times)

    # One continuous encode of the same samples through the same chain decodes the same.
    whole = encode_segments(samples, RATE, segments(len(samples), []), FILTERS, tmp_path / "w.mp3")
    assert rms_db(decode(whole.path) - decoded) < overall + 3


def test_duration_and_lame_tag(tmp_path) -> None:
    samples = programme(12.3)
    out = encode_segments(
        samples, RATE, segments(len(samples), [], 200 * FRAME), FILTERS, tmp_path / "x.mp3"
    )
    seconds = len(samples) / RATE
    # Gapless readers (ffmpeg, libsndfile's mpg123) trim to the exact length; mutagen
    # counts whole frames from the Info header.
    assert len(decode(out.path)) == len(samples)
    assert soundfile.info(str(out.path)).duration == pytest.approx(seconds, abs=1e-4)
    assert mutagen.mp3.MP3(out.path).info.length == pytest.approx(seconds, abs=2 * FRAME / RATE)
    header = out.path.read_bytes()[:200]
    tag = header.find(b"Info")
    delay = int.from_bytes(header[tag + 141 : tag + 144], "big")
    assert delay >> 12 == 576
    stored = header[tag + 154 : tag + 156]
    zeroed = header[: tag + 154] + b"\0\0" + header[tag + 156 : 190]
    assert crc16(zeroed).to_bytes(2, "big") == stored


def test_crc_matches_ffmpegs_own_lame_tag(tmp_path) -> None:
    wav = tmp_path / "a.wav"
    soundfile.write(wav, programme(2.0), RATE)
    mp3 = tmp_path / "a.mp3"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(wav), "-c:a", "libmp3lame", "-b:a", "96k", str(mp3)],
        check=True,
    )
    data = mp3.read_bytes()
    data = data[data.find(b"\xff\xfb") :]  # past ffmpeg's ID3 tag
    tag = data.find(b"Info")
    assert data[tag + 141 : tag + 144] != b"\0\0\0"
    zeroed = data[: tag + 154] + b"\0\0" + data[tag + 156 : 190]
    assert crc16(zeroed).to_bytes(2, "big") == data[tag + 154 : tag + 156]


def test_only_changed_segments_are_encoded_again(tmp_path) -> None:
    cache = SegmentCache(tmp_path / "cache")
    samples = programme(40.0)
    parts = segments(len(samples), [], 300 * FRAME)
    assert len(parts) == 6
    first = encode_segments(samples, RATE, parts, FILTERS, tmp_path / "a.mp3", cache, 2)
    assert (first.encoded, first.reused) == (6, 0)
    again = encode_segments(samples, RATE, parts, FILTERS, tmp_path / "b.mp3", cache, 2)
    assert (again.encoded, again.reused) == (0, 6)
    assert again.path.read_bytes() == first.path.read_bytes()

    # A change in the middle of segment 3 (away from its context) re-encodes only it.
    edited = samples.copy()
    middle = parts[3].start + (parts[3].end - parts[3].start) // 2
    edited[middle : middle + 2000] *= 0.5
    assert parts[3].end - middle > CONTEXT_FRAMES * FRAME
    changed = encode_segments(edited, RATE, parts, FILTERS, tmp_path / "c.mp3", cache, 2)
    assert (changed.encoded, changed.reused) == (1, 5)
    assert len(decode(changed.path)) == len(samples)

    # A damaged segment entry is found out and encoded again, giving the same file.
    entry = min((tmp_path / "cache").glob("*/*.mp3"), key=lambda p: p.stat().st_mtime_ns)
    entry.write_bytes(entry.read_bytes()[:-10] + b"0123456789")
    redone = encode_segments(samples, RATE, parts, FILTERS, tmp_path / "d.mp3", cache, 2)
    assert redone.encoded == 1
    assert redone.path.read_bytes() == first.path.read_bytes()


def test_stereo_segments_join_gaplessly(tmp_path) -> None:
    """The stereo master: two different channels, cut into segments, decode to the mix,
    each channel in its place, with no click at a cut."""
    left = programme(20.0)
    samples = np.stack([left, np.roll(left, 3000) * 0.5], axis=1)
    parts = segments(len(samples), [400 * FRAME], 300 * FRAME)
    out = encode_segments(samples, RATE, parts, FILTERS, tmp_path / "st.mp3", workers=2)
    decoded = decode(out.path, channels=2)
    assert decoded.shape == samples.shape
    scale = np.float32(10 ** (LAME_SCALE_DB / 20))  # LAME's own input scale: 0.95
    for channel in (0, 1):
        error = decoded[:, channel] - samples[:, channel] * scale
        overall = rms_db(error)
        assert overall < rms_db(samples[:, channel]) - 18  # coding noise, joint stereo
        for part in parts[1:]:
            assert rms_db(error[part.start - 2 * FRAME : part.start + 2 * FRAME]) < overall + 3
    assert mutagen.mp3.MP3(out.path).info.channels == 2


def test_the_encoder_says_how_much_quieter_its_file_is(tmp_path) -> None:
    """LAME's default scale of 0.95: mastering's first guess counts it, so a render rarely
    needs a second pass."""
    samples = programme(6.0)
    out = encode_segments(samples, RATE, segments(len(samples), []), FILTERS, tmp_path / "q.mp3")
    gap = rms_db(decode(out.path)[2000:-2000]) - rms_db(samples[2000:-2000])
    assert gap == pytest.approx(LAME_SCALE_DB, abs=0.05)


def test_segments_are_written_as_they_come_not_held_until_the_end(tmp_path) -> None:
    """A render holds a few encoded segments, not the whole file (3 hours of MP3 and Opus
    held at once grew the render by 700 MB): when the file takes its first segment, at
    most twice the workers' count have been encoded, and the file is the one written whole."""
    import dataclasses

    samples = programme(40.0)
    parts = segments(len(samples), [], 150 * FRAME)
    assert len(parts) >= 10
    encoded: list[int] = []
    seen: list[int] = []

    @dataclasses.dataclass(frozen=True)
    class Watched:
        frame: int = MP3.frame
        rate: int = MP3.rate
        before: int = MP3.before
        after: int = MP3.after
        level_db: float = MP3.level_db
        preroll: int = MP3.preroll

        def settings(self) -> str:
            return MP3.settings()

        def frames(self, window, filters):
            encoded.append(len(window))
            return MP3.frames(window, filters)

        def meter(self, frames, lead):
            return MP3.meter(frames, lead)

        def pack(self, frames):
            return MP3.pack(frames)

        def write(self, parts, path, length):
            def taken():
                for part in parts:
                    seen.append(len(encoded))
                    yield part

            MP3.write(taken(), path, length)

    out = encode_with(Audio(samples, RATE), parts, FILTERS, tmp_path / "w.mp3", Watched(), None, 2)
    assert len(encoded) == len(parts) and seen[0] <= 4 < len(parts)
    whole = encode_segments(samples, RATE, parts, FILTERS, tmp_path / "all.mp3", workers=2)
    assert out.path.read_bytes() == whole.path.read_bytes()
