"""A render's outputs as one set: the MP3 and every file made with it, replaced together.

The files of a set are named after the MP3 (``build/episode.mp3`` gives
``build/episode.timeline.json``, ``build/episode.chapters.json`` and so on), so two
renders to one folder never share a file. A render writes the new versions under
temporary names, then a commit record (``.episode.commit.json``) naming each temporary
and its final name, then renames them all, then deletes the record. A kill before the
record leaves the previous set untouched (its temporaries are swept later); a kill after
it leaves a record that the next command to touch the set (render, qa, publish) carries
out first. Either way a reader sees the previous complete set or the new one.

The set's manifest (``episode.manifest.json``) names its files and records what they were
made from and what the episode is: publishing reads it, not the script or fixed names.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dacite

from pipeline.errors import PipelineError
from pipeline.files import read_json_record, sweep, temporary_name, write_text


@dataclass(frozen=True)
class OutputSet:
    """The files a render of one MP3 writes, by role."""

    mp3: Path
    """The episode, e.g. ``build/episode.mp3``; the others are named after it."""

    def _sibling(self, suffix: str) -> Path:
        return self.mp3.with_name(self.mp3.stem + suffix)

    @property
    def timeline(self) -> Path:
        """Where every turn, chapter and cue lands, and what the set was made from."""
        return self._sibling(".timeline.json")

    @property
    def chapters(self) -> Path:
        """Podcasting 2.0 JSON chapters."""
        return self._sibling(".chapters.json")

    @property
    def transcript(self) -> Path:
        """Podcasting 2.0 JSON transcript."""
        return self._sibling(".transcript.json")

    @property
    def vtt(self) -> Path:
        """WebVTT captions."""
        return self._sibling(".vtt")

    @property
    def srt(self) -> Path:
        """SubRip captions."""
        return self._sibling(".srt")

    @property
    def shownotes(self) -> Path:
        """Show notes in Markdown."""
        return self._sibling(".shownotes.md")

    @property
    def opus(self) -> Path:
        """The Opus rendition."""
        return self._sibling(".opus")

    @property
    def overview(self) -> Path:
        """The overview picture."""
        return self._sibling("-overview.png")

    @property
    def manifest(self) -> Path:
        """What the set holds and was made from (``Manifest``)."""
        return self._sibling(".manifest.json")

    @property
    def journal(self) -> Path:
        """The commit record, present only while a new set is being put in place."""
        return self.mp3.with_name(f".{self.mp3.stem}.commit.json")

    def files(self) -> list[Path]:
        """Every file of the set, the MP3 first."""
        return [
            self.mp3,
            self.opus,
            self.timeline,
            self.chapters,
            self.transcript,
            self.vtt,
            self.srt,
            self.shownotes,
            self.overview,
            self.manifest,
        ]

    def roles(self) -> dict[str, Path]:
        """Every file of the set but the manifest, by role (the manifest's ``files``)."""
        names = ("mp3", "opus", "timeline", "chapters", "transcript", "vtt", "srt", "shownotes")
        return {role: getattr(self, role) for role in (*names, "overview")}

    def check_writable(self) -> None:
        """Fail now, before any synthesis, if the set cannot be written."""
        folder = self.mp3.parent
        for path in self.files():
            if path.is_dir():
                raise PipelineError(
                    f"the output {path} is a folder",
                    hint="give the MP3's file name, e.g. -o build/episode.mp3",
                )
        existing = folder
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if not existing.is_dir():
            raise PipelineError(
                f"cannot write into {folder}: {existing} is a file",
                hint="choose another output path (-o)",
            )
        try:
            folder.mkdir(parents=True, exist_ok=True)
            probe = temporary_name(self.mp3)
            probe.write_bytes(b"")  # the real test: permissions, a read-only disk, root or not
            probe.unlink()
        except OSError as exc:
            raise PipelineError(
                f"cannot write the output into {folder}: {exc.strerror}",
                hint="choose a folder you can write (-o), or fix its permissions",
            ) from None

    def recover(self) -> None:
        """Finish a commit that a kill interrupted, and remove what killed runs left."""
        folder = self.mp3.parent
        record = read_json_record(self.journal, dict) if self.journal.exists() else None
        if record is not None:
            for tmp_name, final_name in record.get("renames", []):
                tmp, final = folder / str(tmp_name), folder / str(final_name)
                # Names only, in this folder: a record can never move a file elsewhere.
                if tmp.parent != folder or final.parent != folder:
                    continue
                if tmp.is_file():
                    with contextlib.suppress(FileNotFoundError):  # another run got there first
                        os.replace(tmp, final)
        self.journal.unlink(missing_ok=True)
        sweep(folder)

    def complete(self) -> bool:
        """Whether every file of the set is there."""
        return all(path.is_file() for path in self.files())

    @contextmanager
    def replace(self) -> Iterator[Staging]:
        """Stage new versions of files of the set; on leaving the block without an error,
        they replace the old ones together (files not staged are kept)."""
        self.recover()
        self.mp3.parent.mkdir(parents=True, exist_ok=True)
        staging = Staging(self)
        try:
            yield staging
            staging.commit()
        finally:
            for tmp in staging.temporaries.values():
                tmp.unlink(missing_ok=True)


@dataclass
class Staging:
    """New versions of an output set's files under temporary names."""

    outputs: OutputSet
    """The set they belong to."""

    temporaries: dict[Path, Path] = field(default_factory=dict)
    """Final path -> temporary path, for every file staged."""

    def path(self, final: Path) -> Path:
        """Where to write the new version of ``final`` (a file of the set)."""
        if final not in self.outputs.files():
            raise ValueError(f"{final} is not part of the output set of {self.outputs.mp3}")
        return self.temporaries.setdefault(final, temporary_name(final))

    def commit(self) -> None:
        """Record the renames, do them, then drop the record."""
        staged = {final: tmp for final, tmp in self.temporaries.items() if tmp.is_file()}
        renames = [[tmp.name, final.name] for final, tmp in staged.items()]
        journal = self.outputs.journal
        write_text(journal, json.dumps({"renames": renames}) + "\n")
        for final, tmp in staged.items():
            with contextlib.suppress(FileNotFoundError):  # a concurrent recover() moved it
                os.replace(tmp, final)
        with contextlib.suppress(FileNotFoundError):
            journal.unlink()
        self.temporaries.clear()


@dataclass(frozen=True)
class MadeFrom:
    """A file an output set was made from, or is, by its SHA-256."""

    path: str
    """Where it was (the script), or its name in the set (the MP3)."""

    sha256: str
    """SHA-256 of its bytes."""

    bytes: int
    """Its size."""


@dataclass(frozen=True)
class SourceLink:
    """A public source the show notes cite."""

    title: str
    """What it is."""

    url: str
    """Where it is."""


@dataclass(frozen=True)
class Loudness:
    """The delivered MP3's loudness, as mastering measured it."""

    integrated_lufs: float
    """Integrated loudness over both channels."""

    true_peak_db: float
    """Highest true peak, dBTP."""

    range_lu: float
    """Loudness range (EBU Tech 3342), LU."""


@dataclass(frozen=True)
class Soundbite:
    """A short, shareable part of the episode (``podcast:soundbite``)."""

    start: float
    """Seconds from the start of the episode."""

    duration: float
    """Its length in seconds."""

    title: str
    """What it is about."""

    chosen: bool
    """Whether the script marked it (``[soundbite]``) rather than the render picking it."""


@dataclass(frozen=True)
class Manifest:
    """An output set's own record: the episode, its files, and what made them."""

    podcast: str
    """Show title."""

    episode: int
    """Episode number."""

    title: str
    """Episode title."""

    description: str
    """Episode description."""

    date: str | None
    """Release date, YYYY-MM-DD."""

    hosts: tuple[str, ...]
    """The hosts' names."""

    duration: float
    """Length in seconds."""

    script: MadeFrom
    """The script it was rendered from."""

    mp3: MadeFrom
    """The MP3, as written."""

    files: dict[str, str]
    """Each file of the set by role (``OutputSet.roles``): its name beside the manifest."""

    loudness: Loudness
    """How loud the MP3 is."""

    disclosure: str
    """What listeners are told about how the episode was made (synthetic voices)."""

    sources: tuple[SourceLink, ...] = ()
    """The public sources the fact sheet lists, as show notes link them."""

    soundbites: tuple[Soundbite, ...] = ()
    """Shareable parts: those the script marks, or one the render picked."""

    season: int | None = None
    """Season number, if the script names one."""

    artwork: MadeFrom | None = None
    """The episode's own artwork, if the script names one."""

    def to_json(self) -> dict[str, Any]:
        """As a JSON object."""
        return dataclasses.asdict(self)

    @staticmethod
    def load(path: Path) -> Manifest:
        """The manifest at ``path``, or an error saying to render again."""
        record = read_json_record(path, dict)
        try:
            if record is None:
                raise ValueError("missing, or not a JSON object")
            manifest = dacite.from_dict(Manifest, record, dacite.Config(cast=[tuple], strict=True))
        except (ValueError, TypeError, dacite.DaciteError) as exc:
            raise PipelineError(
                f"{path} is not an output set's manifest ({exc})",
                hint="render the episode again ('make episode')",
            ) from None
        for name in manifest.files.values():
            if Path(name).name != name or name.startswith("."):
                raise PipelineError(
                    f"{path} names a file outside its folder: {name!r}",
                    hint="render the episode again ('make episode')",
                )
        return manifest

    def file(self, folder: Path, role: str) -> Path:
        """The set's file for ``role`` in ``folder`` (the manifest's own folder)."""
        return folder / self.files[role]
