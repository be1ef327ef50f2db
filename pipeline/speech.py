"""Stage 2, speech text: what each turn's engine is asked to say.

The script keeps display text (for transcripts and show notes); this stage makes the
text an engine reads: Markdown emphasis and links removed, typographic punctuation
made plain, whitespace collapsed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pipeline.script import Script, Turn

_LINK = re.compile(r"\[([^\[\]]+)\]\([^)]*\)")
_EMPHASIS = re.compile(r"(\*{1,3}|_{1,3}|`+)(?=\S)(.+?)(?<=\S)\1")
_PLAIN = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u2013": ", ",
        "\u2014": ", ",
        "\u2026": "...",
        "\u00a0": " ",
    }
)
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Utterance:
    """A turn and the text its engine will speak."""

    turn: Turn
    """The turn as written."""

    text: str
    """Speech text for the engine."""


def speech_text(display: str) -> str:
    """The speakable form of a turn's display text."""
    text = _LINK.sub(r"\1", display)
    text = _EMPHASIS.sub(r"\2", text)
    text = text.translate(_PLAIN)
    return _SPACE.sub(" ", text).strip()


def utterances(script: Script) -> list[Utterance]:
    """Every turn of ``script`` with its speech text, in order."""
    return [Utterance(turn, speech_text(turn.text)) for turn in script.turns()]
