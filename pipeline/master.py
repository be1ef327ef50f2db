"""Stage 5, master: even levels between turns and hosts, then the episode to target loudness.

Each turn is brought to the same integrated loudness (ITU-R BS.1770 via pyloudnorm), so
hosts on engines with different raw levels sound matched; then the whole episode is
gained to ``target_lufs``, never letting the sample peak exceed ``ceiling_db``.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

import numpy as np
import pyloudnorm

from pipeline.assemble import Mix

MIN_MEASURE_S = 0.5  # BS.1770 gating needs at least one 400 ms block; allow some margin
MAX_TURN_GAIN_DB = 20.0
SPEECH_LUFS = -20.0  # where turns are levelled to before the episode gain


@dataclass(frozen=True)
class MasterReport:
    """What mastering measured and did."""

    loudness_lufs: float
    """Integrated loudness of the mastered episode."""

    peak_db: float
    """Sample peak of the mastered episode, dBFS."""

    gain_db: float
    """Gain applied to the whole episode after levelling turns."""

    peak_limited: bool
    """True if the ceiling, not the loudness target, set the gain."""


def master(mix: Mix, *, target_lufs: float = -16.0, ceiling_db: float = -1.0) -> MasterReport:
    """Level every turn and normalise the episode, in place."""
    meter = pyloudnorm.Meter(mix.audio.sample_rate)
    level_turns(mix, meter)
    samples = mix.audio.samples
    loudness = _loudness(meter, samples)
    gain_db = target_lufs - loudness if np.isfinite(loudness) else 0.0
    peak = float(np.abs(samples).max(initial=0.0))
    ceiling_gain_db = ceiling_db - _db(peak) if peak > 0 else gain_db
    peak_limited = ceiling_gain_db < gain_db
    gain_db = min(gain_db, ceiling_gain_db)
    samples *= np.float32(10 ** (gain_db / 20))
    return MasterReport(
        loudness_lufs=_loudness(meter, samples),
        peak_db=_db(float(np.abs(samples).max(initial=0.0))),
        gain_db=gain_db,
        peak_limited=peak_limited,
    )


def level_turns(mix: Mix, meter: pyloudnorm.Meter) -> None:
    """Bring each turn to ``SPEECH_LUFS``; turns too short to measure get their host's median."""
    rate = mix.audio.sample_rate
    samples = mix.audio.samples
    gains: dict[int, float] = {}
    for index, placement in enumerate(mix.placements):
        region = samples[placement.start : placement.end]
        if len(region) >= MIN_MEASURE_S * rate:
            loudness = _loudness(meter, region)
            if np.isfinite(loudness):
                gains[index] = float(
                    np.clip(SPEECH_LUFS - loudness, -MAX_TURN_GAIN_DB, MAX_TURN_GAIN_DB)
                )
    by_host: dict[str, list[float]] = {}
    for index, gain in gains.items():
        by_host.setdefault(mix.placements[index].turn.speaker, []).append(gain)
    host_gain = {host: statistics.median(values) for host, values in by_host.items()}
    for index, placement in enumerate(mix.placements):
        gain = gains.get(index, host_gain.get(placement.turn.speaker, 0.0))
        samples[placement.start : placement.end] *= np.float32(10 ** (gain / 20))


def _loudness(meter: pyloudnorm.Meter, samples: np.ndarray) -> float:
    return float(meter.integrated_loudness(samples.astype(np.float64, copy=False)))


def _db(value: float) -> float:
    return 20 * float(np.log10(value)) if value > 0 else float("-inf")
