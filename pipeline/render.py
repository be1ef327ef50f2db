"""The whole pipeline, stage by stage: parse -> speech text -> synthesize -> assemble ->
master -> package. Everything that can be checked is checked before any synthesis."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.assemble import assemble
from pipeline.cache import TurnCache, file_digest
from pipeline.files import read_json_record, write_text
from pipeline.loudness import Measurement, require_ffmpeg
from pipeline.master import MasterReport, Spec, master
from pipeline.mp3 import Encoded, encode_segments, segments
from pipeline.outputs import OutputSet
from pipeline.overview import draw_overview
from pipeline.package import Release, tag_mp3, write_companions
from pipeline.production import prepare
from pipeline.synthesize import default_workers, synthesize
from pipeline.timing import Timing
from pipeline.voices import Voice


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


def _state_path(cache: Path | None, output: Path) -> Path | None:
    if cache is None:
        return None
    name = hashlib.sha256(str(output.resolve()).encode()).hexdigest()[:16]
    return cache / f"render-{name}.json"


def _read_state(path: Path | None) -> dict[str, Any]:
    return (read_json_record(path, dict) if path else None) or {}


def _mix_digest(mix: Any, release: Release, spec: Spec | None) -> str:
    """What the MP3 is made from: the mixed samples, the tag and the delivery spec."""
    digest = hashlib.sha256(memoryview(mix.audio.samples))  # no copy of the whole mix
    tag = dataclasses.asdict(release) | {
        "cover": file_digest(release.cover) if release.cover else None
    }
    digest.update(json.dumps(tag, sort_keys=True, default=str).encode())
    digest.update(repr(spec or Spec()).encode())
    return digest.hexdigest()


def _unchanged(state: dict[str, Any], digest: str, output: Path) -> MasterReport | None:
    """The last render's report when nothing that makes the MP3 changed and it is intact."""
    if state.get("mix") != digest or not output.is_file():
        return None
    if file_digest(output) != state.get("output"):
        return None
    return _previous(state)


def _previous(state: dict[str, Any]) -> MasterReport | None:
    try:
        measured = state["report"]["measured"]
        return MasterReport(
            measured=Measurement(
                measured["loudness_lufs"],
                measured["true_peak_db"],
                tuple(measured["times"]),
                tuple(measured["momentary"]),
                tuple(measured["short_term"]),
            ),
            gain_db=state["report"]["gain_db"],
            limit_db=state["report"]["limit_db"],
            passes=0,
        )
    except (KeyError, TypeError, ValueError):  # a record of another shape: master afresh
        return None


def _write_state(path: Path | None, digest: str, output: Path, report: MasterReport) -> None:
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"mix": digest, "output": file_digest(output), "report": dataclasses.asdict(report)}
    write_text(path, json.dumps(state) + "\n")


def voice_credit(voice: Voice) -> str:
    """How show notes credit a voice."""
    credit = voice.description or f"{voice.engine} {voice.model or ''}".strip()
    return f"{credit}; license: {voice.license}" if voice.license else credit


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
) -> RenderResult:
    """Render the script at ``script_path`` to a mastered, tagged MP3 at ``output``.

    Synthesized turns are kept in ``cache`` (None: no cache) and spoken by ``workers``
    processes (default: one per core).
    """
    require_ffmpeg()  # before spending minutes on synthesis
    outputs = OutputSet(output)
    outputs.check_writable()
    production = prepare(script_path, voice_overrides)
    script = production.script
    turn_cache = TurnCache(cache) if cache is not None else None
    spoken = synthesize(
        production.utterances,
        production.engines,
        script.path,
        progress=progress,
        cache=turn_cache,
        voices=production.voices,
        workers=default_workers() if workers is None else workers,
        timing=timing,
    )
    mix = assemble(script, spoken, timing, production.music)
    del spoken  # the mix holds every turn now: free the separate copies before mastering
    release = Release.of(script, mix)
    state_path = _state_path(cache, output)
    state = _read_state(state_path)
    digest = _mix_digest(mix, release, spec)
    voices = {speaker: voice_credit(v) for speaker, v in production.voices.items()}
    music_credit = production.music.license if production.music else ""
    files = {speaker: voice.path for speaker, voice in production.voices.items()}
    with outputs.replace() as staging:
        report = _unchanged(state, digest, output)
        mp3 = output
        if report is None:
            previous = _previous(state)
            parts = segments(len(mix.audio.samples), [c.start for c in mix.chapters])
            threads = default_workers() if workers is None else workers
            mp3 = staging.path(output)

            def encode(filters: str) -> Encoded:
                samples, rate = mix.audio.samples, mix.audio.sample_rate
                return encode_segments(samples, rate, parts, filters, mp3, turn_cache, threads)

            report = master(mix, encode, spec, previous)
            tag_mp3(mp3, release)
        made_from = {
            "script": {"path": str(script.path), "sha256": script.digest},
            "mp3": {"sha256": file_digest(mp3), "bytes": mp3.stat().st_size},
        }
        write_companions(script, mix, release, staging, voices, music_credit, made_from, files)
        draw_overview(
            script,
            mix,
            report.measured,
            staging.path(outputs.overview),
            target_lufs=(spec or Spec()).loudness_lufs,
        )
    if report.passes:
        _write_state(state_path, digest, output, report)
    return RenderResult(
        outputs=outputs,
        duration=mix.audio.duration,
        turns=len(mix.placements),
        mastering=report,
    )
