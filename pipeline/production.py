"""The front half, checked and loaded: parse -> voices and engines -> lexicons, music,
cover -> speech text. Everything ``check`` verifies and ``render`` needs before any
synthesis; none of the back half (mixing, mastering, encoding) is imported."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipeline.cover import check_cover
from pipeline.engines import Engine, load_engines
from pipeline.errors import PipelineError
from pipeline.facts import FactSheet
from pipeline.files import input_file
from pipeline.lexicon import Lexicon
from pipeline.music import MusicLibrary
from pipeline.script import MusicCue, Script, parse_script
from pipeline.speech import Mode, Utterance, utterances
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

    facts: FactSheet | None = None
    """The fact sheet the front matter names, read once for check and show notes."""

    def inputs(self) -> list[Path]:
        """Every file it was made from: the script, the files its front matter names, the
        music, and each voice file with the files it names (models, lexicons, reference
        clips). Installed packages (Piper's voice, hibari's model) are not listed: the
        render's fast path checks the packages themselves (``pipeline/state.py``)."""
        meta = self.script.meta
        files = [self.script.path, meta.facts, meta.lexicon, meta.cover, meta.artwork]
        if self.music is not None:
            files += [self.music.path, *self.music.files]
        for voice in self.voices.values():
            named = [voice.model, *voice.settings.values()]
            found = [voice.resolve(value) for value in named if isinstance(value, str)]
            files += [voice.path, voice.lexicon, *found]
            files += [path.with_name(path.name + ".json") for path in found]  # a Piper model's
        return sorted({path.resolve() for path in files if path is not None and path.is_file()})


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
    facts = FactSheet.load(script.meta.facts) if script.meta.facts else None
    said = utterances(script, modes, lexicons)
    return Production(script, voices, engines, music, said, facts)


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
    for key, art in (("cover", meta.cover), ("artwork", meta.artwork)):
        if art is not None:
            check_cover(art, (script.path, meta.lines.get(key)))


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
