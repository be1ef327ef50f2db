"""The timeline: where every turn, chapter and music cue of a render lands, in seconds.

Written beside the MP3 (``episode.timeline.json``) for producers and tools, and read
back by QA, the benchmark and the site. The records here are the file's schema: reading
one checks every field's type, so a damaged or foreign file is one clear error.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dacite

from pipeline.errors import PipelineError
from pipeline.files import read_json_record

_STRICT = dacite.Config(cast=[tuple], strict=True)


@dataclass(frozen=True)
class TimedHost:
    """A host and the voice file they were rendered with."""

    name: str
    """The host's name."""

    voice: str
    """Their voice file."""


@dataclass(frozen=True)
class TimedChapter:
    """Where a chapter starts."""

    title: str
    """Chapter title."""

    start: float
    """Seconds from the start."""

    line: int
    """Script line of its heading."""


@dataclass(frozen=True)
class TimedTurn:
    """Where a turn is spoken, and what it says."""

    speaker: str
    """Its speaker label."""

    name: str
    """The host's name."""

    start: float
    """Seconds from the start to its first sample."""

    end: float
    """Seconds to one past its last sample."""

    gain_db: float
    """The gain that levelled it."""

    overlap: bool
    """Whether it starts under the end of the turn before."""

    sentences: tuple[tuple[float, float], ...]
    """Each sentence's start and end, in seconds."""

    line: int
    """Its script line."""

    text: str
    """The turn as written."""

    speech: str
    """What its engine was asked to say."""

    words: str
    """What a listener should hear, in plain words."""


@dataclass(frozen=True)
class TimedCue:
    """Where a music cue plays."""

    name: str
    """The piece."""

    start: float
    """Seconds from the start."""

    end: float
    """Seconds to its end."""

    line: int
    """Script line of the cue."""


@dataclass(frozen=True)
class Timeline:
    """Where everything in a render lands."""

    podcast: str
    """Show title."""

    episode: int
    """Episode number."""

    title: str
    """Episode title."""

    duration: float
    """Length in seconds."""

    sample_rate: int
    """Sample rate of the mix."""

    hosts: dict[str, TimedHost]
    """Each speaker label's host."""

    chapters: tuple[TimedChapter, ...]
    """Chapters, in order."""

    turns: tuple[TimedTurn, ...]
    """Turns, in order."""

    music: tuple[TimedCue, ...]
    """Music cues, in order."""

    def to_json(self) -> dict[str, Any]:
        """As a JSON object."""
        return dataclasses.asdict(self)

    @staticmethod
    def from_json(record: Any) -> Timeline:
        """From ``to_json``'s object (``ValueError`` if it has another shape)."""
        try:
            return dacite.from_dict(Timeline, record, _STRICT)
        except (dacite.DaciteError, TypeError) as exc:
            raise ValueError(str(exc)) from None

    @staticmethod
    def load(path: Path) -> Timeline:
        """The timeline at ``path``, or an error saying to render again."""
        record = read_json_record(path, dict)
        if record is None:
            raise PipelineError(
                f"{path} is missing or not a timeline",
                hint="render the episode first ('make episode')",
            )
        try:
            return Timeline.from_json(record)
        except ValueError as exc:
            raise PipelineError(
                f"{path} is not a timeline this version reads: {exc}",
                hint="render the episode again ('make episode')",
            ) from None
