"""The whole pipeline, stage by stage: parse -> speech text -> synthesize -> assemble ->
master -> package. Everything that can be checked is checked before any synthesis."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from pipeline.assemble import Mix, assemble
from pipeline.cache import SegmentCache, TurnCache
from pipeline.files import file_digest, read_json_record, write_text
from pipeline.loudness import require_ffmpeg
from pipeline.master import MasterReport, Spec, master
from pipeline.mp3 import SegmentEncoder
from pipeline.opus import OPUS_VERSION, OpusRendition
from pipeline.outputs import OutputSet
from pipeline.overview import draw_overview
from pipeline.package import Release, tag_mp3, write_companions
from pipeline.production import Production, prepare
from pipeline.synthesize import default_workers, synthesize
from pipeline.timing import Timing


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


@dataclass(frozen=True)
class RenderState:
    """What the last render to an output made, kept in the cache: an unchanged mix is not
    mastered again, and a changed one starts from the last gain and limit."""

    mix: str
    """SHA-256 of what the MP3 is made from (``mix_digest``)."""

    output: str
    """SHA-256 of the MP3 it wrote."""

    report: MasterReport
    """How it was mastered."""

    opus: str = ""
    """SHA-256 of the Opus rendition it wrote."""

    @staticmethod
    def path(cache: Path, output: Path) -> Path:
        """Where the state of renders to ``output`` is kept in ``cache``."""
        name = hashlib.sha256(str(output.resolve()).encode()).hexdigest()[:16]
        return cache / f"render-{name}.json"

    @staticmethod
    def load(path: Path) -> RenderState | None:
        """The state at ``path``; None if missing or of another shape (master afresh)."""
        record = read_json_record(path, dict)
        try:
            return (
                RenderState(
                    str(record["mix"]),
                    str(record["output"]),
                    MasterReport.from_json(record["report"]),
                    str(record.get("opus", "")),
                )
                if record
                else None
            )
        except (KeyError, ValueError):
            return None

    def save(self, path: Path) -> None:
        """Write the state at ``path``, atomically."""
        record = {"mix": self.mix, "output": self.output, "report": self.report.to_json()}
        record["opus"] = self.opus
        write_text(path, json.dumps(record) + "\n")

    def unchanged(self, digest: str, output: Path, opus: Path) -> bool:
        """Whether ``output`` and ``opus`` are intact and were made from a mix of ``digest``."""
        return (
            self.mix == digest
            and all(path.is_file() for path in (output, opus))
            and file_digest(output) == self.output
            and file_digest(opus) == self.opus
        )


def _mixed(
    production: Production,
    cache: TurnCache | None,
    workers: int,
    timing: Timing | None,
    progress: bool,
) -> Mix:
    """Every turn spoken (or taken from ``cache``) and laid with the music on one timeline;
    the separate turns are freed before mastering, as the mix holds them all."""
    spoken = synthesize(
        production.utterances,
        production.engines,
        production.script.path,
        progress=progress,
        cache=cache,
        voices=production.voices,
        workers=workers,
        timing=timing,
        pans={speaker: host.pan for speaker, host in production.script.meta.hosts.items()},
    )
    return assemble(production.script, spoken, timing, production.music)


def _encoder(mix: Mix, mp3: Path, cache: Path | None, workers: int) -> SegmentEncoder:
    """The encoder for ``mix``: segments cut at its chapters, kept in ``cache``."""
    segments = SegmentCache(cache) if cache is not None else None
    return SegmentEncoder(mix.audio, mp3, [c.start for c in mix.chapters], segments, workers)


def mix_digest(mix: Mix, release: Release, spec: Spec | None) -> str:
    """What the MP3 and the Opus file are made from: the mixed samples, the tag, the
    delivery spec and the way the Opus file is made."""
    digest = hashlib.sha256(memoryview(mix.audio.samples))  # no copy of the whole mix
    tag = dataclasses.asdict(release) | {
        "cover": file_digest(release.cover) if release.cover else None
    }
    digest.update(json.dumps(tag, sort_keys=True, default=str).encode())
    digest.update(repr(spec or Spec()).encode())
    digest.update(f"opus {OPUS_VERSION}".encode())  # how the Opus rendition is made
    return digest.hexdigest()


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
    workers = default_workers() if workers is None else workers
    outputs = OutputSet(output)
    outputs.check_writable()
    production = prepare(script_path, voice_overrides)
    script = production.script
    turn_cache = TurnCache(cache) if cache is not None else None
    mix = _mixed(production, turn_cache, workers, timing, progress)
    release = Release.of(script, mix, production.voices)
    state_path = RenderState.path(cache, output) if cache is not None else None
    state = RenderState.load(state_path) if state_path else None
    digest = mix_digest(mix, release, spec)
    encoder = None
    opus: OpusRendition | None = None
    with outputs.replace() as staging, contextlib.ExitStack() as stop:
        if state is not None and state.unchanged(digest, output, outputs.opus):
            report, mp3 = state.report, output
        else:
            mp3 = staging.path(output)
            encoder = _encoder(mix, mp3, cache, workers)
            report = master(encoder, spec, state.report if state else None)
            tag_mp3(mp3, release)
            # The Opus rendition, in the background while the companions are written.
            opus_path = staging.path(outputs.opus)
            opus = OpusRendition(
                mix.audio, report.gain_db, report.limit_db, opus_path, spec or Spec()
            )
            stop.callback(opus.kill)  # if anything below fails or is interrupted
        write_companions(production, mix, release, staging, mp3, report.measured)
        overview = staging.path(outputs.overview)
        target = (spec or Spec()).loudness_lufs
        draw_overview(script, mix, report.measured, overview, target_lufs=target)
        if opus is not None:
            opus.result()
    if state_path is not None and report.passes:
        RenderState(digest, file_digest(output), report, file_digest(outputs.opus)).save(state_path)
    last = encoder.last if encoder else None
    return RenderResult(
        outputs=outputs,
        duration=mix.audio.duration,
        turns=len(mix.placements),
        mastering=report,
        segments_encoded=last.encoded if last else 0,
        segments_reused=last.reused if last else 0,
    )
