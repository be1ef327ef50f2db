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
from pipeline.cover import check_cover
from pipeline.engines import Engine
from pipeline.errors import PipelineError
from pipeline.files import input_file, read_json_record, write_text
from pipeline.lexicon import Lexicon
from pipeline.loudness import Measurement, require_ffmpeg
from pipeline.master import MasterReport, Spec, master
from pipeline.mp3 import Encoded, encode_segments, segments
from pipeline.music import MusicLibrary
from pipeline.outputs import OutputSet
from pipeline.overview import draw_overview
from pipeline.package import Release, tag_mp3, write_companions
from pipeline.script import MusicCue, Script, parse_script
from pipeline.speech import Mode, Utterance, utterances
from pipeline.synthesize import default_workers, load_engines, synthesize
from pipeline.timing import Timing
from pipeline.voices import Voice, host_voices


@dataclass
class Production:
    """A parsed script with its voices, engines and music loaded: ready to render."""

    script: Script
    """The parsed script."""

    voices: dict[str, Voice]
    """Each host's voice file."""

    engines: dict[str, Engine]
    """Each host's loaded engine."""

    music: MusicLibrary | None
    """The music the cues play, if the script names a library."""

    utterances: list[Utterance]
    """Every turn with its speech text."""


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


def prepare(
    script_path: Path, voice_overrides: dict[str, Path] | None = None, warm: bool = False
) -> Production:
    """Parse the script, load every host's voice and engine and the music: no synthesis.
    ``warm`` loads each engine's model too (``check`` does, to prove it loads)."""
    script = parse_script(script_path)
    check_inputs(script)
    voices = host_voices(script, voice_overrides)
    engines = load_engines(voices, warm)
    lexicons = load_lexicons(script, voices, engines)
    modes = {speaker: engine.lexicon_mode for speaker, engine in engines.items()}
    music = load_music(script)
    return Production(script, voices, engines, music, utterances(script, modes, lexicons))


def load_lexicons(
    script: Script, voices: dict[str, Voice], engines: dict[str, Engine]
) -> dict[str, Lexicon]:
    """Each host's lexicon: the show's, overridden by the voice's own; IPA checked against
    the phonemes of engines that take them."""
    show = Lexicon.load(script.meta.lexicon) if script.meta.lexicon else Lexicon.empty()
    lexicons = {}
    for speaker, voice in voices.items():
        lexicon = show.overridden_by(Lexicon.load(voice.lexicon)) if voice.lexicon else show
        engine = engines[speaker]
        known, mode = engine.phoneme_set, engine.lexicon_mode
        for entry in lexicon.entries.values():
            phonemes = entry.phonemes(mode)
            if known is None or phonemes is None:
                continue
            unknown = sorted(set(phonemes.replace(" ", "")) - known)
            if unknown:
                raise PipelineError(
                    f"{entry.source(mode)} have symbols {voice.engine} cannot say: "
                    f"{' '.join(unknown)}",
                    path=entry.path,
                    line=entry.line,
                    hint=_PHONEME_HINTS[mode],
                )
        lexicons[speaker] = lexicon
    return lexicons


_PHONEME_HINTS = {
    Mode.PHONEMES: "use espeak-ng's IPA symbols (see what Piper makes of a similar word with "
    "'espeak-ng -q --ipa')",
    Mode.KOKORO: "use espeak-ng's IPA symbols, or give the entry a 'kokoro:' field in Kokoro's "
    "(misaki) alphabet",
}


def check_inputs(script: Script) -> None:
    """Every file the front matter names is a real file of its kind: the fact sheet and
    lexicon regular files, the cover a JPEG or PNG a podcast app takes."""
    meta = script.meta
    named = {
        "facts": (meta.facts, "fact sheet", None),
        "lexicon": (meta.lexicon, "lexicon", None),
        "music": (meta.music, "music library", "run 'make music' to compose it"),
    }
    for key, (path, what, hint) in named.items():
        if path is not None:
            input_file(path, what, named_at=(script.path, meta.lines.get(key)), hint=hint)
    if meta.cover is not None:
        check_cover(meta.cover, (script.path, meta.lines.get("cover")))


def load_music(script: Script) -> MusicLibrary | None:
    """The script's music library, checking that every cue names a piece in it."""
    cues = [item for c in script.chapters for item in c.items if isinstance(item, MusicCue)]
    library = MusicLibrary.load(script.meta.music) if script.meta.music else None
    for cue in cues:
        if library is None:
            raise PipelineError(
                f"[music: {cue.name}] but the script names no music library",
                path=script.path,
                line=cue.line,
                hint="add 'music: ../assets/music/music.yaml' to the front matter",
            )
        if cue.name not in library.pieces:
            raise PipelineError(
                f"no music called {cue.name!r} in {library.path}",
                path=script.path,
                line=cue.line,
                hint=f"pieces: {', '.join(library.pieces)}",
            )
    return library


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
