"""Stage 4, assemble: the mixing desk. Spoken turns and music laid on one timeline.

Timing. The gap before a turn comes from the conversational timing model
(``pipeline/timing.py``): a ``[pause]`` written just before it, else a gap chosen by what
came before (an answer to a question comes quickly, a new chapter leaves more room). An
overlapping turn starts under the end of the one before it. A ``[music: NAME]`` cue starts
its piece where it stands (``music_gap`` after the last words, unless a pause says
otherwise), and the next turn comes in when the piece's ``lead`` has played. After the last
turn comes ``tail`` (or its pause), or the end of the last piece of music if that is later.
Every sound that follows a gap is moved onto the MP3 frame grid (up to 26 ms later), so
what follows an edit moves by whole frames and is not encoded again. Engine silence is
trimmed first (synthesize stage), so the gaps are exactly as planned.

Levels. Every turn is brought to ``SPEECH_LUFS`` (ITU-R BS.1770 via pyloudnorm) by one
gain, so the hosts match whatever their engine's raw level: measured as each turn is
spoken and applied here, once (``pipeline/level.py``). Peaks are left to the master
limiter (``pipeline/master.py``).

Music plays at ``music_db`` relative to speech on its own and is ducked to ``duck_db``
under speech, ramping down ``attack`` seconds before a voice comes in and back up
``release`` seconds after it stops.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from pipeline import level
from pipeline.audio import Audio, pan
from pipeline.delivery import CHANNELS
from pipeline.errors import PipelineError
from pipeline.music import MusicLibrary
from pipeline.script import MusicCue, Pause, Script, SoundbiteMark, Turn
from pipeline.synthesize import SpokenTurn
from pipeline.timing import Timing

__all__ = ["Levels", "Mix", "Placement", "Timing", "assemble", "settled"]

# Bump when the way a window is mixed changes: encoded segments are kept under what their
# windows are made from (``Mix.window_key``), not their samples.
MIX_VERSION = 1


@dataclass(frozen=True)
class Levels:
    """How music sits against speech, in dB relative to the speech level."""

    music_db: float = -3.0
    """Music on its own."""

    duck_db: float = -15.0
    """Music under a voice."""

    attack: float = 0.4
    """Seconds the music takes to duck before a voice comes in."""

    release: float = 0.8
    """Seconds it takes to come back up after the voice stops."""


@dataclass(frozen=True)
class Placement:
    """Where a turn lands in the mix."""

    turn: Turn
    """The turn."""

    speech_text: str
    """What the engine was asked to say."""

    words: str
    """What a listener should hear, in plain words."""

    start: int
    """First sample of the turn's speech."""

    end: int
    """One past its last sample."""

    gain_db: float
    """Gain before the turn's limiter (see ``leveled``)."""

    sentences: tuple[tuple[int, int], ...] = ()
    """Each sentence's first sample and one past its last, in the mix."""

    pan: float = 0.0
    """Where the host sits in the stereo mix (-1 left to 1 right)."""

    @property
    def overlapped(self) -> bool:
        """Whether the turn starts under the end of the one before it."""
        return self.turn.overlap is not None


@dataclass(frozen=True)
class ChapterMark:
    """A chapter's start in the mix."""

    title: str
    """Chapter title."""

    start: int
    """Sample where it starts: its first music cue or the first sound of its first turn."""

    line: int
    """Script line of the heading."""


@dataclass(frozen=True)
class MusicMark:
    """Where a ``[music: NAME]`` cue falls in the mix."""

    name: str
    """Music piece name."""

    at: int
    """Sample where the piece starts."""

    end: int
    """One past its last sample (``at`` if the cue had no piece to play)."""

    line: int
    """Script line of the cue."""


@dataclass(frozen=True)
class SoundbiteSpan:
    """A soundbite the script marks, in the mix."""

    start: int
    """First sample of its first turn."""

    end: int
    """One past the last sample of its last turn."""

    line: int
    """Script line of its ``[soundbite]``."""


