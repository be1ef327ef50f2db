"""Stage 5, master: the mix to podcast loudness, peaks held under the true-peak ceiling.

The chain runs inside ffmpeg while the MP3 is encoded: a gain to the loudness target, then
ffmpeg's ``alimiter`` at four times the sample rate (so it sees the peaks between samples),
then back to 44.1 kHz. The result is measured on the encoded MP3 itself with ffmpeg's
``ebur128`` filter, each segment's frames decoded as they were encoded
(``pipeline/segments.py``): the highest true peak, and the integrated loudness gated from all
the segments' 400 ms blocks together (``pipeline/loudness.py``). If the limiter ate
loudness or the encoder pushed a peak over the ceiling, the gain and limit are corrected
and the MP3 is encoded again, up to ``passes`` times. A render after an edit starts from
the last render's gain and limit, so it usually needs one pass, and re-encodes only the
segments that changed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from pipeline.delivery import MASTER_LUFS, SPEECH_LUFS
from pipeline.errors import PipelineError
from pipeline.loudness import Measurement

if TYPE_CHECKING:
    from pipeline.segments import Encoded

OVERSAMPLE = 4


@dataclass(frozen=True)
class Spec:
    """The delivery target."""

    loudness_lufs: float = MASTER_LUFS
    """Integrated loudness of the stereo file: -16 LUFS, the level Apple Podcasts and most
    apps expect."""

    tolerance_lu: float = 0.5
    """How far from the target the delivered file may be."""

    true_peak_db: float = -1.0
    """Highest true peak allowed in the delivered file (dBTP)."""

    limit_db: float = -2.0
    """Where the limiter starts: a margin under the ceiling for the encoder's overshoot."""

    aim_lu: float = 0.1
    """Encode again while the loudness is further than this from the target."""

    keep_lu: float = 0.3
    """A render that starts from the last render's gain keeps it while the loudness is
    within this: an edit then re-encodes only what it changed, and the file stays well
    inside ``tolerance_lu``."""

    passes: int = 4
    """At most this many encodes."""


@dataclass(frozen=True)
class MasterReport:
    """What mastering did and what the delivered file measures."""

    measured: Measurement
    """The delivered MP3."""

    gain_db: float
    """Gain before the limiter."""

    limit_db: float
    """Limiter threshold used."""

    passes: int
    """Encodes it took."""

    def to_json(self) -> dict[str, Any]:
        """As a JSON object (the render state keeps it). Shallow: ``dataclasses.asdict``
        deep-copies each of the measurement's thousands of readings (0.15 s an edit)."""
        measured = self.measured
        readings = {f.name: getattr(measured, f.name) for f in dataclasses.fields(measured)}
        return {
            "measured": readings,
            "gain_db": self.gain_db,
            "limit_db": self.limit_db,
            "passes": self.passes,
        }

    @staticmethod
    def from_json(record: Any, passes: int = 0) -> MasterReport:
        """From ``to_json``'s object, as a report of ``passes`` encodes (``ValueError`` if
        it has another shape)."""
        try:
            measured = record["measured"]
            return MasterReport(
                measured=Measurement(
                    float(measured["loudness_lufs"]),
                    float(measured["true_peak_db"]),
                    tuple(map(float, measured["times"])),
                    tuple(map(float, measured["momentary"])),
                    tuple(map(float, measured["short_term"])),
                ),
                gain_db=float(record["gain_db"]),
                limit_db=float(record["limit_db"]),
                passes=passes,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a mastering report: {exc!r}") from None


class Encoder(Protocol):
    """Writes the mix through a filter graph and meters what it wrote
    (``pipeline/segments.py``'s ``SegmentEncoder``)."""

    @property
    def sample_rate(self) -> int:
        """The mix's sample rate."""
        ...

    @property
    def level_db(self) -> float:
        """How much the encoder itself changes the level (LAME: -0.45 dB)."""
        ...

    def encode(self, filters: str) -> Encoded:
        """Write the file through ``filters`` (an ffmpeg filter graph)."""
        ...


def chain(gain_db: float, limit_db: float, rate: int) -> str:
    """The ffmpeg filter graph: gain, oversampled limiter, back to ``rate``."""
    limit = 10 ** (limit_db / 20)
    return ",".join(
        [
            f"volume={gain_db:.3f}dB",
            f"aresample={rate * OVERSAMPLE}:resampler=soxr",
            f"alimiter=limit={limit:.5f}:attack=2:release=80:level=disabled:latency=1",
            f"aresample={rate}:resampler=soxr",
        ]
    )


def first_levels(spec: Spec, previous: MasterReport | None, level_db: float) -> tuple[float, float]:
    """The gain and limit mastering starts from: the last render's (``previous``), or
    the first guess for an encoder whose file is ``level_db`` quieter than its input."""
    if previous is not None:
        return previous.gain_db, previous.limit_db
    # Turns are levelled to measure SPEECH_LUFS as this limiter leaves them, and music
    # sits at that level too: the gain from there to the target, plus what the encoder
    # takes away, is the first guess (usually right to a few hundredths of a LU).
    return spec.loudness_lufs - SPEECH_LUFS - level_db, spec.limit_db


def master(
    encoder: Encoder,
    spec: Spec | None = None,
    previous: MasterReport | None = None,
) -> MasterReport:
    """Encode the mix through the mastering chain until the file meets ``spec``.

    ``previous``, the last render's report, is where the search starts: its gain and
    limit, unchanged, so the segments an edit did not touch are encoded exactly as before.
    """
    spec = spec or Spec()
    rate = encoder.sample_rate
    gain_db, limit_db = first_levels(spec, previous, encoder.level_db)
    done = 0
    tried: tuple[float, float] | None = None  # the last pass's gain and loudness
    while True:
        done += 1
        encoded = encoder.encode(chain(gain_db, limit_db, rate))
        measured = encoded.measurement()
        if not np.isfinite(measured.loudness_lufs):
            raise PipelineError("the mix is silent: nothing to master")
        aim = spec.keep_lu if previous is not None and done == 1 else spec.aim_lu
        loud_ok = abs(measured.loudness_lufs - spec.loudness_lufs) <= aim
        peak_ok = measured.true_peak_db <= spec.true_peak_db
        if (loud_ok and peak_ok) or done == spec.passes:
            break
        # The limiter takes more the harder it is driven, so loudness rises more slowly
        # than gain: a secant step from the last two passes (as in pipeline/level.py).
        slope = 1.0
        if tried is not None and gain_db != tried[0]:
            change = (measured.loudness_lufs - tried[1]) / (gain_db - tried[0])
            slope = float(np.clip(change, 0.3, 1.0))
        tried = (gain_db, measured.loudness_lufs)
        if not peak_ok:
            limit_db -= measured.true_peak_db - spec.true_peak_db + 0.1
        gain_db += (spec.loudness_lufs - measured.loudness_lufs) / slope
    report = MasterReport(measured, gain_db, limit_db, done)
    off_target = abs(measured.loudness_lufs - spec.loudness_lufs) > spec.tolerance_lu
    if off_target or measured.true_peak_db > spec.true_peak_db:
        raise PipelineError(
            f"mastering missed the delivery spec after {done} passes: "
            f"{measured.loudness_lufs:.1f} LUFS, {measured.true_peak_db:.1f} dBTP "
            f"(target {spec.loudness_lufs} LUFS, at most {spec.true_peak_db} dBTP)"
        )
    return report
