"""A content-addressed cache of synthesized turns (``build/cache/``).

A turn's key is a SHA-256 of everything that changes its audio: the speech text (which
carries the lexicon's phonemes or respellings), the engine's fingerprint (engine and
package version, the model file's own hash, speaker, pace) and ``CACHE_VERSION`` (how
turns are trimmed and resampled). A stale entry can therefore never be found. Each entry is
the turn's samples plus a small JSON record with their SHA-256, written data first and
record last, each to a temporary name and renamed: a half-written entry has no record and
is never served, and one whose data does not match its record is deleted and made again.
The folder is safe to delete at any time.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.audio import Audio

CACHE_VERSION = 1  # bump when the synthesize stage changes what it stores


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

    def _paths(self, key: str) -> tuple[Path, Path]:
        folder = self.folder / key[:2]
        return folder / f"{key}.f32", folder / f"{key}.json"

    def get(self, key: str) -> Audio | None:
        """The cached audio for ``key``; None if absent, half-written or corrupt."""
        data_path, record_path = self._paths(key)
        try:
            record = json.loads(record_path.read_text(encoding="utf-8"))
            raw = data_path.read_bytes()
        except (OSError, ValueError):
            return None
        if hashlib.sha256(raw).hexdigest() != record.get("sha256"):
            for path in (record_path, data_path):  # corrupt: remove, and it is made again
                path.unlink(missing_ok=True)
            return None
        samples = np.frombuffer(raw, dtype="<f4").astype(np.float32)
        return Audio(samples, int(record["sample_rate"]))

    def get_note(self, key: str, name: str) -> float | None:
        """A number noted about an entry (e.g. its levelling gain), or None."""
        try:
            return float(json.loads((self.folder / key[:2] / f"{key}.{name}.json").read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def put_note(self, key: str, name: str, value: float) -> None:
        """Note a number about an entry, so later renders need not work it out again."""
        path = self.folder / key[:2] / f"{key}.{name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
        try:
            tmp.write_text(json.dumps(value), encoding="utf-8")
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    def put(self, key: str, audio: Audio) -> None:
        """Store ``audio`` under ``key``: data first, then the record that vouches for it."""
        data_path, record_path = self._paths(key)
        data_path.parent.mkdir(parents=True, exist_ok=True)
        raw = audio.samples.astype("<f4", copy=False).tobytes()
        record = {
            "sample_rate": audio.sample_rate,
            "samples": len(audio.samples),
            "sha256": hashlib.sha256(raw).hexdigest(),
        }
        for path, content in ((data_path, raw), (record_path, json.dumps(record).encode())):
            tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
            try:
                tmp.write_bytes(content)
                os.replace(tmp, path)
            finally:
                tmp.unlink(missing_ok=True)
