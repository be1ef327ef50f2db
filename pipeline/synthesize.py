"""Stage 3, synthesize: each utterance spoken by its host's engine, at one sample rate."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from pipeline.audio import SAMPLE_RATE, Audio
from pipeline.engines import Engine, EngineFailure, load_engine
from pipeline.errors import PipelineError
from pipeline.speech import Utterance
from pipeline.voices import Voice


@dataclass(frozen=True)
class SpokenTurn:
    """An utterance's audio: engine silence trimmed, resampled to the delivery rate."""

    utterance: Utterance
    """What was said, and the turn it came from."""

    audio: Audio
    """The speech."""


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


def synthesize(
    utterances: Sequence[Utterance],
    engines: dict[str, Engine],
    script_path: Path,
    *,
    sample_rate: int = SAMPLE_RATE,
    progress: bool = False,
) -> Iterator[SpokenTurn]:
    """Speak each utterance in order, yielding as each is done."""
    with tqdm(
        total=len(utterances),
        unit="turn",
        desc="synthesizing",
        disable=not progress,
        file=sys.stderr,
    ) as bar:
        for utterance in utterances:
            yield SpokenTurn(utterance, _speak(utterance, engines, script_path, sample_rate))
            bar.update(1)


def _speak(utterance: Utterance, engines: dict[str, Engine], script_path: Path, rate: int) -> Audio:
    turn = utterance.turn
    engine = engines[turn.speaker]
    try:
        audio = engine.synthesize(utterance.text)
    except EngineFailure as exc:
        raise PipelineError(
            f"the {engine.name} engine failed on {turn.speaker}'s turn: {exc}",
            path=script_path,
            line=turn.line,
            hint="reword the turn, or check the host's voice file",
        ) from exc
    trimmed = audio.trim()
    if len(trimmed.samples) == 0:
        raise PipelineError(
            f"the {engine.name} engine produced no sound for {turn.speaker}'s turn",
            path=script_path,
            line=turn.line,
            hint="give the turn words to say",
        )
    return trimmed.resample(rate)
