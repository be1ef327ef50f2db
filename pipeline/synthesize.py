"""Stage 3, synthesize: each utterance spoken by its host's engine, at one sample rate.

A turn is spoken a sentence at a time; each sentence's own silence is trimmed and the
sentences are joined by the timing model's pauses (``pipeline/timing.py``), so every
engine pauses alike and each sentence's place in the turn is known (for captions).

Turns already in the cache (``pipeline/cache.py``) are not spoken again; the rest go to a
``concurrent.futures`` executor, by default a process pool with a worker per core, each
worker loading its engines once. Every finished turn is cached at once, so a render that is
stopped part-way resumes where it stopped.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from pipeline.audio import SAMPLE_RATE, Audio
from pipeline.cache import TurnCache
from pipeline.engines import Engine, EngineFailure, load_engine
from pipeline.errors import PipelineError
from pipeline.level import LEVEL_VERSION, level_gain, leveled
from pipeline.speech import Utterance
from pipeline.timing import Timing
from pipeline.voices import Voice

_worker_engines: dict[str, Engine] = {}  # one set per worker process, loaded once
Spans = tuple[tuple[int, int], ...]
"""Where each sentence of a turn is in its audio: (first sample, one past the last)."""
Said = tuple[Audio, float | None, Spans]
"""A spoken turn: its audio, its levelling gain (None: not levelled) and its sentences."""


@dataclass(frozen=True)
class SpokenTurn:
    """An utterance's audio: engine silence trimmed, resampled to the delivery rate, and
    levelled (``pipeline/level.py``)."""

    utterance: Utterance
    """What was said, and the turn it came from."""

    audio: Audio
    """The speech: levelled if ``gain_db`` is set."""

    key: str = ""
    """Its cache key ('' when not cached)."""

    gain_db: float | None = None
    """The levelling gain already applied; None when not levelled yet (a turn too short to
    measure is levelled in the mix, with its host's median gain)."""

    sentences: Spans = ()
    """Each sentence's span in ``audio``, one per sentence of the utterance (empty: not
    known, the whole turn as one)."""


def load_engines(voices: dict[str, Voice]) -> dict[str, Engine]:
    """One loaded engine per host; hosts that share a voice file share its engine."""
    by_file: dict[Path, Engine] = {}
    engines = {}
    for speaker, voice in voices.items():
        key = voice.path.resolve()
        if key not in by_file:
            by_file[key] = load_engine(voice)
        engines[speaker] = by_file[key]
    return engines


def default_workers() -> int:
    """A worker per core."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)


def synthesize(
    utterances: Sequence[Utterance],
    engines: dict[str, Engine],
    script_path: Path,
    *,
    sample_rate: int = SAMPLE_RATE,
    progress: bool = False,
    cache: TurnCache | None = None,
    voices: dict[str, Voice] | None = None,
    workers: int = 1,
    executor: Executor | None = None,
    timing: Timing | None = None,
    level: bool = True,
) -> list[SpokenTurn]:
    """Speak every utterance (from the cache where it can), in order.

    With ``voices`` and more than one worker (or an ``executor`` of your own, whose workers
    run ``start_worker(voices)`` first), turns are spoken in parallel. ``level=False``
    gives what the engines said, unlevelled (for QA; not cached).
    """
    timing = timing or Timing()
    keys = [
        TurnCache.key(
            f"{engines[u.turn.speaker].fingerprint} {LEVEL_VERSION} {timing.key()}",
            "\n".join(u.sentences),
        )
        if cache and level
        else ""
        for u in utterances
    ]
    cache = cache if level else None
    done: dict[int, Said] = {}
    if cache is not None:
        for index, key in enumerate(keys):
            found = cache.get(key)
            if found is not None:
                done[index] = found
    todo = [index for index in range(len(utterances)) if index not in done]
    with tqdm(
        total=len(utterances),
        initial=len(done),
        unit="turn",
        desc="synthesizing",
        disable=not progress,
        file=sys.stderr,
    ) as bar:

        def finish(index: int, said: Said) -> None:
            done[index] = said
            if cache is not None:
                cache.put(keys[index], *said)  # at once: a stopped render resumes here
            bar.update(1)

        parallel = executor is not None or (voices is not None and workers > 1 and len(todo) > 1)
        if not parallel:
            for index in todo:
                said = utterances[index]
                engine = engines[said.turn.speaker]
                finish(index, _speak(said, engine, script_path, sample_rate, timing, level))
        else:
            # Each pool loads only its own voices: a worker holds one engine, not all of them.
            pools = (
                [(executor, todo)]
                if executor is not None
                else [
                    (_pool({s: voices[s] for s in speakers}, count), indices)  # type: ignore[index]
                    for speakers, count, indices in plan_pools(utterances, todo, voices, workers)
                ]
            )
            try:
                futures: dict[Future[Said], int] = {}
                for pool, indices in pools:
                    # Longest first, so no worker is left with a long turn at the end.
                    for i in sorted(indices, key=lambda i: -len(utterances[i].text)):
                        said = utterances[i]
                        job = (said.turn.speaker, said.sentences, sample_rate, timing, level)
                        futures[pool.submit(speak_in_worker, *job)] = i
                for future in as_completed(futures):
                    index = futures[future]
                    said = utterances[index]
                    engine = engines[said.turn.speaker].name
                    try:
                        result = future.result()
                    except EngineFailure as exc:
                        raise _failure(said, engine, script_path, exc) from exc
                    finish(index, _checked(result, said, engine, script_path))
            finally:
                for pool, _ in pools:
                    if pool is not executor:
                        pool.shutdown(wait=True, cancel_futures=True)
    return [
        SpokenTurn(said, done[index][0], keys[index], done[index][1], done[index][2])
        for index, said in enumerate(utterances)
    ]


def plan_pools(
    utterances: Sequence[Utterance], todo: list[int], voices: dict[str, Voice], workers: int
) -> list[tuple[list[str], int, list[int]]]:
    """Split ``workers`` between the voices the ``todo`` turns use: ``(speakers, workers,
    turns)`` per pool. With at least a worker per voice, each voice gets its own pool, and
    the spare workers go to the voices with the most text; otherwise one pool speaks all."""
    by_file: dict[Path, list[str]] = {}
    for speaker, voice in voices.items():
        by_file.setdefault(voice.path.resolve(), []).append(speaker)
    groups = [
        (speakers, [i for i in todo if utterances[i].turn.speaker in speakers])
        for speakers in by_file.values()
    ]
    groups = [(speakers, indices) for speakers, indices in groups if indices]
    if len(groups) > workers:
        return [(list(voices), workers, todo)]
    counts = [1] * len(groups)
    text = [sum(len(utterances[i].text) for i in indices) for _, indices in groups]
    for _ in range(workers - len(groups)):
        busiest = max(range(len(groups)), key=lambda g: text[g] / counts[g])
        counts[busiest] += 1
    return [(speakers, n, indices) for (speakers, indices), n in zip(groups, counts, strict=True)]


def _pool(voices: dict[str, Voice], workers: int) -> ProcessPoolExecutor:
    # "spawn", not fork: a forked copy of a process that runs thread pools (onnxruntime,
    # torch, OpenMP) can deadlock; a fresh interpreter per worker cannot.
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=start_worker,
        initargs=(voices,),
    )


def start_worker(voices: dict[str, Voice]) -> None:
    """Load a worker process's engines, once."""
    _worker_engines.clear()
    _worker_engines.update(load_engines(voices))


def speak_in_worker(
    speaker: str, sentences: Sequence[str], rate: int, timing: Timing, level: bool = True
) -> Said:
    """In a worker: ``sentences`` spoken by ``speaker``'s engine (see ``spoken``)."""
    return spoken(_worker_engines[speaker], sentences, rate, timing, level)


def spoken(
    engine: Engine, sentences: Sequence[str], rate: int, timing: Timing, level: bool = True
) -> Said:
    """A turn's ``sentences`` spoken (see ``joined``), then levelled: the audio, the
    levelling gain (None, and not levelled, if too short to measure or not asked to) and
    each sentence's span."""
    audio, spans = joined(engine, sentences, rate, timing)
    gain = level_gain(audio.samples, rate) if level and len(audio.samples) else None
    if gain is not None:
        audio = Audio(leveled(audio.samples, gain, rate), rate)
    return audio, gain, spans


def joined(
    engine: Engine, sentences: Sequence[str], rate: int, timing: Timing
) -> tuple[Audio, Spans]:
    """A turn's ``sentences`` spoken one by one, each trimmed and resampled to ``rate``,
    joined by the timing model's pauses; and each sentence's span. What the engine said,
    before any processing."""
    pieces: list[np.ndarray] = []
    spans: list[tuple[int, int]] = []
    at, last = 0, None
    for sentence in sentences:
        samples = engine.synthesize(sentence).trim().resample(rate).samples
        if len(samples) and last is not None:
            pause = round(timing.after_sentence(last) * rate)
            pieces.append(np.zeros(pause, dtype=np.float32))
            at += pause
        pieces.append(samples)
        spans.append((at, at + len(samples)))
        at += len(samples)
        last = sentence if len(samples) else last
    audio = Audio(np.concatenate(pieces) if pieces else np.zeros(0, np.float32), rate)
    return audio, tuple(spans)


def _failure(utterance: Utterance, engine: str, script_path: Path, exc: Exception) -> PipelineError:
    turn = utterance.turn
    return PipelineError(
        f"the {engine} engine failed on {turn.speaker}'s turn: {exc}",
        path=script_path,
        line=turn.line,
        hint="reword the turn, or check the host's voice file",
    )


def _checked(said: Said, utterance: Utterance, engine: str, script_path: Path) -> Said:
    if len(said[0].samples) == 0:
        turn = utterance.turn
        raise PipelineError(
            f"the {engine} engine produced no sound for {turn.speaker}'s turn",
            path=script_path,
            line=turn.line,
            hint="give the turn words to say",
        )
    return said


def _speak(
    utterance: Utterance,
    engine: Engine,
    script_path: Path,
    rate: int,
    timing: Timing,
    level: bool = True,
) -> Said:
    try:
        said = spoken(engine, utterance.sentences, rate, timing, level)
    except EngineFailure as exc:
        raise _failure(utterance, engine.name, script_path, exc) from exc
    return _checked(said, utterance, engine.name, script_path)
