"""Levelling a turn: to the speech level, peaks held by a compressor and a limiter.

Done to each turn as it is synthesized (``pipeline/synthesize.py``), so the work is
shared between cores and the levelled turn is what the cache keeps.
"""

from __future__ import annotations

import numpy as np
import pedalboard
import pyloudnorm

SPEECH_LUFS = -20.0  # every turn's level before mastering; composed music is levelled to it
MIN_MEASURE_S = 0.5  # BS.1770 gating needs at least one 400 ms block; allow some margin
MAX_TURN_GAIN_DB = 20.0
PEAK_HEADROOM_DB = 13.0  # speech peaks above its loudness: -16 LUFS at -2 dBFS leaves 14
LEVEL_PASSES = 6
# Part of every cached turn's key (turns are cached levelled): a change of levels is a miss.
LEVEL_VERSION = f"level {SPEECH_LUFS:g} {PEAK_HEADROOM_DB:g} v1"


def level_gain(samples: np.ndarray, rate: int) -> float | None:
    """Search the gain at which the levelled turn measures ``SPEECH_LUFS`` (None: too short).

    The compressor and limiter take more loudness the harder they work, so the loudness
    out rises more slowly than the gain in: secant steps find the gain in a few tries.
    """
    if len(samples) < MIN_MEASURE_S * rate:
        return None
    meter = pyloudnorm.Meter(rate)

    def loudness(gain: float) -> float:
        return meter.integrated_loudness(leveled(samples, gain, rate).astype(np.float64))

    raw = meter.integrated_loudness(samples.astype(np.float64))
    if not np.isfinite(raw):
        return None
    gain, out = SPEECH_LUFS - raw, None
    previous: tuple[float, float] | None = None
    for _ in range(LEVEL_PASSES):
        out = loudness(gain)
        if abs(SPEECH_LUFS - out) < 0.05:
            break
        slope = 1.0
        if previous is not None and gain != previous[0]:
            slope = float(np.clip((out - previous[1]) / (gain - previous[0]), 0.1, 1.0))
        previous = (gain, out)
        gain = float(
            np.clip(gain + (SPEECH_LUFS - out) / slope, -MAX_TURN_GAIN_DB, MAX_TURN_GAIN_DB)
        )
    return gain


def leveled(samples: np.ndarray, gain_db: float, rate: int) -> np.ndarray:
    """A turn gained by ``gain_db``, then compressed gently, its peaks held by a brick-wall
    limiter ``PEAK_HEADROOM_DB`` above the speech level."""
    chain = pedalboard.Pedalboard(
        [
            pedalboard.Gain(gain_db),
            pedalboard.Compressor(
                threshold_db=SPEECH_LUFS + 4.0, ratio=3.0, attack_ms=3.0, release_ms=80.0
            ),
            pedalboard.BrickwallLimiter(ceiling_db=SPEECH_LUFS + PEAK_HEADROOM_DB, release_ms=40.0),
        ]
    )
    return chain(samples, rate)
