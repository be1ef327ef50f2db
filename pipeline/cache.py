"""Content-addressed caches under the project's ``build/cache/`` (``project_cache``):
synthesized turns, and encoded MP3 and Opus segments, each kept by a key that hashes everything
that made it.

A turn's key is a SHA-256 of everything that changes its audio: the speech text (which
carries the lexicon's phonemes or respellings), the engine's fingerprint (engine and
package version, the model file's own hash, speaker, pace), the levelling and timing
settings and ``CACHE_VERSION`` (how turns are trimmed and resampled). A sentence is
found by its own key (engine fingerprint, sample rate and text), which points to a cached
turn that holds it: a turn that was edited speaks only its new sentences. A segment's key
hashes its samples, the mastering filters and the encoder (``pipeline/segments.py``). A stale
entry can therefore never be found.

Each entry is its data plus a small JSON record holding the data's SHA-256, written data
first and record last, each under a temporary name and renamed: a half-written entry has
no record and is never served, and one whose data does not match its record (its
SHA-256, read again unless the file's size and time are as written), or whose record
has the wrong shape, is deleted and made again. The folder is safe to delete at
any time.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.audio import Audio
from pipeline.files import file_digest, write_bytes


def project_cache(script: Path) -> Path:
    """The cache of the project a script belongs to, whatever the output folder: so a
    render to another folder, or of another episode of the show, reuses every turn.
    The project is the nearest folder above the script that holds the show's
    ``podcast.yaml``; a script outside any show keeps its cache beside it."""
    folder = script.resolve().parent
    for candidate in (folder, *folder.parents):
        if (candidate / "podcast.yaml").is_file():
            return candidate / "build" / "cache"
    return folder / "build" / "cache"


CACHE_VERSION = 4  # bump when the synthesize stage changes what it stores (4: unlevelled)

Spans = tuple[tuple[int, int], ...]
"""Where each sentence of a turn is in its audio: (first sample, one past the last)."""


@dataclass(frozen=True)
class BlobStore:
    """Checked bytes on disk by key: each entry's data and the record vouching for it."""

    folder: Path
    """Where entries live (shared: kinds differ by ``suffix``, keys never collide)."""

    suffix: str
    """The data files' suffix."""

    def _paths(self, key: str) -> tuple[Path, Path]:
        folder = self.folder / key[:2]
        return folder / f"{key}{self.suffix}", folder / f"{key}.json"

    def get(self, key: str) -> tuple[bytes, dict[str, Any]] | None:
        """The bytes and record under ``key``; None if absent, half-written or corrupt (a
        corrupt entry is removed, so it is made again)."""
        data_path, record_path = self._paths(key)
        try:
            record = json.loads(record_path.read_text(encoding="utf-8"))
            raw = data_path.read_bytes()
            intact = self._intact(key, record, lambda: hashlib.sha256(raw).hexdigest())
        except (OSError, ValueError):
            return None
        if not intact:
            self.remove(key)
            return None
        return raw, record

    def locate(self, key: str) -> tuple[Path, dict[str, Any]] | None:
        """The data file and record under ``key``, its data checked without keeping it;
        None as for ``get``."""
        data_path, record_path = self._paths(key)
        try:
            record = json.loads(record_path.read_text(encoding="utf-8"))
            intact = self._intact(key, record, lambda: file_digest(data_path))
        except (OSError, ValueError):
            return None
        if not intact:
            self.remove(key)
            return None
        return data_path, record

    def put(self, key: str, raw: bytes, record: dict[str, Any]) -> Path:
        """Store ``raw`` under ``key``: data first, then the record that vouches for it;
        the data file."""
        data_path, record_path = self._paths(key)
        write_bytes(data_path, raw)
        record = record | {"sha256": hashlib.sha256(raw).hexdigest(), "stat": _stat(data_path)}
        write_bytes(record_path, json.dumps(record).encode())
        return data_path

    def has(self, key: str) -> bool:
        """Whether an entry's record is under ``key`` (not checked)."""
        return self._paths(key)[1].is_file()

    def _intact(self, key: str, record: Any, digest: Callable[[], str]) -> bool:
        """Whether an entry's data is what its record vouches for: by its SHA-256, unless
        the file is as it was written (size and modification time, as ``make`` judges; the
        cache only ever replaces whole files, so a change to one is a new time). Rehashing
        every turn on every render read the whole cache: 0.3 s of a one-line edit here.
        Data that hashes right under another time (copied, restored) is vouched for anew."""
        if not isinstance(record, dict):
            return False
        data_path, record_path = self._paths(key)
        if record.get("stat") == _stat(data_path):
            return True
        if digest() != record.get("sha256"):
            return False
        write_bytes(record_path, json.dumps(record | {"stat": _stat(data_path)}).encode())
        return True

    def remove(self, key: str) -> None:
        """Delete the entry under ``key``, so it is made again."""
        for path in self._paths(key):
            path.unlink(missing_ok=True)


def _stat(path: Path) -> list[int]:
    """What changes when a file is written: its size and modification time (ns)."""
    stat = path.stat()
    return [stat.st_size, stat.st_mtime_ns]


@dataclass(frozen=True)
class Said:
    """A turn as its engine said it: what the synthesize stage makes and the cache keeps."""

    audio: Audio
    """What the engine said, trimmed and resampled, not levelled."""

    gain_db: float | None
    """The gain that levels it (``pipeline/level.py``); None: not measured, or too short."""

    sentences: Spans
    """Each sentence's span in ``audio``."""


