"""The whole pipeline, stage by stage: parse -> speech text -> synthesize -> assemble ->
master -> package. Everything that can be checked is checked before any synthesis."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipeline.assemble import Timing, assemble
from pipeline.engines import Engine
from pipeline.master import MasterReport, master
from pipeline.package import package, require_ffmpeg
from pipeline.script import Script, parse_script
from pipeline.speech import Utterance, utterances
from pipeline.synthesize import load_engines, synthesize
from pipeline.voices import Voice, host_voices


@dataclass
class Production:
    """A parsed script with its voices and engines loaded: ready to render."""

    script: Script
    """The parsed script."""

    voices: dict[str, Voice]
    """Each host's voice file."""

    engines: dict[str, Engine]
    """Each host's loaded engine."""

    utterances: list[Utterance]
    """Every turn with its speech text."""


@dataclass(frozen=True)
class RenderResult:
    """What a render wrote and measured."""

    output: Path
    """The MP3."""

    timeline: Path
    """The timeline JSON beside it."""

    duration: float
    """Episode length in seconds."""

    turns: int
    """Number of turns rendered."""

    mastering: MasterReport
    """Loudness and peak of the result."""


def prepare(script_path: Path, voice_overrides: dict[str, Path] | None = None) -> Production:
    """Parse the script, load every host's voice and engine: all checks, no synthesis."""
    script = parse_script(script_path)
    voices = host_voices(script, voice_overrides)
    engines = load_engines(voices)
    return Production(script, voices, engines, utterances(script))


def render(
    script_path: Path,
    output: Path,
    voice_overrides: dict[str, Path] | None = None,
    *,
    progress: bool = False,
    timing: Timing | None = None,
) -> RenderResult:
    """Render the script at ``script_path`` to an MP3 at ``output``."""
    require_ffmpeg()  # before spending minutes on synthesis
    production = prepare(script_path, voice_overrides)
    spoken = synthesize(
        production.utterances, production.engines, production.script.path, progress=progress
    )
    mix = assemble(production.script, spoken, timing)
    report = master(mix)
    timeline_path = package(production.script, mix, output)
    return RenderResult(
        output=output,
        timeline=timeline_path,
        duration=mix.audio.duration,
        turns=len(mix.placements),
        mastering=report,
    )
