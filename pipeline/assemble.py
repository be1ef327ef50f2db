"""Stage 4, assemble: spoken turns laid on one timeline with natural gaps.

The gap before a turn is the ``[pause]`` written just before it if there is one (exactly
that long), else ``lead_in`` for the first turn, ``chapter_gap`` at a chapter's first
turn, and ``turn_gap`` between turns. After the last turn comes ``tail`` (or its pause).
Engine silence is trimmed first (synthesize stage), so gaps are exactly as planned.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from pipeline.audio import Audio
from pipeline.errors import PipelineError
from pipeline.script import MusicCue, Pause, Script, Turn
from pipeline.synthesize import SpokenTurn


@dataclass(frozen=True)
class Timing:
    """Default silences, in seconds."""

    lead_in: float = 0.5
    """Before the first turn."""

    turn_gap: float = 0.45
    """Between turns within a chapter."""

    chapter_gap: float = 1.2
    """Before a chapter's first turn."""

    tail: float = 1.0
    """After the last turn."""


@dataclass(frozen=True)
class Placement:
    """Where a turn lands in the mix."""

    turn: Turn
    """The turn."""

    speech_text: str
    """What the engine was asked to say."""

    start: int
    """First sample of the turn's speech."""

    end: int
    """One past its last sample."""


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
    """Music asset name."""

    at: int
    """Sample position of the cue."""

    line: int
    """Script line of the cue."""


@dataclass
class Mix:
    """The assembled episode: audio plus where everything in it is."""

    audio: Audio
    """The whole episode, mono."""

    placements: list[Placement]
    """Every turn's position, in order."""

    chapters: list[ChapterMark]
    """Every chapter's start, in order."""

    music: list[MusicMark]
    """Every music cue's position, in order."""

    def seconds(self, sample: int) -> float:
        """A sample position in seconds."""
        return sample / self.audio.sample_rate


def assemble(script: Script, spoken: Iterable[SpokenTurn], timing: Timing | None = None) -> Mix:
    """Lay ``spoken`` (one per turn of ``script``, in order) on a timeline."""
    timing = timing or Timing()
    spoken_turns = list(spoken)
    if not spoken_turns:
        raise PipelineError("nothing to assemble: the script has no turns", path=script.path)
    rate = spoken_turns[0].audio.sample_rate
    queue = iter(spoken_turns)

    def samples(seconds: float) -> int:
        return round(seconds * rate)

    placements: list[Placement] = []
    chapters: list[ChapterMark] = []
    music: list[MusicMark] = []
    segments: list[tuple[int, np.ndarray]] = []
    cursor = 0  # end of the last turn placed
    pending: int | None = None  # silence written with [pause] since the last turn

    for chapter_index, chapter in enumerate(script.chapters):
        chapter_start: int | None = None
        first_turn = True
        for item in chapter.items:
            if isinstance(item, Pause):
                pending = (pending or 0) + samples(item.seconds)
            elif isinstance(item, MusicCue):
                at = cursor + (pending or 0)
                music.append(MusicMark(item.name, at, item.line))
                chapter_start = at if chapter_start is None else chapter_start
            else:
                turn_audio = next(queue)
                if turn_audio.utterance.turn is not item:
                    raise ValueError("spoken turns are out of step with the script")
                if pending is not None:
                    gap = pending
                elif not placements:
                    gap = samples(timing.lead_in)
                elif first_turn and chapter_index > 0:
                    gap = samples(timing.chapter_gap)
                else:
                    gap = samples(timing.turn_gap)
                start = cursor + gap
                end = start + len(turn_audio.audio.samples)
                placements.append(Placement(item, turn_audio.utterance.text, start, end))
                segments.append((start, turn_audio.audio.samples))
                chapter_start = start if chapter_start is None else chapter_start
                cursor, pending, first_turn = end, None, False
        chapters.append(
            ChapterMark(
                chapter.title, cursor if chapter_start is None else chapter_start, chapter.line
            )
        )
    total = cursor + (pending if pending is not None else samples(timing.tail))
    # One full-length buffer; each turn is copied into it once.
    out = np.zeros(total, dtype=np.float32)
    for start, data in segments:
        out[start : start + len(data)] = data
    return Mix(Audio(out, rate), placements, chapters, music)
