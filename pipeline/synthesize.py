"""Stage 3, synthesize: each utterance spoken by its host's engine, at one sample rate.

A turn is spoken a sentence at a time; each sentence's own silence is trimmed and the
sentences are joined by the timing model's pauses (``pipeline/timing.py``), so every
engine pauses alike and each sentence's place in the turn is known (for captions).

Each turn's levelling gain is measured as it is spoken (``pipeline/level.py``); the mix
applies it. Turns already in the cache (``pipeline/cache.py``) are not spoken again, nor
is a sentence some cached turn holds (an edited turn speaks only its new sentences); the
rest go to worker processes (``pipeline/workers.py``), by default one per core, each
loading its engines once, in the order they are heard (so the start of the mix can be
encoded while the rest is spoken: ``pipeline/ahead.py``). An engine that makes no
progress for its voice's ``timeout`` is stopped and the render fails at that turn. Every
finished turn is cached at once, so a render that is stopped part-way resumes there.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import os
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from pipeline import workers as workers_
from pipeline.audio import Audio
from pipeline.cache import Said, Spans, TurnCache
from pipeline.delivery import SAMPLE_RATE
from pipeline.engines import Engine, EngineFailure, load_engines
from pipeline.errors import PipelineError
from pipeline.level import LEVEL_VERSION, MASTER_HEADROOM_DB, headroom_db, level_gain
from pipeline.speech import Utterance
from pipeline.timing import Timing
from pipeline.voices import Voice

_worker_engines: dict[str, Engine] = {}  # one set per worker process, loaded once
LOAD_TIMEOUT_S = 300.0  # a worker loading its engine (Coqui's largest models take ~1 min)
MEMORY_MB = 1000.0  # resident, this process and its workers, while they speak
WORKER_MB = 500.0  # ... or this much a worker, on a machine with more cores


@dataclass(frozen=True)
class SpokenTurn:
    """An utterance's audio: engine silence trimmed, resampled to the delivery rate, with
    the gain that levels it (``pipeline/level.py``)."""

    utterance: Utterance
    """What was said, and the turn it came from."""

    audio: Audio
    """The speech, as the engine said it (not levelled)."""

    key: str = ""
    """Its cache key ('' when not cached)."""

    gain_db: float | None = None
    """The gain that levels it; None: not measured, or too short to measure (the mix
    measures it, or gives it its host's median gain)."""

    sentences: Spans = ()
    """Each sentence's span in ``audio``, one per sentence of the utterance (empty: not
    known, the whole turn as one)."""


def local_workers(
    workers: int,
    memory_mb: float | None = None,
    beside_mb: float = 0.0,
    spares: workers_.Spares | None = None,
) -> workers_.LocalWorkers:
    """``workers`` processes here, which with this one hold at most ``memory_mb`` (default
    ``MEMORY_MB``, or ``WORKER_MB`` a worker if more), less ``beside_mb`` for what this
    process runs meanwhile (``pipeline/ahead.py``'s encoders): two Piper workers decoding
    long sentences at once would push a render past 1 GB (``Engine.scratch_mb_per_char``),
    so a turn that would not fit waits, and its worker takes a shorter one that does.
    ``spares``: workers started already, taken first (``workers.Spares``)."""
    count = max(1, workers)
    budget = max(MEMORY_MB, WORKER_MB * count) if memory_mb is None else memory_mb
    return workers_.LocalWorkers(count, budget, beside_mb, spares=spares or workers_.Spares())


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
    timing: Timing | None = None,
    measure: bool = True,
    pans: Mapping[str, float] | None = None,
    executor: workers_.Executor | None = None,
    heard: Callable[[dict[int, SpokenTurn]], None] | None = None,
) -> list[SpokenTurn]:
    """Speak every utterance (from the cache where it can), in order, each host's turns
    levelled for where ``pans`` places them (default: the centre). With ``voices``, by
    ``executor`` (default: ``workers`` processes here, that a stuck engine or Ctrl-C cannot
    hold); without, by the ``engines`` here. ``measure=False`` leaves gains unmeasured and
    keeps nothing in the cache (QA). ``heard`` is told the turns as they are ready, by
    index: the cached first, then each as it is spoken (``pipeline/ahead.py``)."""
    timing = timing or Timing()
    cache = cache if measure else None
    headrooms = _headrooms(utterances, pans or {})
    keys, done = _cached(utterances, engines, cache, timing, headrooms)
    todo = _to_speak(keys, done)
    sentences = _sentence_keys(utterances, engines, sample_rate)
    known = _known(todo, sentences, keys, done, cache)

    def ready(indices: list[int]) -> list[int]:
        if heard is not None and indices:
            heard({i: _spoken_turn(utterances[i], keys[i], done[i]) for i in indices})
        return indices

    ready(list(done))
    settings = (sample_rate, timing, measure)
    counter = {"total": len(utterances), "initial": len(done), "unit": "turn"}
    with tqdm(**counter, desc="synthesizing", disable=not progress, file=sys.stderr) as bar:

        def finish(index: int, said: Said) -> None:
            bar.update(len(ready(_keep(index, said, (keys, sentences), done, cache))))

        if voices is None:  # a library call with loaded engines only: speak here
            for index in todo:
                said = utterances[index], known.get(index)
                finish(index, _speak(said, engines, script_path, settings, headrooms))
        elif todo:
            _speak_in_workers(
                utterances,
                todo,
                engines,
                voices,
                executor or local_workers(workers),
                script_path,
                finish,
                settings,
                (headrooms, known),
            )
    return [_spoken_turn(said, keys[index], done[index]) for index, said in enumerate(utterances)]