@dataclass
class Mix:
    """The assembled episode: where everything is, and the sound of any stretch of it
    (``window``), mixed when asked for. The whole episode is never held at once, so a
    render's memory does not grow with its length (``pipeline/segments.py`` encodes it a
    window at a time)."""

    sample_rate: int
    """Samples per second."""

    length: int
    """Samples in the episode."""

    placements: list[Placement]
    """Every turn's position, in order."""

    chapters: list[ChapterMark]
    """Every chapter's start, in order."""

    music: list[MusicMark]
    """Every music cue's position, in order."""

    soundbites: list[SoundbiteSpan] = field(default_factory=list)
    """The soundbites the script marks, in order."""

    turns: list[np.ndarray] = field(default_factory=list, repr=False)
    """Each placement's speech as spoken (mono; a cached turn is a memory map of its file,
    read a slice at a time)."""

    pieces: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    """Each music piece's samples (stereo), by name."""

    levels: Levels = field(default_factory=lambda: Levels())
    """How music sits against speech."""

    keys: list[str] = field(default_factory=list)
    """Each placement's turn's cache key (what made its audio; '' if unknown)."""

    _pieces_digest: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.length / self.sample_rate

    def seconds(self, sample: int) -> float:
        """A sample position in seconds."""
        return sample / self.sample_rate

    def window(self, lo: int, hi: int) -> np.ndarray:
        """Samples ``lo`` to ``hi`` of the mix, stereo: each turn levelled, placed and
        added, then the music ducked under the speech, sample for sample what mixing the
        whole episode at once gives (every step is per sample, in the same order)."""
        out = np.zeros((hi - lo, CHANNELS), dtype=np.float32)
        for placement, samples in zip(self.placements, self.turns, strict=True):
            a, b = max(lo, placement.start), min(hi, placement.end)
            if a < b:
                part = _slice(samples, a - placement.start, b - placement.start)
                leveled = level.leveled(part, placement.gain_db, self.sample_rate)
                out[a - lo : b - lo] += pan(leveled, placement.pan)
        speech = [(p.start, p.end) for p in self.placements]
        for mark in self.music:
            piece = self.pieces.get(mark.name)
            a, b = max(lo, mark.at), min(hi, mark.end)
            if piece is not None and a < b:
                positions = np.arange(a, b, dtype=np.float64)
                envelope = duck_gain(mark, positions, speech, self.sample_rate, self.levels)
                sound = _stereo(piece[a - mark.at : b - mark.at])
                out[a - lo : b - lo] += sound * envelope[:, None]
        return out

    def digest(self) -> str:
        """SHA-256 of what the whole mix is made from, without mixing it (``window_key``);
        of its samples, a stretch at a time, if a turn has no cache key."""
        recipe = self.window_key(0, self.length)
        if recipe is not None:
            return recipe
        digest = hashlib.sha256()
        for lo in range(0, self.length, 1 << 20):
            digest.update(memoryview(self.window(lo, min(self.length, lo + (1 << 20)))))
        return digest.hexdigest()

    def window_key(self, lo: int, hi: int) -> str | None:
        """A digest of everything ``window(lo, hi)`` is made from, relative to ``lo``: the
        turns that sound in it (each by its cache key, the stretch of it heard, its gain and
        place), the music (each piece by its samples' digest, the stretch heard) and the
        voices that duck it, the levels and the way it is mixed. None if a turn in it has no
        key (then the samples are hashed)."""
        parts: list[object] = [MIX_VERSION, self.sample_rate, hi - lo, repr(self.levels)]
        for placement, key in zip(self.placements, self.keys, strict=True):
            a, b = max(lo, placement.start), min(hi, placement.end)
            if a < b:
                if not key:
                    return None
                where = (placement.start - lo, a - placement.start, b - placement.start)
                parts.append((key, where, placement.gain_db, placement.pan))
        for mark in self.music:
            a, b = max(lo, mark.at), min(hi, mark.end)
            if a < b and mark.name in self.pieces:
                ducking = [
                    (s - lo, e - lo)
                    for s, e in ((p.start, p.end) for p in self.placements)
                    if not (e <= mark.at or s >= mark.end)  # as duck_gain takes them
                    and s - self.levels.attack * self.sample_rate < hi
                    and e + self.levels.release * self.sample_rate > lo
                ]
                heard = (mark.at - lo, a - mark.at, b - mark.at)
                parts.append((self._piece_digest(mark.name), heard, ducking))
        return hashlib.sha256(repr(parts).encode()).hexdigest()

    def quiet_starts(self, silence: int) -> list[tuple[int, str]]:
        """Where a turn starts after at least ``silence`` samples in which nothing
        sounds, each with a digest of who says what there: where the encoder may cut the
        mix (``pipeline/segments.py``)."""
        sounds = sorted(
            [(p.start, p.end) for p in self.placements]
            + [(m.at, m.end) for m in self.music if m.name in self.pieces]
        )
        heard, quiet, index = 0, [], 0  # heard: the end of every sound started so far
        for placement in sorted(self.placements, key=lambda p: p.start):
            while index < len(sounds) and sounds[index][0] < placement.start:
                heard, index = max(heard, sounds[index][1]), index + 1
            if placement.start - heard >= silence:
                said = f"{placement.turn.speaker}\0{placement.speech_text}"
                quiet.append((placement.start, hashlib.sha256(said.encode()).hexdigest()))
        return quiet

    def _piece_digest(self, name: str) -> str:
        """SHA-256 of a piece's samples, worked out once."""
        if name not in self._pieces_digest:
            samples = np.ascontiguousarray(self.pieces[name])
            self._pieces_digest[name] = hashlib.sha256(memoryview(samples)).hexdigest()
        return self._pieces_digest[name]

    @property
    def audio(self) -> Audio:
        """The whole episode at once (for tests and short clips: a render never asks)."""
        return Audio(self.window(0, self.length), self.sample_rate)


