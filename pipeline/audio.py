"""Audio as pedalboard has it: a float32 numpy array plus an explicit sample rate. A voice
is mono, shape (n,); the mix is stereo, shape (n, 2)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import soxr


@dataclass(frozen=True)
class Audio:
    """Mono or multichannel audio."""

    samples: np.ndarray
    """float32 samples in [-1, 1], shape (n,) for mono or (n, channels)."""

    sample_rate: int
    """Samples per second."""

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return len(self.samples) / self.sample_rate

    @property
    def length(self) -> int:
        """Length in samples."""
        return len(self.samples)

    def window(self, lo: int, hi: int) -> np.ndarray:
        """Samples ``lo`` to ``hi`` (as a mix gives them, ``pipeline/assemble.py``)."""
        return self.samples[lo:hi]

    def window_key(self, lo: int, hi: int) -> str | None:
        """None: a window of plain samples is known only by its samples."""
        return None

    def resample(self, rate: int) -> Audio:
        """This audio at ``rate``, through libsoxr's high-quality resampler."""
        if rate == self.sample_rate:
            return self
        samples = soxr.resample(self.samples, self.sample_rate, rate, quality="HQ")
        return Audio(np.asarray(samples, dtype=np.float32), rate)

    def trim(self, threshold_db: float = -50.0, margin_s: float = 0.01) -> Audio:
        """Without the engine's leading and trailing silence, so gaps are exactly as planned.

        Silence is anything ``threshold_db`` below the peak; ``margin_s`` of it is kept
        at each end so consonant onsets and decays are not clipped.
        """
        magnitude = np.abs(self.samples)
        peak = float(magnitude.max(initial=0.0))
        if peak == 0.0:
            return Audio(self.samples[:0], self.sample_rate)
        loud = np.flatnonzero(magnitude > peak * 10 ** (threshold_db / 20))
        margin = int(margin_s * self.sample_rate)
        start = max(int(loud[0]) - margin, 0)
        end = min(int(loud[-1]) + 1 + margin, len(self.samples))
        return Audio(self.samples[start:end], self.sample_rate)


def pan_gains(position: float) -> tuple[float, float]:
    """The left and right gains that place a mono sound at ``position`` (-1 left, 0 centre,
    1 right) by the constant-power law: their squares sum to 1, so the loudness (BS.1770
    sums channel powers) is the same wherever a voice sits."""
    angle = (position + 1) * np.pi / 4
    return float(np.cos(angle)), float(np.sin(angle))


def pan(samples: np.ndarray, position: float) -> np.ndarray:
    """Mono ``samples`` placed in stereo at ``position`` (see ``pan_gains``)."""
    return samples[:, None] * np.array(pan_gains(position), dtype=np.float32)
