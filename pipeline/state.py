"""What the last render to an output made and what it was made from, kept in the cache.

Two uses. Mastering: an unchanged mix is not mastered again, and a changed one starts
from the last gain and limits (``pipeline/render.py``). And the fast path: a render whose
inputs are all as they were, whose outputs are all in place, and whose code and packages
are the same, has nothing to do, and says so before any stage is imported (``up_to_date``,
from ``pipeline/cli.py``). A file is taken as unchanged when its size and modification
time are (as ``make`` does), or, if those moved, when its SHA-256 still matches.

Light to import: only the standard library and the mastering report's record.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.files import file_digest, read_json_record, write_text
from pipeline.master import MasterReport


@dataclass(frozen=True)
class Stamp:
    """A file as a render read or wrote it."""

    path: str
    """Its absolute path."""

    size: int
    """Its size in bytes."""

    mtime_ns: int
    """Its modification time."""

    sha256: str
    """Its SHA-256."""

    @staticmethod
    def of(path: Path, sha256: str | None = None) -> Stamp:
        """The stamp of ``path`` now (``sha256``: its digest, if already known)."""
        stat = path.stat()
        digest = sha256 or file_digest(path)
        return Stamp(str(path.resolve()), stat.st_size, stat.st_mtime_ns, digest)

    def holds(self) -> bool:
        """Whether the file is still as stamped."""
        path = Path(self.path)
        try:
            stat = path.stat()
        except OSError:
            return False
        if (stat.st_size, stat.st_mtime_ns) == (self.size, self.mtime_ns):
            return True
        return stat.st_size == self.size and file_digest(path) == self.sha256


def environment() -> str:
    """A digest of what the render's code and engines are: the pipeline's own source
    files, the packages installed beside it, and the ffmpeg and Festival programs. Any
    upgrade changes it, so a render after one does the whole of its work (which then
    finds its turns and segments in the cache if they are the same)."""
    digest = hashlib.sha256(sys.version.encode())
    package = Path(__file__).parent
    for source in sorted(package.rglob("*.py")):
        stat = source.stat()
        digest.update(f"{source.relative_to(package)} {stat.st_size} {stat.st_mtime_ns}\n".encode())
    for folder in sorted({p for p in sys.path if p.endswith("-packages") and Path(p).is_dir()}):
        installed = sorted(n for n in os.listdir(folder) if n.endswith((".dist-info", ".egg-link")))
        digest.update("\n".join(installed).encode())
    for program in ("ffmpeg", "text2wave"):
        found = shutil.which(program)
        stat = os.stat(found) if found else None
        digest.update(f"{program} {found} {stat and (stat.st_size, stat.st_mtime_ns)}".encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class RenderState:
    """What the last render to an output made: an unchanged mix is not mastered again, a
    changed one starts from the last gain and limit, and unchanged inputs skip the render."""

    mix: str
    """SHA-256 of what the MP3 is made from (``render.mix_digest``)."""

    output: str
    """SHA-256 of the MP3 it wrote."""

    report: MasterReport
    """How it was mastered."""

    opus: str = ""
    """SHA-256 of the Opus rendition it wrote."""

    opus_levels: tuple[float, float] | None = None
    """The gain and limit the Opus rendition ended at (its segments are kept under them)."""

    made_from: tuple[Stamp, ...] = ()
    """Every file the render read: script, voices, models, lexicons, music, cover, facts."""

    options: str = ""
    """The render's options and ``environment()``, as a digest."""

    wrote: tuple[Stamp, ...] = ()
    """Every file of the output set, as written."""

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
                    tuple(map(float, record["opus_levels"])) if record.get("opus_levels") else None,
                    tuple(Stamp(**s) for s in record.get("made_from", ())),
                    str(record.get("options", "")),
                    tuple(Stamp(**s) for s in record.get("wrote", ())),
                )
                if record
                else None
            )
        except (KeyError, TypeError, ValueError):
            return None

    def save(self, path: Path) -> None:
        """Write the state at ``path``, atomically."""
        record: dict[str, Any] = {"mix": self.mix, "output": self.output}
        record |= {"report": self.report.to_json(), "opus": self.opus}
        record |= {"opus_levels": self.opus_levels, "options": self.options}
        record |= {"made_from": [vars(s) for s in self.made_from]}
        record |= {"wrote": [vars(s) for s in self.wrote]}
        write_text(path, json.dumps(record) + "\n")

    def unchanged(self, digest: str, output: Path, opus: Path) -> bool:
        """Whether ``output`` and ``opus`` are intact (as their stamps say, ``Stamp.holds``)
        and were made from a mix of ``digest``."""
        stamps = {stamp.path: stamp for stamp in self.wrote}
        made = [stamps.get(str(path.resolve())) for path in (output, opus)]
        return self.mix == digest and all(stamp is not None and stamp.holds() for stamp in made)


def options_digest(script: Path, overrides: dict[str, Path] | None) -> str:
    """What the render was asked to make (the script, the voices swapped in), and the
    ``environment()`` it ran in."""
    swapped = sorted((k, str(v.resolve())) for k, v in (overrides or {}).items())
    asked = [str(script.resolve()), swapped, environment()]
    return hashlib.sha256(json.dumps(asked).encode()).hexdigest()


def up_to_date(
    cache: Path, script: Path, output: Path, overrides: dict[str, Path] | None
) -> RenderState | None:
    """The last render's state if rendering ``script`` to ``output`` again has nothing to
    do: the same script, options and environment, every file it read unchanged, every
    file it wrote in place; else None."""
    state = RenderState.load(RenderState.path(cache, output))
    if state is None or not state.made_from or not state.wrote:
        return None
    if state.options != options_digest(script, overrides):
        return None
    if not all(stamp.holds() for stamp in (*state.made_from, *state.wrote)):
        return None
    return state