def _slice(samples: np.ndarray, a: int, b: int) -> np.ndarray:
    """``samples[a:b]``; read from the file for a memory map, so the pages a render has
    mixed are not kept mapped (its memory would grow with the episode)."""
    if isinstance(samples, np.memmap) and samples.filename is not None:
        offset = samples.offset + a * samples.itemsize
        return np.fromfile(samples.filename, dtype=samples.dtype, count=b - a, offset=offset)
    return samples[a:b]


def assemble(
    script: Script,
    spoken: Iterable[SpokenTurn],
    timing: Timing | None = None,
    music: MusicLibrary | None = None,
    levels: Levels | None = None,
) -> Mix:
    """Lay ``spoken`` (one per turn of ``script``, in order) and the music on a timeline.

    Without a music ``library``, music cues are placed as marks but make no sound.
    """
    spoken_turns = list(spoken)
    if not spoken_turns:
        raise PipelineError("nothing to assemble: the script has no turns", path=script.path)
    rate = spoken_turns[0].audio.sample_rate
    gains = level.gains(
        [(t.utterance.turn.speaker, t.audio.samples, t.gain_db) for t in spoken_turns], rate
    )
    desk, waiting = _lay(script, list(zip(spoken_turns, gains, strict=True)), timing, rate, music)
    if waiting is not None:
        raise ValueError("spoken turns are out of step with the script")
    return desk.mix(spoken_turns, levels or Levels())


