"""The show's music library: pieces a script's ``[music: NAME]`` cues play.

A library is a ``music.yaml`` (written by ``make music``, see ``pipeline/compose.py``)
naming each piece's audio file and its ``lead``: how long the music plays alone before a
voice may come in. Pieces are levelled to the speech reference loudness when composed,
so the mixer can set them relative to the voices.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile

from pipeline.audio import Audio
from pipeline.delivery import SAMPLE_RATE
from pipeline.files import input_file
from pipeline.yamlfile import read_yaml

PIECE_KEYS = ("file", "lead", "description")


@dataclass(frozen=True)
class MusicPiece:
    """One piece of music, ready to mix."""

    name: str
    """Name the cues use, e.g. ``intro``."""

    audio: Audio
    """Stereo (or mono) audio at the delivery rate."""

    lead: float
    """Seconds it plays alone before a voice may come in."""

    description: str
    """What it is."""


@dataclass(frozen=True)
class MusicLibrary:
    """Every piece of a show's music."""

    path: Path
    """The ``music.yaml`` file."""

    license: str
    """License note for the README and show notes."""

    pieces: dict[str, MusicPiece]
    """Pieces by name."""

    files: tuple[Path, ...] = ()
    """The pieces' audio files."""

    @staticmethod
    def load(path: Path) -> MusicLibrary:
        """Read the library and every piece's audio."""
        doc = read_yaml(path, "music library", hint="run 'make music' to compose it")
        data = doc.data
        if not isinstance(data, dict) or not isinstance(data.get("pieces"), dict):
            raise doc.error("a music library has 'license' and 'pieces'")
        doc.check_keys(data, ("license", "pieces"))
        pieces, files = {}, []
        for name, entry in data["pieces"].items():
            if not isinstance(entry, dict) or not isinstance(entry.get("file"), str):
                raise doc.error(f"piece {name!r} needs a 'file'", "pieces", str(name))
            doc.check_keys(entry, PIECE_KEYS, "pieces", str(name), of=f"piece {name!r}")
            lead = entry.get("lead", 0.0)
            if isinstance(lead, bool) or not isinstance(lead, int | float) or lead < 0:
                raise doc.error(f"piece {name!r}: 'lead' must be seconds", "pieces", str(name))
            audio_path = path.parent / entry["file"]
            files.append(audio_path)
            input_file(
                audio_path,
                f"audio of piece {name!r}",
                named_at=(path, doc.line_of("pieces", str(name), "file")),
                hint="run 'make music' to render the music again",
            )
            try:
                samples, rate = soundfile.read(audio_path, dtype="float32", always_2d=True)
            except (OSError, RuntimeError) as exc:
                raise doc.error(
                    f"cannot read {audio_path}: {exc}",
                    "pieces",
                    str(name),
                    "file",
                    hint="run 'make music' to render the music again",
                ) from exc
            # Stereo as it was rendered; a mono file plays in the centre (see assemble).
            kept = samples[:, 0] if samples.shape[1] == 1 else samples[:, :2]
            pieces[str(name)] = MusicPiece(
                name=str(name),
                audio=Audio(np.ascontiguousarray(kept), int(rate)).resample(SAMPLE_RATE),
                lead=float(lead),
                description=str(entry.get("description", "")),
            )
        return MusicLibrary(path, str(data.get("license", "")), pieces, tuple(files))
