"""The whole pipeline, stage by stage: parse -> speech text -> synthesize -> assemble ->
master -> package. Everything that can be checked is checked before any synthesis."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pipeline.ahead import MEMORY_MB as AHEAD_MB
from pipeline.ahead import EncodeAhead, Lane
from pipeline.assemble import Mix, assemble
from pipeline.cache import SegmentCache, TurnCache
from pipeline.files import file_digest
from pipeline.loudness import require_ffmpeg
from pipeline.master import MasterReport, Spec, chain, first_levels, master
from pipeline.mp3 import MP3
from pipeline.opus import OPUS, OPUS_VERSION, OpusRendition, opus_encoder, opus_levels
from pipeline.outputs import Manifest, OutputSet, Staging
from pipeline.package import Release, tag_mp3, write_companions
from pipeline.production import Production, prepare
from pipeline.segments import QUIET, SegmentEncoder, anchors
from pipeline.state import RenderState, Stamp, options_digest
from pipeline.synthesize import (
    SpokenTurn,
    default_workers,
    local_workers,
    synthesize,
)
from pipeline.timing import Timing
from pipeline.workers import Executor, LocalWorkers, Spares


@dataclass(frozen=True)
class RenderResult:
    """What a render wrote and measured."""

    outputs: OutputSet
    """The MP3 and the files beside it."""

    duration: float
    """Episode length in seconds."""

    turns: int
    """Number of turns rendered."""

    mastering: MasterReport
    """Loudness and peak of the delivered MP3."""

    segments_encoded: int = 0
    """MP3 segments the last mastering pass encoded (none when the mix was unchanged)."""

    segments_reused: int = 0
    """MP3 segments it took from the cache."""

    segments_ahead: int = 0
    """MP3 segments encoded while the turns were spoken (``pipeline/ahead.py``), which
    mastering then took from the cache."""

    stages: dict[str, float] = dataclasses.field(default_factory=dict)
    """Seconds each stage took: parse and check, synthesis, assembly, mastering and
    encoding, packaging (``make bench`` reports them)."""


@dataclass
class Stopwatch:
    """Seconds spent in each named stage, a stage timed in one or more laps."""

    laps: dict[str, float] = dataclasses.field(default_factory=dict)

    @contextlib.contextmanager
    def lap(self, stage: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            spent = time.perf_counter() - started
            self.laps[stage] = round(self.laps.get(stage, 0.0) + spent, 3)


def _spoken(
    production: Production,
    cache: TurnCache | None,
    workers: int,
    timing: Timing | None,
    progress: bool,
    executor: Executor | None,
    ahead: EncodeAhead | None,
) -> list[SpokenTurn]:
    """Every turn spoken, or taken from ``cache``, levelled for where its host sits; the
    mix's settled segments encoded ``ahead`` meanwhile."""
    try:
        return synthesize(
            production.utterances,
            production.engines,
            production.script.path,
            progress=progress,
            cache=cache,
            voices=production.voices,
            workers=workers,
            timing=timing,
            pans=production.script.meta.pans,
            executor=executor,
            heard=ahead.heard if ahead is not None else None,
        )
    finally:
        if ahead is not None:
            ahead.close()


def _start_levels(
    spec: Spec | None, state: RenderState | None
) -> tuple[tuple[float, float], tuple[float, float]]:
    """The gain and limit mastering starts from: the MP3's, then the Opus rendition's."""
    expected = first_levels(spec or Spec(), state.report if state else None, MP3.level_db)
    if state is not None and state.opus_levels is not None:
        return expected, state.opus_levels  # where the last one ended, from the same start
    return expected, opus_levels(*expected)


def _ahead(
    production: Production,
    cache: Path | None,
    timing: Timing | None,
    levels: tuple[tuple[float, float], tuple[float, float]],
    executor: Executor,
) -> EncodeAhead | None:
    """Encoding ahead (``pipeline/ahead.py``) into ``cache`` (None: none) at the levels
    mastering starts from, within the memory budget of the ``executor``'s local workers
    (with the room they leave it), or none when they are elsewhere."""
    if cache is None:
        return None
    (gain, limit), (opus_gain, opus_limit) = levels
    lanes = [
        Lane(MP3, chain(gain, limit, MP3.rate), SegmentCache(cache)),
        Lane(OPUS, chain(opus_gain, opus_limit, OPUS.rate), SegmentCache(cache, ".opus")),
    ]
    script, turns = production.script, len(production.utterances)
    budget, crowded = None, None
    if isinstance(executor, LocalWorkers) and executor.memory_mb is not None:
        budget, crowded = executor.memory_mb, executor.crowded
    music = production.music
    return EncodeAhead(script, turns, lanes, timing, music, memory_mb=budget, crowded=crowded)


