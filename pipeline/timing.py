"""Conversational timing: the silences between turns and inside them.

One fixed gap between every pair of turns sounds read, not spoken. In conversation the
gap depends on what came before: the most common gap between speakers is about 200 ms,
answers to questions come fastest, a quick reaction follows at once, and a longer silence
is heard as a change of topic. The model (documented in the README):

* Inside a turn, each sentence is spoken on its own and the sentences are joined by a
  pause chosen by how the sentence ends (a question leaves a little more room than a
  statement), whatever pause the engine would have left.
* Between turns, the gap before a turn is the first rule that applies:
  a ``[pause]`` written just before it (exactly that long); ``lead_in`` before the first
  turn; ``chapter_gap`` before a chapter's first turn; ``answer_gap`` after the other
  host's question; ``reaction_gap`` before a short reaction (``REACTION_WORDS`` words or
  fewer); ``same_host_gap`` when a host speaks twice in a row; else ``turn_gap`` (also
  after a cue).
* The gaps within a chapter vary by up to ``variation`` either way, by a hash of the
  turn's text: people never leave the same silence twice, and 120 identical gaps are heard
  as a machine. The same script always gets the same gaps; a chapter's gap is fixed, so an
  edit in one chapter leaves the others' samples as they were.
* An overlapping turn (``MAYA (overlap): Right.``) is a short interjection that starts
  ``overlap`` seconds (or as long as the label says) before the previous turn ends, and
  never before the middle of it.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from pipeline.delivery import FRAME
from pipeline.script import Turn

REACTION_WORDS = 3  # "Right.", "Wait, really?": said at once, the way people react


@dataclass(frozen=True)
class Timing:
    """Silences, in seconds."""

    lead_in: float = 0.5
    """Before the first turn."""

    turn_gap: float = 0.4
    """Between turns within a chapter, when nothing below applies."""

    answer_gap: float = 0.22
    """After a turn that ends with the other host's question."""

    reaction_gap: float = 0.18
    """Before a short reaction."""

    same_host_gap: float = 0.7
    """When the same host speaks again: a new thought."""

    chapter_gap: float = 1.2
    """Before a chapter's first turn: a new topic."""

    music_gap: float = 0.3
    """Between the last words and a music cue."""

    tail: float = 1.0
    """After the last turn."""

    overlap: float = 0.35
    """How far an overlapping turn starts before the end of the one it interrupts."""

    variation: float = 0.2
    """How much a gap between turns varies either way, as a share of it (0: not at all)."""

    sentence_pause: float = 0.32
    """Between sentences of a turn, after a statement."""

    question_pause: float = 0.42
    """Between sentences of a turn, after a question."""

    trail_pause: float = 0.55
    """Between sentences of a turn, after one that trails off ("...")."""

    grid: int = FRAME
    """Every sound that follows a gap (a turn, a cue) starts on a multiple of this many
    samples (an MP3 frame, 26 ms, added to the gap before it), so what follows an edit
    moves by whole frames, keeps its samples on the same frames and is not encoded again
    (``pipeline/segments.py``). 1 turns it off."""

    def after_sentence(self, sentence: str) -> float:
        """The pause after ``sentence`` when the same turn goes on."""
        end = _bare(sentence)
        if end.endswith(("...", "\u2026")):
            return self.trail_pause
        return self.question_pause if end.endswith("?") else self.sentence_pause

    def gap(self, previous: Turn | None, turn: Turn, chapter_start: bool) -> float:
        """The silence before ``turn`` (not the episode's first, no ``[pause]`` written),
        ``previous`` having just been said (None: a cue came between)."""
        if chapter_start:
            return self.chapter_gap
        if previous is None:
            gap = self.turn_gap
        elif previous.speaker == turn.speaker:
            gap = self.same_host_gap
        elif _bare(previous.text).endswith("?"):
            gap = self.answer_gap
        elif len(turn.text.split()) <= REACTION_WORDS:
            gap = self.reaction_gap
        else:
            gap = self.turn_gap
        # A share in [-1, 1] from the turn's text: reproducible, unlike a random draw.
        share = zlib.crc32(turn.text.encode("utf-8")) / 0xFFFFFFFF * 2 - 1
        return gap * (1 + self.variation * share)

    def key(self) -> str:
        """The sentence pauses, for the cache keys of spoken turns."""
        return f"pauses {self.sentence_pause:g} {self.question_pause:g} {self.trail_pause:g}"


def _bare(text: str) -> str:
    """``text`` without the closing quotes and brackets after its last punctuation."""
    return text.rstrip("\"'\u201d\u2019)] ")