def _spoken_turn(utterance: Utterance, key: str, said: Said) -> SpokenTurn:
    return SpokenTurn(utterance, said.audio, key, said.gain_db, said.sentences)


def _headrooms(utterances: Sequence[Utterance], pans: Mapping[str, float]) -> dict[str, float]:
    """Every speaker's limiter headroom, for where the host sits (``level.headroom_db``)."""
    where = {u.turn.speaker: pans.get(u.turn.speaker, 0.0) for u in utterances}
    return {speaker: headroom_db(pan) for speaker, pan in where.items()}


def _keep(
    index: int,
    said: Said,
    keyed: tuple[list[str], list[list[str]]],
    done: dict[int, Said],
    cache: TurnCache | None,
) -> list[int]:
    """Record turn ``index`` as ``said``, for it and every turn said word for word the
    same; the turns now done. Cached at once (a stopped render resumes here), with where
    its sentences are (``keyed``: each turn's key and its sentences' keys), and then kept
    as the cache's memory map, not in memory: a long episode's turns would otherwise all
    be held here while the rest are spoken."""
    keys, sentences = keyed
    if cache is not None:
        said = cache.put(keys[index], said)
        cache.point(sentences[index], keys[index], said.sentences)
    same = [i for i, key in enumerate(keys) if key == keys[index] and i not in done]
    for i in same:
        done[i] = said
    return same


def _sentence_keys(
    utterances: Sequence[Utterance], engines: dict[str, Engine], rate: int
) -> list[list[str]]:
    """Each turn's sentences' keys (``TurnCache.sentence_key``)."""
    return [
        [
            TurnCache.sentence_key(engines[u.turn.speaker].fingerprint, rate, sentence)
            for sentence in u.sentences
        ]
        for u in utterances
    ]


def _known(
    todo: list[int],
    sentences: list[list[str]],
    keys: list[str],
    done: dict[int, Said],
    cache: TurnCache | None,
) -> dict[int, dict[int, np.ndarray]]:
    """Of each turn to speak, the sentences a cached turn holds, by turn and sentence
    index. The cached turns' sentences are recorded first (once: a cache made before
    sentences were recorded gains them here), when there is anything to speak."""
    if cache is None or not todo:
        return {}
    for index, said in done.items():
        cache.point(sentences[index], keys[index], said.sentences)
    known: dict[int, dict[int, np.ndarray]] = {}
    for index in todo:
        found = {j: cache.sentence(key) for j, key in enumerate(sentences[index])}
        known[index] = {j: samples for j, samples in found.items() if samples is not None}
    return known


