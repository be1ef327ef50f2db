"""TTS engines behind one small protocol: text in, mono float32 audio out.

An engine module provides a class with a static ``load(voice)`` that checks the voice's
settings and the engine's programs or models (raising ``PipelineError`` at the voice
file's line), and a ``synthesize(text)`` that returns :class:`~pipeline.audio.Audio`.
Loading happens once per render; synthesis once per turn.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from pipeline.audio import Audio
from pipeline.lexicon import Mode
from pipeline.voices import Voice


class Engine(Protocol):
    """A loaded voice that turns speech text into audio."""

    name: str
    """Engine name as written in voice files."""

    phoneme_set: frozenset[str] | None
    """Phonemes it accepts inline, or None if it reads text only."""

    lexicon_mode: Mode
    """How lexicon terms are given to it: its phonemes inline, or respelled."""

    fingerprint: str
    """Everything about the engine that changes its audio (the cache key's half)."""

    scratch_mb_per_char: float
    """Memory a sentence takes while it is spoken, in MB per character, beyond the loaded
    model (measured here): local workers start a turn only when that fits their budget."""

    def synthesize(self, text: str) -> Audio:
        """Speak ``text``, one sentence; raise ``EngineFailure`` when the engine fails.

        The synthesize stage trims the silence around what it returns and joins a turn's
        sentences with pauses of its own (``pipeline/timing.py``)."""
        ...

    def warm(self) -> None:
        """Load the model now, as a worker does before its first turn and ``check`` does to
        prove the voice works; raise ``EngineFailure`` if it cannot be loaded."""
        ...


class EngineFailure(Exception):
    """The engine failed on a text; the synthesize stage says which turn."""


@dataclass(frozen=True)
class EngineKind:
    """An engine as voice files name it: what it accepts, and how it is loaded."""

    load: Callable[[Voice], Engine]
    """Loads and checks a voice, importing the engine's packages only then."""

    settings: dict[str, type] = field(default_factory=dict)
    """The voice-file settings only this engine takes, by type (``Voice.settings``)."""

    fetch: Callable[[Voice], Path] | None = None
    """Downloads the voice's model (``make models``; the network); None: nothing to fetch."""


def _load_piper(voice: Voice) -> Engine:
    from pipeline.engines.piper import PiperEngine

    return PiperEngine.load(voice)


def _load_hibari(voice: Voice) -> Engine:
    from pipeline.engines.hibari import HibariEngine

    return HibariEngine.load(voice)


def _fetch_hibari(voice: Voice) -> Path:
    from pipeline.engines.hibari import download

    return download(voice)


def _load_festival(voice: Voice) -> Engine:
    from pipeline.engines.festival import FestivalEngine

    return FestivalEngine.load(voice)


def _load_coqui(voice: Voice) -> Engine:
    from pipeline.engines.coqui import CoquiEngine

    return CoquiEngine.load(voice)


def _fetch_coqui(voice: Voice) -> Path:
    from pipeline.engines.coqui import download

    return download(voice)


# Loaders import lazily so an engine's heavy packages load only when a voice uses it.
ENGINES: dict[str, EngineKind] = {
    "piper": EngineKind(_load_piper),
    "hibari": EngineKind(_load_hibari, {"threads": int, "seed": int}, _fetch_hibari),
    "festival": EngineKind(_load_festival),
    "coqui": EngineKind(
        _load_coqui,
        {
            "model_path": str,
            "config_path": str,
            "speaker_wav": str,
            "language": str,
            "license_accepted": str,
        },
        _fetch_coqui,
    ),
}


def load_engine(voice: Voice) -> Engine:
    """The engine a voice file selects, loaded and checked."""
    return ENGINES[voice.engine].load(voice)  # Voice.load let only a known engine through


def load_engines(voices: dict[str, Voice], warm: bool = False) -> dict[str, Engine]:
    """One loaded engine per host; hosts that share a voice file share its engine. With
    ``warm``, each model is loaded now, so a damaged one fails at its voice file: on
    threads, one engine's native code loading its model beside another's. Loading (which
    imports the engines' packages) stays on this thread: scipy's submodules, which two
    engines' packages import, break when imported from two threads at once."""
    files = {voice.path.resolve(): voice for voice in voices.values()}
    loaded = {path: load_engine(voice) for path, voice in files.items()}
    if warm:
        with ThreadPoolExecutor(max_workers=len(files) or 1) as pool:
            list(pool.map(_warmed, files.values(), loaded.values()))
    return {speaker: loaded[voice.path.resolve()] for speaker, voice in voices.items()}


def _warmed(voice: Voice, engine: Engine) -> None:
    try:
        engine.warm()
    except EngineFailure as exc:
        raise voice.error(
            str(exc), "model", hint="reinstall the voice, or name another model"
        ) from None
