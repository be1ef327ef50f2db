"""Shared helpers: repository paths and a writer for small scripts."""

from __future__ import annotations

import json
import subprocess
import textwrap
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
VOICES = REPO / "voices"
FIXTURES = Path(__file__).resolve().parent / "fixtures"

FRONT_MATTER = f"""\
---
podcast: Test Show
episode: 3
title: A test
description: For tests.
hosts:
  ALEX:
    name: Alex
    voice: {VOICES / "joe.yaml"}
  MAYA:
    name: Maya
    voice: {VOICES / "slt.yaml"}
---
"""
FRONT_LINES = FRONT_MATTER.count("\n")  # the body starts on line FRONT_LINES + 1


def ffprobe(path: Path) -> dict:
    """ffprobe's view of a media file: its format and streams."""
    args = ["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", str(path)]
    result = subprocess.run(args, capture_output=True, check=True, text=True)
    return json.loads(result.stdout)


def decode(path: Path, rate: int = 44_100, channels: int = 1) -> np.ndarray:
    """A media file decoded by ffmpeg to float32 at ``rate``: mono (a downmix), shape (n,),
    or ``channels`` channels, shape (n, channels)."""
    args = ["ffmpeg", "-v", "error", "-i", str(path), "-f", "f32le", "-ac", str(channels)]
    raw = subprocess.run([*args, "-ar", str(rate), "-"], capture_output=True, check=True).stdout
    samples = np.frombuffer(raw, dtype="<f4")
    return samples if channels == 1 else samples.reshape(-1, channels)


def rms_db(samples: np.ndarray) -> float:
    """RMS level in dB relative to full scale."""
    return 10 * float(np.log10(np.mean(samples.astype(np.float64) ** 2) + 1e-20))


@pytest.fixture
def write_script(tmp_path: Path) -> Callable[..., Path]:
    """Write a script: ``body`` after the standard front matter, or ``raw`` text as is."""

    def write(body: str = "", *, raw: str | bytes | None = None, name: str = "ep.md") -> Path:
        path = tmp_path / name
        if isinstance(raw, bytes):
            path.write_bytes(raw)
        else:
            text = raw if raw is not None else FRONT_MATTER + textwrap.dedent(body)
            path.write_text(text, encoding="utf-8")
        return path

    return write


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """With torch deselected (``make test-fast``), do not even import the Coqui tests:
    the fast tier runs without the Coqui extra installed."""
    if collection_path.name == "test_coqui.py" and "not torch" in (
        config.getoption("markexpr") or ""
    ):
        return True
    return None
