"""Encoding ahead: the start of the mix encoded while the rest is still being spoken.

Synthesis speaks the turns in the order they are heard (``pipeline/synthesize.py``), and
under its memory budget often on one core only (``pipeline/workers.py``). Once every turn
up to some point is spoken, the mix before that point is settled: nothing still to come
can change it (``assemble.settled``). Its segments (``pipeline/segments.py``) are then
encoded, in each format, through the mastering chain at the levels mastering starts from
(``master.first_levels``), on a thread that keeps the idle core busy, and kept in the
segment cache. Mastering finds them there, under the same keys, and encodes only the
rest. A segment that mastering does not ask for (it ended at other levels) was wasted
work, never a wrong sound: its key holds everything that made it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pipeline.assemble import Levels, settled
from pipeline.cache import SegmentCache
from pipeline.errors import PipelineError
from pipeline.music import MusicLibrary
from pipeline.script import Script
from pipeline.segments import LEAD, QUIET, Codec, Segment, anchors, encode_segment, segments
from pipeline.synthesize import SpokenTurn
from pipeline.timing import Timing
from pipeline.workers import give_back_memory, tree_mb

# What encoding ahead holds beside the render's workers, which leave it this much of
# their memory budget: an encoder (49 MB measured, MP3's) and its meter (13 MB).
MEMORY_MB = 60.0


@dataclass(frozen=True)
class Lane:
    """One file whose segments are encoded ahead."""

    codec: Codec
    """Its format."""

    filters: str
    """The mastering chain at the levels mastering will start from (``master.chain``)."""

    cache: SegmentCache
    """Where its segments are kept, for mastering to find."""


class EncodeAhead:
    """Encodes the settled segments of ``script``'s mix on a thread while its ``turns``
    turns are spoken: tell it each turn as it comes (``heard``), and ``close`` it before
    mastering. Each segment starts when an encoder fits beside the render in
    ``memory_mb``: the workers leave ``MEMORY_MB`` of it, but a turn too big for their
    budget still runs when nothing else does, and while it does (``crowded``) nothing is
    encoded."""

    def __init__(
        self,
        script: Script,
        turns: int,
        lanes: Sequence[Lane],
        timing: Timing | None = None,
        music: MusicLibrary | None = None,
        levels: Levels | None = None,
        memory_mb: float | None = None,
        crowded: threading.Event | None = None,
    ) -> None:
        self.script, self.lanes = script, tuple(lanes)
        self.timing, self.music, self.levels = timing, music, levels
        self.memory_mb = memory_mb  # the render's budget, workers and all (None: no limit)
        self.crowded = crowded  # set while a turn beyond the workers' budget is spoken
        self.spoken: list[SpokenTurn | None] = [None] * turns
        self.changed = threading.Condition()
        self.fresh = False  # turns came since the mix was last looked at
        self.closed = False
        self.finishing = False  # closed, but to encode what is settled first
        self.done: set[Segment] = set()  # segments encoded (or found) in every lane
        self.encoded = 0  # segments of the first lane encoded here (not found)
        self.failure: Exception | None = None  # why it stopped early, if it did
        self.thread = threading.Thread(target=self._run, name="encode-ahead", daemon=True)
        self.thread.start()

    def heard(self, turns: Mapping[int, SpokenTurn]) -> None:
        """These turns (by their index in the script) are spoken."""
        with self.changed:
            for index, turn in turns.items():
                self.spoken[index] = turn
            self.fresh = True
            self.changed.notify()

    def close(self, finish: bool = False) -> None:
        """Start no more segments (``finish``: once every segment the turns heard so far
        settle is done), and wait for the one being encoded (a second at most)."""
        with self.changed:
            self.closed, self.finishing = True, finish
            self.changed.notify()
        self.thread.join()
        self.spoken = []  # the turns' audio is the mix's to hold now
        if self.failure is not None and not isinstance(self.failure, PipelineError | OSError):
            raise self.failure  # a bug, not an encoder that failed: say so

    def _run(self) -> None:
        try:
            while (spoken := self._wait()) is not None:
                self._encode(spoken)
        except Exception as exc:  # an encoder that failed costs only time: mastering
            self.failure = exc  # encodes that segment again, and says why if it fails

    def _wait(self) -> list[SpokenTurn | None] | None:
        """The turns spoken so far, once more have come (None: closed)."""
        with self.changed:
            while not (self.fresh or self.closed):
                self.changed.wait()
            if not self.fresh or (self.closed and not self.finishing):
                return None
            self.fresh = False
            return list(self.spoken)

    def _encode(self, spoken: list[SpokenTurn | None]) -> None:
        """Every settled segment not yet done, in each lane."""
        mix = settled(self.script, spoken, self.timing, self.music, self.levels)
        if mix is None:
            return
        cuts = anchors([chapter.start for chapter in mix.chapters], mix.quiet_starts(QUIET))
        for part in segments(mix.length, cuts):
            if part in self.done or not self._inside(part, mix.length):
                continue
            for index, lane in enumerate(self.lanes):
                if not self._room():
                    return
                *_, new = encode_segment(mix, part, lane.filters, lane.codec, lane.cache)
                if new and index == 0:
                    self.encoded += 1
                give_back_memory()  # the window's buffers: the workers' budget counts them
            self.done.add(part)

    def _room(self) -> bool:
        """Wait until an encoder fits in the budget; False: closed meanwhile."""
        while True:
            if self.closed and not self.finishing:
                return False
            crowded = self.crowded is not None and self.crowded.is_set()
            if not crowded and (self.memory_mb is None or tree_mb() + MEMORY_MB <= self.memory_mb):
                return True
            time.sleep(0.1)

    def _inside(self, part: Segment, length: int) -> bool:
        """Whether ``part`` of a settled mix ``length`` long is a segment of the whole
        mix, encoded from the same window: it ends before any cut the turns to come could
        add (``LEAD`` before one), and its context after it ends inside the mix."""
        if part.end > length - LEAD:
            return False
        for lane in self.lanes:
            frame = lane.codec.frame
            kept = -(-(part.end - part.start) // frame)
            if part.start + (kept + lane.codec.after) * frame > length:
                return False
        return True
