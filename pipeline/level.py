"""Levelling a turn: to the speech level, by gain alone, as the master limiter will hear it.

Each turn's gain is measured as it is synthesized (``pipeline/synthesize.py``), so the
work is shared between cores and the cache keeps it beside the turn's audio; the mix
applies it, once (``pipeline/assemble.py``), and takes a host's median gain for a turn
too short to measure (``gains``). One gain brings the turn to ``SPEECH_LUFS`` (ITU-R
BS.1770, pyloudnorm): no filter, since even an inaudible 30 Hz high-pass cost some of
Piper's turns 0.08 of DNSMOS quality.

The gain is searched through a model of the master limiter, which holds peaks
``MASTER_HEADROOM_DB`` above the speech level: a peaky voice (Piper's peaks stand about
22 dB over its loudness, hibari's about 18) loses loudness there, so it is given that much
more here, and the hosts match in the delivered file. The turn itself is only gained:
the peaks are limited once, by the master (``pipeline/master.py``). Measured by DNSMOS
with every clip at the same loudness, a fast compressor (ratio 3, 3 ms attack) and a
per-turn limiter 13 dB over the speech level cost Piper's peakiest turns 0.1 to 0.3 of
quality; the master limiter alone costs them less than 0.05.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

import numpy as np
import pedalboard
import soxr

from pipeline.audio import pan_gains
from pipeline.delivery import SPEECH_LUFS

# Turns are measured at half the delivery rate: the engines make nothing above 11-12 kHz
# (22.05 and 24 kHz models) that moves loudness, and it halves the cost of the search,
# which was a third of the synthesis stage's time.
LEVEL_RATE = 22_050
MIN_MEASURE_S = 0.5  # BS.1770 gating needs at least one 400 ms block; allow some margin
MAX_TURN_GAIN_DB = 20.0
# Where the master limiter starts, over a mono turn's speech level: Spec.limit_db -
# Spec.loudness_lufs, plus the 3 dB a centred voice loses in each stereo channel (-2 dBFS
# in a stereo file at -16 LUFS; a test holds the two together).
MASTER_HEADROOM_DB = 17.0
LEVEL_PASSES = 6
# Part of every cached turn's key (its gain is cached with it): a change of levels is a miss.
LEVEL_VERSION = f"level {SPEECH_LUFS:g} master {MASTER_HEADROOM_DB:g} at {LEVEL_RATE} v4"


def headroom_db(pan: float) -> float:
    """How far over the speech level the master limiter starts for a mono turn placed at
    ``pan``: a voice off centre is louder in one channel (``pipeline/audio.py``'s pan law)
    than the centred voice ``MASTER_HEADROOM_DB`` assumes, so it meets the limiter sooner."""
    louder = max(pan_gains(pan)) * np.sqrt(2)  # 1 at the centre
    return round(MASTER_HEADROOM_DB - 20 * float(np.log10(louder)), 3)


def level_gain(
    samples: np.ndarray, rate: int, headroom: float = MASTER_HEADROOM_DB
) -> float | None:
    """The gain at which the turn, after the master limiter's model (starting ``headroom``
    dB over the speech level, see ``headroom_db``), measures ``SPEECH_LUFS`` (None: too
    short or silent to measure).

    The limiter takes more loudness the harder it works, so the loudness out rises more
    slowly than the gain in: secant steps find the gain in a few tries.
    """
    if len(samples) < MIN_MEASURE_S * rate:
        return None
    import pyloudnorm  # here: it brings scipy.signal (1.4 s), and most renders measure nothing

    if rate > LEVEL_RATE:
        samples = np.asarray(soxr.resample(samples, rate, LEVEL_RATE, quality="HQ"), np.float32)
        rate = LEVEL_RATE
    meter = pyloudnorm.Meter(rate)
    limiter = pedalboard.Pedalboard(
        [
            pedalboard.BrickwallLimiter(
                ceiling_db=SPEECH_LUFS + headroom,
                release_ms=80.0,
                lookahead_ms=2.0,
                true_peak=True,
            )
        ]
    )

    def heard(gain: float) -> float:
        gained = leveled(samples, gain, rate)
        return meter.integrated_loudness(limiter(gained, rate).astype(np.float64))

    raw = meter.integrated_loudness(samples.astype(np.float64))
    if not np.isfinite(raw):
        return None
    gain = SPEECH_LUFS - raw
    previous: tuple[float, float] | None = None
    for _ in range(LEVEL_PASSES):
        out = heard(gain)
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
    """A turn gained by ``gain_db``."""
    return pedalboard.Gain(gain_db)(samples, rate)


def gains(turns: Sequence[tuple[str, np.ndarray, float | None]], rate: int) -> list[float]:
    """The levelling gain of each ``(speaker, samples, gain measured when spoken)`` turn:
    that gain, else measured now; a turn too short to measure takes its host's median."""
    measured = [
        gain if gain is not None else level_gain(samples, rate) for _, samples, gain in turns
    ]
    by_host: dict[str, list[float]] = {}
    for (speaker, _, _), gain in zip(turns, measured, strict=True):
        if gain is not None:
            by_host.setdefault(speaker, []).append(gain)
    median = {host: statistics.median(values) for host, values in by_host.items()}
    return [
        gain if gain is not None else median.get(speaker, 0.0)
        for (speaker, _, _), gain in zip(turns, measured, strict=True)
    ]