def settled(
    script: Script,
    spoken: Sequence[SpokenTurn | None],
    timing: Timing | None = None,
    music: MusicLibrary | None = None,
    levels: Levels | None = None,
) -> Mix | None:
    """While turns are still being spoken (``spoken``: one per turn of ``script``, None
    for each still to come), the start of the mix that they cannot change: the turns up
    to the first one missing (or unmeasured: its gain may be its host's median, from
    turns to come) laid as ``assemble`` lays them, and a ``length`` short of where the
    next could begin by the time the music starts ducking for it. Every window inside
    that length mixes, and keys (``Mix.window_key``), as the whole mix's will. None: no
    such start, or nothing missing."""
    ready = list(itertools.takewhile(lambda t: t is not None and t.gain_db is not None, spoken))
    if not ready:
        return None
    rate = ready[0].audio.sample_rate
    laid = [(t, t.gain_db) for t in ready if t.gain_db is not None]
    desk, waiting = _lay(script, laid, timing, rate, music)
    if waiting is None:
        return None
    levels = levels or Levels()
    last = desk.placements[-1] if desk.placements else None
    # The next turn starts after a gap from the cursor, or under the end of the last turn
    # but not before its middle; the music ducks ``attack`` before it.
    begins = desk.cursor
    if waiting.overlap is not None and last is not None:
        begins = (last.start + last.end) // 2
    length = begins - math.ceil(levels.attack * rate)
    if length <= 0:
        return None
    chapters = list(desk.chapters)
    if desk.chapter_start is not None:  # the chapter being laid: its start is an anchor
        chapters.append(ChapterMark("", desk.chapter_start, 0))
    return dataclasses.replace(desk.mix(ready, levels), length=length, chapters=chapters)


def _lay(
    script: Script,
    turns: Sequence[tuple[SpokenTurn, float]],
    timing: Timing | None,
    rate: int,
    music: MusicLibrary | None,
) -> tuple[_Desk, Turn | None]:
    """The script's items laid in order, with ``turns`` (each spoken turn and its gain,
    from the first): the desk, and the turn it stopped at for want of its audio (None:
    the script was laid to its end)."""
    queue = iter(turns)
    desk = _Desk(timing or Timing(), rate, music, script.meta.pans)
    for index, chapter in enumerate(script.chapters):
        desk.open_chapter(index)
        for item in chapter.items:
            if isinstance(item, Pause):
                desk.pause(item)
            elif isinstance(item, MusicCue):
                desk.cue(item)
            elif isinstance(item, SoundbiteMark):
                desk.soundbite(item)
            else:
                taken = next(queue, None)
                if taken is None:
                    return desk, item
                turn_audio, gain_db = taken
                if turn_audio.utterance.turn is not item:
                    raise ValueError("spoken turns are out of step with the script")
                desk.turn(item, turn_audio, gain_db)
        desk.close_chapter(chapter.title, chapter.line)
    if next(queue, None) is not None:
        raise ValueError("more spoken turns than the script has")
    return desk, None