def _to_speak(keys: list[str], done: dict[int, Said]) -> list[int]:
    """The turns to speak: those not done, and of a turn said again word for word (a
    catchphrase, a sign-off), only the first; the others share its audio."""
    first: dict[str, int] = {}
    for index, key in enumerate(keys):
        first.setdefault(key, index)
    return [i for i, key in enumerate(keys) if i not in done and first[key] == i]


def _cached(
    utterances: Sequence[Utterance],
    engines: dict[str, Engine],
    cache: TurnCache | None,
    timing: Timing,
    headrooms: dict[str, float],
) -> tuple[list[str], dict[int, Said]]:
    """Each turn's key (what makes its audio: the same key, the same sound), and the turns
    the cache holds."""

    def levelling(speaker: str) -> str:  # a centred voice keeps the keys it always had
        room = headrooms[speaker]
        return LEVEL_VERSION if room == MASTER_HEADROOM_DB else f"{LEVEL_VERSION} room {room:g}"

    keys = [
        TurnCache.key(
            f"{engines[u.turn.speaker].fingerprint} {levelling(u.turn.speaker)} {timing.key()}",
            "\n".join(u.sentences),
        )
        for u in utterances
    ]
    if cache is None:
        return keys, {}
    # Each entry's checksum is read on threads: hashing lets go of the interpreter.
    with ThreadPoolExecutor(max_workers=default_workers()) as pool:
        found = dict(enumerate(pool.map(cache.get, keys)))
    return keys, {index: said for index, said in found.items() if said is not None}


def _speak_in_workers(
    utterances: Sequence[Utterance],
    todo: list[int],
    engines: dict[str, Engine],
    voices: dict[str, Voice],
    executor: workers_.Executor,
    script_path: Path,
    finish: Callable[[int, Said], None],
    settings: tuple[int, Timing, bool],
    given: tuple[dict[str, float], dict[int, dict[int, np.ndarray]]],
) -> None:
    """Speak the turns ``todo`` on ``executor``'s workers (``plan_pools``), handing each
    to ``finish`` as it is done; ``settings`` are the sample rate, timing and measuring,
    ``given`` each host's limiter headroom (``level.headroom_db``) and the sentences
    already spoken, by turn (``_known``)."""
    headrooms, known = given
    plans = plan_pools(utterances, todo, voices, max(1, executor.slots))
    groups = [
        workers_.Group(start_worker, ({s: voices[s] for s in speakers},), count, LOAD_TIMEOUT_S)
        for speakers, count, _ in plans
    ]
    scratch = {i: _scratch_mb(utterances[i], engines, known.get(i, {})) for i in todo}
    # In the order they are heard: the start of the mix is settled first, and encoded
    # while the rest is spoken (pipeline/ahead.py).
    jobs = [
        workers_.Job(
            i,
            group,
            speak_in_worker,
            (
                utterances[i].turn.speaker,
                utterances[i].sentences,
                *settings,
                headrooms[utterances[i].turn.speaker],
                known.get(i, {}),
            ),
            voices[utterances[i].turn.speaker].timeout,
            len(utterances[i].sentences),
            max(scratch[i], default=0.0),
            scratch[i],
        )
        for group, (_, _, indices) in enumerate(plans)
        for i in sorted(indices)
    ]
    try:
        for index, result in executor.run(groups, jobs):
            said = utterances[index]
            finish(index, _checked(result, said, engines[said.turn.speaker].name, script_path))
    except workers_.JobFailed as exc:
        said = utterances[exc.key]
        raise _failure(said, engines[said.turn.speaker].name, script_path, exc) from None


def _scratch_mb(
    utterance: Utterance, engines: dict[str, Engine], known: Mapping[int, np.ndarray]
) -> tuple[float, ...]:
    """The memory each of a turn's sentences takes while it is spoken (an estimate; none
    for a sentence ``known`` already)."""
    per_char = engines[utterance.turn.speaker].scratch_mb_per_char
    return tuple(
        0.0 if j in known else per_char * len(sentence)
        for j, sentence in enumerate(utterance.sentences)
    )


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


