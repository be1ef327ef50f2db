"""Transcripts timed from where each turn lands in the mix: WebVTT, SRT and Podcasting 2.0 JSON.

Each turn is cut into caption cues at sentence ends, each cue at most ``MAX_LINES`` lines
of at most ``LINE_CHARS`` characters. Every sentence is spoken on its own, so its start and
end in the mix are exact; a sentence too long for one cue shares its time between its cues
in proportion to their length, since the engines report no word timings. An overlapping
turn's cues overlap the end of the turn before, as the voices do; cues are listed in order
of their start.
"""

from __future__ import annotations

import html
import textwrap
from dataclasses import dataclass
from typing import Any

from pipeline.assemble import Mix
from pipeline.clock import clock
from pipeline.script import Script
from pipeline.speech import sentences

LINE_CHARS = 62  # "about 65": a caption line a reader takes in at a glance
MAX_LINES = 2


@dataclass(frozen=True)
class Cue:
    """One caption."""

    start: float
    """Seconds from the start of the episode."""

    end: float
    """Seconds from the start of the episode."""

    speaker: str
    """The host's display name."""

    lines: tuple[str, ...]
    """The caption's text, wrapped."""

    line: int
    """Script line of the turn it comes from."""

    @property
    def text(self) -> str:
        """The caption's text on one line."""
        return " ".join(self.lines)


def cues(script: Script, mix: Mix) -> list[Cue]:
    """Caption cues for every turn, in order of their start."""
    result = []
    for placement in mix.placements:
        turn = placement.turn
        name = script.meta.hosts[turn.speaker].name
        said = sentences(turn.text)
        spans = placement.sentences
        if len(spans) != len(said):  # not spoken sentence by sentence: one span
            said, spans = [" ".join(said)], ((placement.start, placement.end),)
        for sentence, (first, last) in zip(said, spans, strict=True):
            start, end = mix.seconds(first), mix.seconds(last)
            groups = _wrapped(sentence)
            total = sum(len(" ".join(group)) for group in groups)
            at = start
            for group in groups:
                length = (end - start) * len(" ".join(group)) / total
                result.append(Cue(at, min(at + length, end), name, tuple(group), turn.line))
                at += length
    return sorted(result, key=lambda cue: cue.start)


def _wrapped(sentence: str) -> list[list[str]]:
    """A sentence as groups of wrapped lines, each group a cue."""
    lines = textwrap.wrap(sentence, LINE_CHARS, break_long_words=False)
    return [lines[index : index + MAX_LINES] for index in range(0, len(lines), MAX_LINES)]


def _timestamp(seconds: float, separator: str) -> str:
    return clock(seconds, millis=separator)


def to_vtt(all_cues: list[Cue]) -> str:
    """WebVTT with a ``<v Name>`` voice tag on every cue."""
    blocks = ["WEBVTT"]
    for cue in all_cues:
        voice = html.escape(cue.speaker, quote=False)
        body = "\n".join(html.escape(line, quote=False) for line in cue.lines)
        blocks.append(
            f"{_timestamp(cue.start, '.')} --> {_timestamp(cue.end, '.')}\n<v {voice}>{body}"
        )
    return "\n\n".join(blocks) + "\n"


# SubRip has no escape: players read <b>, <i>, <font> as markup, so angle brackets in the
# text become the look-alike single guillemets.
_SRT_TEXT = str.maketrans({"<": "\u2039", ">": "\u203a"})


def to_srt(all_cues: list[Cue]) -> str:
    """SubRip captions, each cue starting with the speaker's name; no markup."""
    blocks = []
    for number, cue in enumerate(all_cues, start=1):
        body = "\n".join(cue.lines).translate(_SRT_TEXT)
        blocks.append(
            f"{number}\n{_timestamp(cue.start, ',')} --> {_timestamp(cue.end, ',')}\n"
            f"{cue.speaker.translate(_SRT_TEXT)}: {body}"
        )
    return "\n\n".join(blocks) + "\n"


def to_json(all_cues: list[Cue]) -> dict[str, Any]:
    """A Podcasting 2.0 JSON transcript."""
    return {
        "version": "1.0.0",
        "segments": [
            {
                "speaker": cue.speaker,
                "startTime": round(cue.start, 3),
                "endTime": round(cue.end, 3),
                "body": cue.text,
            }
            for cue in all_cues
        ],
    }
