"""ffmpeg's EBU R128 meter (``ebur128``): integrated loudness, true peak and the loudness
every 100 ms of a file or of MP3 frames; and integrated loudness gated from momentary values.

The momentary loudness the meter logs every 100 ms is the loudness of the last 400 ms:
exactly the overlapping blocks ITU-R BS.1770-4 gates. So the integrated loudness of a file
measured in pieces (``pipeline/mp3.py`` measures each encoded segment) is the gating of all
the pieces' blocks together, as ``integrated`` does.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.errors import PipelineError

# One line per 100 ms frame of ebur128's log: "t: 1.2  TARGET:-23 LUFS  M: -20.1 S: -21.3 ..."
_FRAME = re.compile(r"t:\s*([\d.]+)\s+TARGET:\S+ LUFS\s+M:\s*(-?[\d.]+)\s+S:\s*(-?[\d.]+)")
ABSOLUTE_GATE = -70.0  # LUFS: blocks quieter than this are silence (BS.1770-4)
RELATIVE_GATE = -10.0  # LU under the loudness of the blocks above the absolute gate
RANGE_GATE = -20.0  # LU: the loudness range's relative gate (EBU Tech 3342)
BLOCK_S = 0.4  # the momentary block
SHORT_TERM_TICKS = 27  # 400 ms blocks every 100 ms ending within 3 s: they span 3 s


@dataclass(frozen=True)
class Measurement:
    """Loudness of a file as ffmpeg's EBU R128 meter reports it."""

    loudness_lufs: float
    """Integrated loudness."""

    true_peak_db: float
    """True peak, dBTP."""

    times: tuple[float, ...] = ()
    """Seconds at which the meter reported, every 100 ms."""

    momentary: tuple[float, ...] = ()
    """Momentary loudness (400 ms window) at each of ``times``, LUFS."""

    short_term: tuple[float, ...] = ()
    """Short-term loudness (3 s window) at each of ``times``, LUFS."""

    @property
    def loudness_range(self) -> float:
        """Loudness range (LU, EBU Tech 3342) of ``short_term``."""
        return loudness_range(self.short_term)


def measure(path: Path, peak: bool = True) -> Measurement:
    """Integrated loudness and (with ``peak``) true peak of a media file, and its loudness
    every 100 ms, by ffmpeg's ebur128 filter."""
    return _meter(["-i", str(path)], b"", str(path), peak)


def measure_stream(data: bytes, form: str, what: str) -> Measurement:
    """The same, of a stream in ffmpeg's format ``form`` (bare MP3 frames: "mp3"), as
    decoded, given on ffmpeg's stdin."""
    return _meter(["-f", form, "-i", "pipe:0"], data, what, True)


def _meter(source: list[str], data: bytes, what: str, peak: bool) -> Measurement:
    args = [require_ffmpeg(), "-hide_banner", "-nostats", *source]
    args += ["-af", f"ebur128=peak={'true' if peak else 'none'}", "-f", "null", "-"]
    result = subprocess.run(args, input=data, capture_output=True, check=False)
    log = result.stderr.decode("utf-8", errors="replace")
    if result.returncode != 0:
        raise PipelineError(f"ffmpeg could not measure {what}: {log[-300:]}")
    return _parse_meter(log, what, peak)


def require_ffmpeg() -> str:
    """Path of ffmpeg, or a clear error saying how to install it."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise PipelineError(
            "ffmpeg is not installed",
            hint="apt-get install ffmpeg ('make episode' does this)",
        )
    return ffmpeg


def _parse_meter(log: str, what: str, with_peak: bool = True) -> Measurement:
    """What ebur128 logged: its summary, and its loudness every 100 ms."""
    summary = log.rsplit("Summary:", 1)[-1]
    loudness = re.search(r"I:\s+(-?[\d.]+|-inf) LUFS", summary)
    peak = re.search(r"True peak:\s+Peak:\s+(-?[\d.]+|-inf) dBFS", summary)
    if loudness is None or (with_peak and peak is None):
        raise PipelineError(f"ffmpeg could not measure {what}: {log[-300:]}")
    frames = _FRAME.findall(log)
    return Measurement(
        float(loudness.group(1)),
        float(peak.group(1)) if peak else float("nan"),
        times=tuple(float(t) for t, _, _ in frames),
        momentary=tuple(float(m) for _, m, _ in frames),
        short_term=tuple(float(s) for _, _, s in frames),
    )


def integrated(momentary: Sequence[float]) -> float:
    """Integrated loudness (LUFS) of 400 ms blocks of the given momentary loudness, by the
    BS.1770-4 gates: absolute at -70 LUFS, then relative 10 LU under what passed."""
    blocks = np.asarray(momentary, dtype=np.float64)
    blocks = blocks[blocks > ABSOLUTE_GATE]
    if not len(blocks):
        return float("-inf")
    power = 10 ** (blocks / 10)  # the -0.691 dB of the loudness formula cancels out
    gate = 10 * np.log10(power.mean()) + RELATIVE_GATE
    return float(10 * np.log10(power[blocks > gate].mean()))


def short_term(momentary: Sequence[float]) -> tuple[float, ...]:
    """Loudness over the last 3 s at each 100 ms tick, as the power mean of the momentary
    blocks that end in it (the meter's own 3 s value, to within a fraction of a LU)."""
    power = 10 ** (np.asarray(momentary, dtype=np.float64) / 10)
    window = np.convolve(power, np.ones(SHORT_TERM_TICKS), mode="full")[: len(power)]
    counts = np.minimum(np.arange(1, len(power) + 1), SHORT_TERM_TICKS)
    with np.errstate(divide="ignore"):
        return tuple(np.round(10 * np.log10(window / counts), 2).tolist())


def loudness_range(short: Sequence[float]) -> float:
    """Loudness range (LU) by EBU Tech 3342: of the short-term values above -70 LUFS and
    above 20 LU under their power mean, the spread from the 10th to the 95th percentile."""
    values = np.asarray(short, dtype=np.float64)
    values = values[values > ABSOLUTE_GATE]
    if not len(values):
        return 0.0
    gate = 10 * np.log10(np.mean(10 ** (values / 10))) + RANGE_GATE
    values = values[values > gate]
    low, high = np.percentile(values, [10, 95])
    return round(float(high - low), 2)
