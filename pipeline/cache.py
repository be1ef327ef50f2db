"""A content-addressed cache of synthesized turns and encoded MP3 segments (``build/cache/``).

A turn's key is a SHA-256 of everything that changes its audio: the speech text (which
carries the lexicon's phonemes or respellings), the engine's fingerprint (engine and
package version, the model file's own hash, speaker, pace), the levelling settings and
``CACHE_VERSION`` (how turns are trimmed, resampled and levelled). A stale entry can
therefore never be found. Each entry is the turn's samples plus a small JSON record with
their SHA-256, written data first and record last, each to a temporary name and renamed:
a half-written entry has no record and is never served, and one whose data does not match
its record is deleted and made again. MP3 segments (``pipeline/mp3.py``) are kept the same
way under keys of their own. The folder is safe to delete at any time.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.audio import Audio
from pipeline.files import temporary_name

CACHE_VERSION = 3  # bump when the synthesize stage changes what it stores


def file_digest(path: Path) -> str:
    """SHA-256 of a file (a model's identity in an engine's fingerprint)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class TurnCache:
    """Synthesized turns on disk, by key."""

    folder: Path
    """Where entries live."""

    @staticmethod
    def key(fingerprint: str, text: str) -> str:
        """The key of ``text`` spoken by an engine with ``fingerprint``."""
        material = f"{CACHE_VERSION}\0{fingerprint}\0{text}".encode()
        return hashlib.sha256(material).hexdigest()

    def _paths(self, key: str, suffix: str) -> tuple[Path, Path]:
        folder = self.folder / key[:2]
        return folder / f"{key}{suffix}", folder / f"{key}.json"

    def get(self, key: str) -> tuple[Audio, float | None, tuple[tuple[int, int], ...]] | None:
        """The cached audio for ``key``, its levelling gain and its sentences' spans; None
        if absent, half-written or corrupt."""
        found = self.get_blob(key, ".f32")
        if found is None:
            return None
        raw, record = found
        try:
            samples = np.frombuffer(raw, dtype="<f4").astype(np.float32)
            spans = tuple((int(start), int(end)) for start, end in record.get("sentences", ()))
            gain = record.get("gain_db")
            return (
                Audio(samples, int(record["sample_rate"])),
                None if gain is None else float(gain),
                spans,
            )
        except (KeyError, TypeError, ValueError):  # a record of another shape: make it again
            self.remove(key, ".f32")
            return None

    def put(
        self,
        key: str,
        audio: Audio,
        gain_db: float | None = None,
        sentences: tuple[tuple[int, int], ...] = (),
    ) -> None:
        """Store ``audio`` (levelled by ``gain_db``, if given) and where its sentences are
        under ``key``."""
        raw = audio.samples.astype("<f4", copy=False).tobytes()
        record = {"sample_rate": audio.sample_rate, "samples": len(audio.samples)}
        record |= {"gain_db": gain_db, "sentences": [list(span) for span in sentences]}
        self.put_blob(key, raw, record, ".f32")

    def get_blob(self, key: str, suffix: str = ".bin") -> tuple[bytes, dict[str, Any]] | None:
        """The bytes and record stored under ``key``; None if absent, half-written or
        corrupt (a corrupt entry is removed, so it is made again)."""
        data_path, record_path = self._paths(key, suffix)
        try:
            record = json.loads(record_path.read_text(encoding="utf-8"))
            raw = data_path.read_bytes()
        except (OSError, ValueError):
            return None
        if not isinstance(record, dict) or hashlib.sha256(raw).hexdigest() != record.get("sha256"):
            self.remove(key, suffix)
            return None
        return raw, record

    def remove(self, key: str, suffix: str = ".bin") -> None:
        """Delete the entry under ``key``, so it is made again."""
        for path in self._paths(key, suffix):
            path.unlink(missing_ok=True)

    def put_blob(self, key: str, raw: bytes, record: dict[str, Any], suffix: str = ".bin") -> None:
        """Store ``raw`` under ``key``: data first, then the record that vouches for it."""
        data_path, record_path = self._paths(key, suffix)
        data_path.parent.mkdir(parents=True, exist_ok=True)
        record = record | {"sha256": hashlib.sha256(raw).hexdigest()}
        for path, content in ((data_path, raw), (record_path, json.dumps(record).encode())):
            tmp = temporary_name(path)
            try:
                tmp.write_bytes(content)
                os.replace(tmp, path)
            finally:
                tmp.unlink(missing_ok=True)
