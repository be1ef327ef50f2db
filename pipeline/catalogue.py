"""The catalogue of published episodes (``episodes.json`` on the target): an entry per
episode, which publishing keeps and the feed and the site are built from."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import dacite

from pipeline.outputs import Soundbite

TRANSCRIPT_KINDS = ("vtt", "srt", "json")


@dataclass(frozen=True)
class Rendition:
    """The episode in one encoding (``podcast:alternateEnclosure``)."""

    path: str
    """The file, relative to the site's root."""

    type: str
    """Its MIME type."""

    bytes: int
    """Its size."""

    bitrate: int
    """Its average bitrate, bits per second."""

    codecs: str
    """Its codec (RFC 6381), e.g. ``opus``."""

    title: str
    """How an app names it, e.g. ``Opus``."""


@dataclass(frozen=True)
class EpisodeEntry:
    """A published episode; paths are relative to the site's root."""

    episode: int
    """Episode number."""

    guid: str
    """The feed's permanent id for it."""

    title: str
    """Episode title."""

    description: str
    """Episode description."""

    date: str
    """Release date, YYYY-MM-DD."""

    duration: float
    """Length in seconds."""

    bytes: int
    """Size of the MP3."""

    mp3: str
    """The MP3."""

    chapters: str
    """Podcasting 2.0 JSON chapters."""

    transcripts: dict[str, str]
    """Transcripts by kind: ``vtt``, ``srt`` and ``json``."""

    page: str
    """The episode's web page."""

    hosts: tuple[str, ...]
    """The hosts' names."""

    notes: str = ""
    """Show notes as HTML: the description, chapter times, linked sources, disclosure."""

    disclosure: str = ""
    """How it was made (synthetic voices)."""

    renditions: tuple[Rendition, ...] = ()
    """Every encoding of the episode, the MP3 (``mp3``) first, then the Opus file."""

    season: int | None = None
    """Season number."""

    artwork: str | None = None
    """The episode's own artwork."""

    soundbites: tuple[Soundbite, ...] = ()
    """Shareable parts."""

    audiogram: str | None = None
    """The promotion video (``make promo``)."""

    @property
    def minutes(self) -> int:
        """Length in whole minutes, as a page shows it."""
        return round(self.duration / 60)

    def to_json(self) -> dict[str, Any]:
        """As a JSON object."""
        return dataclasses.asdict(self)

    @staticmethod
    def from_json(record: Any) -> EpisodeEntry:
        """From ``to_json``'s object; ``ValueError`` says what is wrong with another."""
        if not isinstance(record, dict):
            raise ValueError("is not an episode record")
        kinds: dict[str, type | tuple[type, ...]] = {
            "episode": int,
            "guid": str,
            "title": str,
            "description": str,
            "date": str,
            "duration": (int, float),
            "bytes": int,
            "mp3": str,
            "chapters": str,
            "transcripts": dict,
            "page": str,
            "hosts": list,
        }
        for key, kind in kinds.items():
            value = record.get(key)
            if value is None:
                raise ValueError(f"has no {key!r}")
            if isinstance(value, bool) or not isinstance(value, kind):
                raise ValueError(f"has a {key!r} of the wrong kind ({type(value).__name__})")
        transcripts = record["transcripts"]
        if not all(isinstance(transcripts.get(kind), str) for kind in TRANSCRIPT_KINDS):
            raise ValueError("lacks a transcript path")
        try:  # the rest, written by this version, by their types (earlier ones lack them)
            return dacite.from_dict(
                EpisodeEntry,
                record | {"transcripts": {kind: transcripts[kind] for kind in TRANSCRIPT_KINDS}},
                dacite.Config(cast=[tuple], strict=True),
            )
        except dacite.DaciteError as exc:
            raise ValueError(f"is not an episode record ({exc})") from None