@dataclass(frozen=True)
class TurnCache:
    """Synthesized turns by key."""

    folder: Path
    """The cache folder."""

    @staticmethod
    def key(fingerprint: str, text: str) -> str:
        """The key of ``text`` spoken by an engine with ``fingerprint``."""
        material = f"{CACHE_VERSION}\0{fingerprint}\0{text}".encode()
        return hashlib.sha256(material).hexdigest()

    @property
    def _store(self) -> BlobStore:
        return BlobStore(self.folder, ".f32")

    def get(self, key: str) -> Said | None:
        """The turn under ``key``; None if absent, half-written or corrupt. Its samples
        are a read-only memory map of the entry's file: nothing is read into memory until
        the mix asks for a stretch of it (``pipeline/assemble.py``)."""
        found = self._store.locate(key)
        if found is None:
            return None
        try:
            return _mapped(*found)
        except (KeyError, TypeError, ValueError):  # a record of another shape: make it again
            self._store.remove(key)
            return None

    def put(self, key: str, turn: Said) -> Said:
        """Store ``turn`` under ``key``; the turn as stored, a memory map like ``get``'s
        (so a render need not hold what it has cached)."""
        raw = turn.audio.samples.astype("<f4", copy=False).tobytes()
        record = {"sample_rate": turn.audio.sample_rate, "samples": len(turn.audio.samples)}
        record |= {"gain_db": turn.gain_db, "sentences": [list(span) for span in turn.sentences]}
        return _mapped(self._store.put(key, raw, record), record)

    @staticmethod
    def sentence_key(fingerprint: str, sample_rate: int, sentence: str) -> str:
        """The key of one sentence spoken by an engine with ``fingerprint``, trimmed and
        resampled to ``sample_rate``: what it sounds like wherever it is said."""
        return TurnCache.key(f"{fingerprint}\0sentence at {sample_rate}", sentence)

    @property
    def _pointers(self) -> BlobStore:
        return BlobStore(self.folder, ".at")

    def point(self, sentence_keys: list[str], turn_key: str, spans: Spans) -> None:
        """Record that the turn under ``turn_key`` holds each of ``sentence_keys`` at its
        ``spans`` (nothing if they do not pair up, or are recorded already)."""
        if len(sentence_keys) != len(spans):
            return
        for index, key in enumerate(sentence_keys):
            if not self._pointers.has(key):
                pointer = json.dumps({"turn": turn_key, "index": index}).encode()
                self._pointers.put(key, pointer, {})

    def sentence(self, key: str) -> np.ndarray | None:
        """A sentence's samples as a cached turn holds them (``point``); None if no turn
        does any more."""
        found = self._pointers.get(key)
        if found is None:
            return None
        try:
            pointer = json.loads(found[0])
            turn_key, index = str(pointer["turn"]), int(pointer["index"])
        except (KeyError, TypeError, ValueError):
            self._pointers.remove(key)
            return None
        said = self.get(turn_key)
        if said is None or not 0 <= index < len(said.sentences):
            return None
        start, end = said.sentences[index]
        return np.array(said.audio.samples[start:end], dtype=np.float32)


def _mapped(path: Path, record: dict[str, Any]) -> Said:
    """A cached turn: its file's samples as a read-only memory map, and its record's
    gain and sentences (``KeyError``, ``TypeError`` or ``ValueError`` if the record has
    another shape)."""
    count = int(record["samples"])
    samples = (
        np.memmap(path, dtype="<f4", mode="r", shape=(count,)) if count else np.zeros(0, np.float32)
    )
    spans = tuple((int(start), int(end)) for start, end in record.get("sentences", ()))
    gain = record.get("gain_db")
    return Said(
        Audio(samples, int(record["sample_rate"])), None if gain is None else float(gain), spans
    )


@dataclass(frozen=True)
class SegmentReading:
    """What the loudness meter read of an encoded MP3 segment, as decoded."""

    true_peak_db: float
    """Its highest true peak (dBTP)."""

    times: tuple[float, ...]
    """Seconds from the segment's start at which momentary loudness was read."""

    momentary: tuple[float, ...]
    """Momentary loudness (400 ms) at each of ``times``, LUFS."""

    def to_json(self) -> dict[str, Any]:
        """As a JSON object."""
        return {"true_peak_db": self.true_peak_db, "times": self.times, "momentary": self.momentary}

    @staticmethod
    def from_json(record: dict[str, Any]) -> SegmentReading:
        """From ``to_json``'s object (``ValueError`` if it has another shape)."""
        try:
            times, momentary = record["times"], record["momentary"]
            if not (isinstance(times, list) and isinstance(momentary, list)):
                raise TypeError("not lists")
            return SegmentReading(
                float(record["true_peak_db"]),
                tuple(float(t) for t in times),
                tuple(float(m) for m in momentary),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a segment reading: {exc}") from None


@dataclass(frozen=True)
class SegmentCache:
    """Encoded segments by key: their frames and what the meter read of them."""

    folder: Path
    """The cache folder."""

    suffix: str = ".mp3"
    """The data files' suffix: the codec's."""

    @property
    def _store(self) -> BlobStore:
        return BlobStore(self.folder, self.suffix)

    def get(self, key: str) -> tuple[bytes, SegmentReading] | None:
        """The frames and reading under ``key``; None if absent, half-written or corrupt."""
        found = self._store.get(key)
        if found is None:
            return None
        try:
            return found[0], SegmentReading.from_json(found[1])
        except ValueError:  # a record of another shape: make it again
            self._store.remove(key)
            return None

    def put(self, key: str, frames: bytes, reading: SegmentReading) -> None:
        """Store a segment's ``frames`` and ``reading`` under ``key``."""
        self._store.put(key, frames, reading.to_json())
