"""Encoding ahead: the start of the mix that the turns still to come cannot change is the
whole mix's, sample for sample and key for key, and the segments encoded from it while the
rest is spoken are the ones mastering asks for (real ffmpeg, both codecs)."""

from __future__ import annotations

import dataclasses
import itertools
import threading
import time

import numpy as np
import pytest
from conftest import REPO

from pipeline.ahead import EncodeAhead, Lane
from pipeline.assemble import Timing, assemble, settled
from pipeline.audio import Audio
from pipeline.cache import SegmentCache
from pipeline.delivery import FRAME
from pipeline.errors import PipelineError
from pipeline.master import chain
from pipeline.mp3 import MP3
from pipeline.music import MusicLibrary
from pipeline.opus import OPUS
from pipeline.script import parse_script
from pipeline.segments import LEAD, QUIET, SegmentEncoder, anchors, segments
from pipeline.speech import utterances
from pipeline.synthesize import SpokenTurn

RATE = 44_100
TIMING = Timing(lead_in=0.5, turn_gap=0.25, chapter_gap=1.0, tail=0.75, grid=FRAME, variation=0)
MUSIC = REPO / "assets" / "music" / "music.yaml"


def tone(seconds: float, freq: float) -> Audio:
    t = np.arange(round(seconds * RATE)) / RATE
    return Audio((0.1 * np.sin(2 * np.pi * freq * t)).astype(np.float32), RATE)


def spoken(script, lengths: list[float]) -> list[SpokenTurn]:
    """Each turn a tone with a cache key and a measured gain, as a render has them."""
    return [
        SpokenTurn(u, tone(s, 180 + 30 * i), f"turn-{i}", -2.0 + 0.5 * i)
        for i, (u, s) in enumerate(zip(utterances(script), lengths, strict=True))
    ]


def cuts(mix) -> list[int]:
    return anchors([c.start for c in mix.chapters], mix.quiet_starts(QUIET))


def test_what_is_settled_mixes_and_keys_as_the_whole_mix(write_script) -> None:
    """For every point synthesis can reach (the turns from the first up to some turn
    spoken): every window of the settled mix is the whole mix's, samples and key, and so
    are the cuts before its end. Through an overlapping turn still to come (it starts under
    the last turn), music that ducks for turns still to come, pauses and chapters."""
    body = (
        "## A\n[music: intro]\nALEX: One turn here.\nMAYA (overlap): And one over it.\n"
        "ALEX: Then a third.\n[pause 0.4s]\nMAYA: Fourth.\n## B\nALEX: Fifth.\n"
        "MAYA (overlap): Sixth, over it.\nALEX: Seventh.\n[music: outro]\nMAYA: Eighth.\n"
    )
    script = parse_script(write_script(body))
    music = MusicLibrary.load(MUSIC)
    turns = spoken(script, [3.0, 1.5, 2.5, 1.0, 2.0, 1.2, 1.8, 1.0])
    whole = assemble(script, turns, TIMING, music)
    rng = np.random.default_rng(3)
    settled_lengths = []
    for heard in range(len(turns) + 1):
        known = turns[:heard] + [None] * (len(turns) - heard)
        start = settled(script, known, TIMING, music)
        if heard == len(turns) or heard == 0:
            assert start is None  # all of it is the render's to mix; nothing to go on
            continue
        assert start is not None
        settled_lengths.append(start.length)
        assert start.length <= whole.placements[heard].start  # the next turn is not in it
        ends = sorted({start.length, *rng.integers(1, start.length, 6).tolist()})
        for lo, hi in itertools.pairwise([0, *ends]):
            assert np.array_equal(start.window(lo, hi), whole.window(lo, hi))
            assert start.window_key(lo, hi) == whole.window_key(lo, hi)
        assert [a for a in cuts(start) if a < start.length] == [
            a for a in cuts(whole) if a < start.length
        ]
    # It grows as turns come, and an overlap still to come holds it back under the last.
    assert settled_lengths == sorted(settled_lengths) and len(set(settled_lengths)) > 4
    fifth = whole.placements[4]
    assert settled_lengths[4] < (fifth.start + fifth.end) // 2


def test_a_turn_without_its_gain_stops_what_is_settled(write_script) -> None:
    """A turn too short to measure takes its host's median gain, from turns still to
    come: the settled mix stops before it."""
    script = parse_script(write_script("## A\nALEX: One.\nMAYA: Two.\nALEX: Three.\nMAYA: Four.\n"))
    turns = spoken(script, [2.0, 2.0, 0.3, 2.0])
    short = dataclasses.replace(turns[2], gain_db=None)
    start = settled(script, [turns[0], turns[1], short, None], TIMING)
    assert start is not None and len(start.placements) == 2
    assert start.length < assemble(script, turns, TIMING).placements[2].start