@dataclass
class _Mastered:
    """What mastering left for the rest of a render."""

    report: MasterReport
    mp3: Path  # the staged MP3, or the output itself when nothing changed
    encoder: SegmentEncoder | None
    opus: OpusRendition | None  # encoding in the background
    state: tuple[Path, str] | None  # where to keep the render state, and the mix digest
    opus_levels: tuple[float, float] | None = None  # the Opus gain and limit, if not made now

    def save_state(
        self, outputs: OutputSet, mp3_digest: str, made_from: tuple[Stamp, ...], options: str
    ) -> None:
        """Keep what this render made, once its set is in place (``mp3_digest``: the
        MP3's SHA-256, as its manifest has it), the files it was ``made_from`` and its
        ``options`` (``state.options_digest``)."""
        if self.state is None:
            return
        path, digest = self.state
        levels = (self.opus.gain_db, self.opus.limit_db) if self.opus else self.opus_levels
        opus = file_digest(outputs.opus)
        digests = {outputs.mp3: mp3_digest, outputs.opus: opus}
        wrote = tuple(Stamp.of(f, digests.get(f)) for f in outputs.files())
        done = RenderState(digest, mp3_digest, self.report, opus, levels, made_from, options, wrote)
        done.save(path)


def _warmed(executor: Executor) -> contextlib.AbstractContextManager[None]:
    """Local workers start one worker importing while the script is read (``warmed``)."""
    return executor.warmed() if isinstance(executor, LocalWorkers) else contextlib.nullcontext()


def _import_beside(module: str) -> None:
    """Import ``module`` on a thread of its own: while turns are spoken this process
    mostly waits on its workers, and the overview's matplotlib takes 0.5 s to import
    (a failure is left to the import where the module is used)."""

    def load() -> None:
        with contextlib.suppress(Exception):
            importlib.import_module(module)

    threading.Thread(target=load, name=f"import {module}", daemon=True).start()


def _master(
    mix: Mix,
    release: Release,
    outputs: OutputSet,
    staging: Staging,
    stop: contextlib.ExitStack,
    spec: Spec | None,
    cache: Path | None,
    workers: int,
    state: RenderState | None,
) -> _Mastered:
    """The mix mastered into the staged MP3 and the Opus rendition started, unless the
    last render to this output made them from the same mix (``state``)."""
    state_path = RenderState.path(cache, outputs.mp3) if cache is not None else None
    digest = mix_digest(mix, release, spec)
    keep = (state_path, digest) if state_path else None
    if state is not None and state.unchanged(digest, outputs.mp3, outputs.opus):
        return _Mastered(state.report, outputs.mp3, None, None, keep, state.opus_levels)
    mp3 = staging.path(outputs.mp3)
    cuts = anchors([c.start for c in mix.chapters], mix.quiet_starts(QUIET))
    segments = SegmentCache(cache) if cache is not None else None
    encoder = SegmentEncoder(mix, mp3, MP3, cuts, segments, workers)
    last = state.report if state else None
    # The Opus rendition is encoded beside the MP3, from the levels the MP3's mastering
    # starts at (mastering usually keeps them); again if it ends elsewhere.
    expected, levels = _start_levels(spec, state)
    opus = _opus(mix, staging.path(outputs.opus), cuts, cache, workers, levels, spec, stop)
    report = master(encoder, spec, last)
    tag_mp3(mp3, release)
    if (report.gain_db, report.limit_db) != expected:
        opus.kill()
        levels = opus_levels(report.gain_db, report.limit_db)
        opus = _opus(mix, staging.path(outputs.opus), cuts, cache, workers, levels, spec, stop)
    return _Mastered(report, mp3, encoder, opus, keep)


def _opus(
    mix: Mix,
    path: Path,
    cuts: list[int],
    cache: Path | None,
    workers: int,
    levels: tuple[float, float],
    spec: Spec | None,
    stop: contextlib.ExitStack,
) -> OpusRendition:
    """The Opus rendition, started in the background from ``levels``; stopped with the
    render if anything after this fails or is interrupted."""
    opus = OpusRendition(opus_encoder(mix, path, cuts, cache, workers), *levels, spec or Spec())
    stop.callback(opus.kill)
    return opus