@dataclass
class _Desk:
    """The timeline as it is laid, item by item in script order: where the next sound goes."""

    timing: Timing
    rate: int
    music: MusicLibrary | None
    pans: dict[str, float]  # where each host sits in the stereo mix
    placements: list[Placement] = field(default_factory=list)
    chapters: list[ChapterMark] = field(default_factory=list)
    marks: list[MusicMark] = field(default_factory=list)
    cursor: int = 0  # where the next gap is measured from: the last speech's end, or a lead
    pending: int | None = None  # silence written with [pause] since then
    previous: Turn | None = None  # the turn just said, if nothing came between
    chapter_index: int = 0
    chapter_start: int | None = None  # the chapter's first sound, once placed
    first_turn: bool = True  # no turn of this chapter placed yet
    soundbites: list[SoundbiteSpan] = field(default_factory=list)
    bite: tuple[int, int] | None = None  # an open soundbite: its first placement, its line

    def samples(self, seconds: float) -> int:
        return round(seconds * self.rate)

    def opening(self, position: int) -> int:
        """Where a sound that follows a gap goes: on the grid (``Timing.grid``)."""
        grid = self.timing.grid
        return -(-position // grid) * grid

    def open_chapter(self, index: int) -> None:
        self.chapter_index, self.chapter_start, self.first_turn = index, None, True

    def close_chapter(self, title: str, line: int) -> None:
        start = self.cursor if self.chapter_start is None else self.chapter_start
        self.chapters.append(ChapterMark(title, start, line))

    def pause(self, item: Pause) -> None:
        self.pending = (self.pending or 0) + self.samples(item.seconds)
        self.previous = None

    def cue(self, item: MusicCue) -> None:
        if self.pending is not None:
            gap = self.pending
        else:  # a breath after the last words; none before the first
            gap = self.samples(self.timing.music_gap) if self.placements else 0
        at = self.opening(self.cursor + gap)
        piece = self.music.pieces.get(item.name) if self.music else None
        length = len(piece.audio.samples) if piece else 0
        self.marks.append(MusicMark(item.name, at, at + length, item.line))
        self.chapter_start = at if self.chapter_start is None else self.chapter_start
        if piece:
            self.cursor, self.pending = at + self.samples(piece.lead), 0
        self.previous = None

    def soundbite(self, item: SoundbiteMark) -> None:
        if item.start:
            self.bite = (len(self.placements), item.line)
        elif self.bite is not None:
            first, line = self.bite
            spoken = self.placements[first:]
            self.soundbites.append(SoundbiteSpan(spoken[0].start, max(p.end for p in spoken), line))
            self.bite = None

    def turn(self, item: Turn, turn_audio: SpokenTurn, gain_db: float) -> None:
        length = len(turn_audio.audio.samples)
        if item.overlap is not None and self.placements:
            # Under the end of the turn before, never before its middle.
            before = self.placements[-1]
            under = self.samples(item.overlap or self.timing.overlap)
            start = max(before.end - under, (before.start + before.end) // 2)
        else:
            if self.pending is not None:
                gap = self.pending
            elif not self.placements:
                gap = self.samples(self.timing.lead_in)
            else:
                chapter_opens = self.first_turn and self.chapter_index > 0
                gap = self.samples(self.timing.gap(self.previous, item, chapter_opens))
            start = self.opening(self.cursor + gap)
        end = start + length
        spans = turn_audio.sentences or ((0, length),)
        said = turn_audio.utterance
        self.placements.append(
            Placement(
                item,
                said.text,
                said.words,
                start,
                end,
                gain_db,
                tuple((start + a, start + b) for a, b in spans),
                self.pans[item.speaker],
            )
        )
        self.chapter_start = start if self.chapter_start is None else self.chapter_start
        self.cursor, self.pending, self.first_turn = max(self.cursor, end), None, False
        self.previous = item

    def mix(self, spoken_turns: list[SpokenTurn], levels: Levels) -> Mix:
        """The laid timeline, ready to sound: its length and what plays where."""
        speech_end = max(p.end for p in self.placements)
        after = self.pending if self.pending is not None else self.samples(self.timing.tail)
        total = max([max(self.cursor, speech_end) + after, *(mark.end for mark in self.marks)])
        pieces = {
            mark.name: self.music.pieces[mark.name].audio.samples
            for mark in self.marks
            if self.music is not None and mark.name in self.music.pieces
        }
        return Mix(
            self.rate,
            total,
            self.placements,
            self.chapters,
            self.marks,
            self.soundbites,
            [turn.audio.samples for turn in spoken_turns],
            pieces,
            levels,
            [turn.key for turn in spoken_turns],
        )


def _stereo(samples: np.ndarray) -> np.ndarray:
    """A piece's samples in stereo: a mono piece in the centre, at the same loudness."""
    return pan(samples, 0.0) if samples.ndim == 1 else samples


def duck_gain(
    piece: MusicMark,
    positions: np.ndarray,
    speech: list[tuple[int, int]],
    rate: int,
    levels: Levels,
) -> np.ndarray:
    """Gain for the music ``piece`` at ``positions`` (samples of the mix): down under
    speech, up between."""
    gain_db = np.full(len(positions), levels.music_db)
    attack, release = levels.attack * rate, levels.release * rate
    for s, e in speech:
        if e <= piece.at or s >= piece.end:
            continue  # only voices that overlap the music duck it
        curve = np.interp(
            positions,
            [s - attack, s, e, e + release],
            [levels.music_db, levels.duck_db, levels.duck_db, levels.music_db],
        )
        np.minimum(gain_db, curve, out=gain_db)
    return (10 ** (gain_db / 20)).astype(np.float32)