def test_segments_encoded_ahead_are_the_ones_mastering_asks_for(write_script, tmp_path) -> None:
    """Told the turns as they come, encoding ahead fills the segment cache with the
    settled segments, in both codecs, at the levels mastering starts from: mastering
    then encodes only the rest, and writes the same files byte for byte as without them."""
    body = "".join(
        f"## Part {c}\nALEX: Part {c} opens with this.\nMAYA: Then {c} goes on.\n" for c in range(5)
    )
    script = parse_script(write_script(body))
    turns = spoken(script, [2.0 + 0.25 * i for i in range(10)])
    whole = assemble(script, turns, TIMING)
    lanes = [
        Lane(MP3, chain(1.5, -2.0, MP3.rate), SegmentCache(tmp_path / "cache")),
        Lane(OPUS, chain(1.0, -3.0, OPUS.rate), SegmentCache(tmp_path / "cache", ".opus")),
    ]
    ahead = EncodeAhead(script, len(turns), lanes, TIMING)
    ahead.heard({i: turns[i] for i in range(4)})
    ahead.heard({i: turns[i] for i in range(4, 7)})  # the last three still to come
    ahead.close(finish=True)
    assert ahead.failure is None
    parts = segments(whole.length, cuts(whole))
    assert 0 < len(ahead.done) < len(parts)
    assert all(part in parts for part in ahead.done)
    assert max(part.end for part in ahead.done) <= whole.placements[7].start - LEAD
    for lane in lanes:
        name = lane.codec.__class__.__name__
        path = tmp_path / f"{name}-ahead"
        with_cache = SegmentEncoder(whole, path, lane.codec, cuts(whole), lane.cache)
        found = with_cache.encode(lane.filters)
        assert (found.reused, found.encoded) == (len(ahead.done), len(parts) - len(ahead.done))
        plain = SegmentEncoder(whole, tmp_path / f"{name}-plain", lane.codec, cuts(whole))
        plain.encode(lane.filters)
        assert with_cache.path.read_bytes() == plain.path.read_bytes()


def test_nothing_is_encoded_ahead_while_a_turn_beyond_the_budget_is_spoken(
    write_script, tmp_path
) -> None:
    """While the workers speak a turn too big for their memory budget (``crowded``, see
    test_faults), encoding ahead starts no encoder; it goes on once that turn is done."""
    body = "".join(f"## Part {c}\nALEX: Part {c} opens.\nMAYA: And goes on.\n" for c in range(3))
    script = parse_script(write_script(body))
    turns = spoken(script, [2.0] * 6)
    lane = Lane(MP3, chain(1.5, -2.0, MP3.rate), SegmentCache(tmp_path / "cache"))
    crowded = threading.Event()
    crowded.set()
    ahead = EncodeAhead(script, len(turns), [lane], TIMING, crowded=crowded)
    ahead.heard({i: turns[i] for i in range(5)})
    time.sleep(1.0)
    assert ahead.encoded == 0 and not ahead.done
    crowded.clear()
    ahead.close(finish=True)
    assert ahead.failure is None and ahead.encoded == len(ahead.done) > 0


def test_an_encoder_that_fails_costs_only_time_and_a_bug_is_raised(write_script, tmp_path) -> None:
    """An encoder that fails ahead (here: a filter ffmpeg does not know) is left for
    mastering, which encodes that segment again and says why if it fails again; a bug
    (here: levels of the wrong type) is raised when encoding ahead is closed."""
    script = parse_script(write_script("## A\nALEX: One turn.\nMAYA: Two.\n## B\nALEX: Three.\n"))
    turns = spoken(script, [2.0, 2.0, 2.0])
    broken = Lane(MP3, "no_such_filter", SegmentCache(tmp_path / "cache"))
    ahead = EncodeAhead(script, len(turns), [broken], TIMING)
    ahead.heard({0: turns[0], 1: turns[1]})
    ahead.close(finish=True)
    assert isinstance(ahead.failure, PipelineError) and not ahead.done
    lane = Lane(MP3, chain(1.5, -2.0, MP3.rate), SegmentCache(tmp_path / "cache"))
    wrong = EncodeAhead(script, len(turns), [lane], TIMING, levels=-3.0)  # type: ignore[arg-type]
    wrong.heard({0: turns[0], 1: turns[1]})
    with pytest.raises(AttributeError):
        wrong.close(finish=True)