def start_worker(voices: dict[str, Voice]) -> None:
    """Load a worker process's engines, once; then, beside its first turn, the loudness
    meter's packages (scipy.signal: about a second, which would otherwise come after
    that turn is spoken). Not beside the engines' loading, which imports scipy too and
    breaks when two threads import its submodules at once (``load_engines``)."""
    _worker_engines.clear()
    _worker_engines.update(load_engines(voices, warm=True))
    threading.Thread(target=importlib.import_module, args=("pyloudnorm",), daemon=True).start()


def speak_in_worker(
    speaker: str,
    sentences: Sequence[str],
    rate: int,
    timing: Timing,
    measure: bool = True,
    headroom: float = MASTER_HEADROOM_DB,
    known: Mapping[int, np.ndarray] | None = None,
    *,
    progress: Callable[[], None] | None = None,
) -> Said:
    """In a worker: ``sentences`` spoken by ``speaker``'s engine (see ``spoken``)."""
    engine = _worker_engines[speaker]
    said = spoken(engine, sentences, rate, timing, measure, progress, headroom, known)
    _give_back()
    return said


def _give_back() -> None:
    """Return the memory freed while speaking to the system (glibc's ``malloc_trim``):
    the engines' buffers of many sizes otherwise leave a worker's heap holes it keeps
    (a Piper worker grew from 225 to 360 MB over the episode), which the budget counts."""
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to do
        ctypes.CDLL(None).malloc_trim(0)


def spoken(
    engine: Engine,
    sentences: Sequence[str],
    rate: int,
    timing: Timing,
    measure: bool = True,
    progress: Callable[[], None] | None = None,
    headroom: float = MASTER_HEADROOM_DB,
    known: Mapping[int, np.ndarray] | None = None,
) -> Said:
    """A turn's ``sentences`` spoken (see ``joined``), with the gain that levels it for a
    master limiter ``headroom`` dB over the speech level (None if too short to measure,
    or not asked to)."""
    audio, spans = joined(engine, sentences, rate, timing, progress, known)
    measured = measure and len(audio.samples)
    gain = level_gain(audio.samples, rate, headroom) if measured else None
    return Said(audio, gain, spans)


def joined(
    engine: Engine,
    sentences: Sequence[str],
    rate: int,
    timing: Timing,
    progress: Callable[[], None] | None = None,
    known: Mapping[int, np.ndarray] | None = None,
) -> tuple[Audio, Spans]:
    """A turn's ``sentences`` spoken one by one, each trimmed and resampled to ``rate``,
    joined by the timing model's pauses; and each sentence's span. What the engine said,
    before any processing; a sentence in ``known`` (by index) is taken from there, as
    the engine said it before. ``progress`` is called after each sentence."""
    pieces: list[np.ndarray] = []
    spans: list[tuple[int, int]] = []
    at, last = 0, None
    known = known or {}
    for index, sentence in enumerate(sentences):
        if index in known:
            samples = known[index]
        else:
            samples = engine.synthesize(sentence).trim().resample(rate).samples
        if progress is not None:
            progress()
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
        hint="reword the turn, or check the host's voice file (a slow engine may need a "
        "larger 'timeout:' there)",
    )


def _checked(said: Said, utterance: Utterance, engine: str, script_path: Path) -> Said:
    if len(said.audio.samples) == 0:
        turn = utterance.turn
        raise PipelineError(
            f"the {engine} engine produced no sound for {turn.speaker}'s turn",
            path=script_path,
            line=turn.line,
            hint="give the turn words to say",
        )
    return said


def _speak(
    said: tuple[Utterance, Mapping[int, np.ndarray] | None],
    engines: dict[str, Engine],
    script_path: Path,
    settings: tuple[int, Timing, bool],
    headrooms: dict[str, float],
) -> Said:
    """Speak a turn here; ``said``: the utterance and the sentences known already."""
    utterance, known = said
    engine = engines[utterance.turn.speaker]
    rate, timing, measure = settings
    headroom = headrooms[utterance.turn.speaker]
    try:
        said = spoken(engine, utterance.sentences, rate, timing, measure, None, headroom, known)
    except EngineFailure as exc:
        raise _failure(utterance, engine.name, script_path, exc) from exc
    return _checked(said, utterance, engine.name, script_path)