def mix_digest(mix: Mix, release: Release, spec: Spec | None) -> str:
    """What the MP3 and the Opus file are made from: the mix (``Mix.digest``: its
    recipe, not its samples, which are never held at once), the tag, the delivery spec
    and the way the Opus file is made."""
    digest = hashlib.sha256(mix.digest().encode())
    tag = dataclasses.asdict(release) | {
        "cover": file_digest(release.cover) if release.cover else None
    }
    digest.update(json.dumps(tag, sort_keys=True, default=str).encode())
    digest.update(repr(spec or Spec()).encode())
    digest.update(f"opus {OPUS_VERSION}".encode())  # how the Opus rendition is made
    return digest.hexdigest()


def _package(
    production: Production,
    mix: Mix,
    release: Release,
    outputs: OutputSet,
    staging: Staging,
    done: _Mastered,
    spec: Spec | None,
) -> Manifest:
    """The companion files and the overview, staged beside the MP3."""
    measured = done.report.measured
    manifest = write_companions(production, mix, release, staging, done.mp3, measured)
    from pipeline.overview import draw_overview  # matplotlib: 0.5 s, only when drawing

    target = (spec or Spec()).loudness_lufs
    draw_overview(production.script, mix, measured, staging.path(outputs.overview), target)
    return manifest


def render(
    script_path: Path,
    output: Path,
    voice_overrides: dict[str, Path] | None = None,
    *,
    progress: bool = False,
    timing: Timing | None = None,
    spec: Spec | None = None,
    cache: Path | None = None,
    workers: int | None = None,
    executor: Executor | None = None,
    memory_mb: float | None = None,
    spares: Spares | None = None,
) -> RenderResult:
    """Render the script at ``script_path`` to a mastered, tagged MP3 at ``output``.
    Synthesized turns are kept in ``cache`` (None: no cache) and spoken by ``executor``
    (default: ``workers`` processes here, one per core by default, holding with this
    process at most ``memory_mb``: ``synthesize.local_workers``, starting with the
    ``spares`` the caller started)."""
    workers = default_workers() if workers is None else workers
    # Local workers leave room for encoding ahead, which keeps to the same budget.
    executor = executor or local_workers(workers, memory_mb, AHEAD_MB if cache else 0, spares)
    watch = Stopwatch()
    with _warmed(executor):
        with watch.lap("parse and check"):
            require_ffmpeg()  # before spending minutes on synthesis
            outputs = OutputSet(output)
            outputs.check_writable()
            production = prepare(script_path, voice_overrides)
            made_from = tuple(Stamp.of(path) for path in production.inputs())
            options = options_digest(script_path, voice_overrides)
            state = RenderState.load(RenderState.path(cache, outputs.mp3)) if cache else None
        script = production.script
        with watch.lap("synthesis"):
            _import_beside("pipeline.overview")
            turns = TurnCache(cache) if cache else None
            ahead = _ahead(production, cache, timing, _start_levels(spec, state), executor)
            spoken = _spoken(production, turns, workers, timing, progress, executor, ahead)
    with watch.lap("assembly"):
        mix = assemble(script, spoken, timing, production.music)
        del spoken  # the mix holds every turn now
        release = Release.of(script, mix, production.voices)
    with outputs.replace() as staging, contextlib.ExitStack() as stop:
        with watch.lap("mastering and encoding"):
            done = _master(mix, release, outputs, staging, stop, spec, cache, workers, state)
        with watch.lap("packaging"):
            manifest = _package(production, mix, release, outputs, staging, done, spec)
        with watch.lap("mastering and encoding"):
            if done.opus is not None:
                done.opus.result()
    done.save_state(outputs, manifest.mp3.sha256, made_from, options)
    return _result(outputs, mix, done, ahead, watch)


def _result(
    outputs: OutputSet, mix: Mix, done: _Mastered, ahead: EncodeAhead | None, watch: Stopwatch
) -> RenderResult:
    last = done.encoder.last if done.encoder else None
    return RenderResult(
        outputs=outputs,
        duration=mix.duration,
        turns=len(mix.placements),
        mastering=done.report,
        segments_encoded=last.encoded if last else 0,
        segments_reused=last.reused if last else 0,
        segments_ahead=ahead.encoded if ahead is not None else 0,
        stages=watch.laps,
    )
