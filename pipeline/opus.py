"""The Opus rendition: the same master as the MP3, in Ogg Opus at ``OPUS_BITRATE``, for
apps that take a ``podcast:alternateEnclosure``.

Opus is encoded from the mix (not from the MP3: no second lossy generation) through the
mastering chain, resampled to 48 kHz, Opus's own rate, in the background while the render
writes the other files. Two things differ from the MP3, and both are measured on the
encoded file: LAME scales its input by 0.95 (-0.45 dB), which the MP3's mastering gain
already makes up, so the Opus gets that much less gain to come out as loud; and Opus
overshoots the limiter's peaks more than LAME does (about 1.6 dB at 64 kb/s against 0.7),
so its limiter starts lower, and lower again until the file's true peak meets the spec.
"""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import numpy as np

from pipeline.audio import Audio
from pipeline.delivery import OPUS_BITRATE
from pipeline.errors import PipelineError
from pipeline.loudness import Measurement, measure, require_ffmpeg
from pipeline.master import Spec, chain
from pipeline.mp3 import LAME_SCALE_DB

OPUS_RATE = 48_000
OPUS_MARGIN_DB = 1.0  # Opus's limiter starts this much under the MP3's, for its overshoot
PASSES = 3
OPUS_VERSION = f"1 {OPUS_BITRATE} scale {LAME_SCALE_DB} margin {OPUS_MARGIN_DB} {PASSES}"
OPUS_TYPE = "audio/ogg"
"""What servers send it as (an Ogg file); the feed adds ``codecs="opus"``."""


class OpusEncode:
    """An Opus encode running in ffmpeg while the caller goes on: ``audio`` through
    ``filters`` (the mastering chain) to Ogg Opus at ``path``. ``wait`` for it; ``kill``
    it if the render stops first, so Ctrl-C or SIGTERM never waits for it."""

    def __init__(self, audio: Audio, filters: str, path: Path, bitrate: str = OPUS_BITRATE):
        samples = np.ascontiguousarray(audio.samples, dtype="<f4")
        channels = samples.shape[1] if samples.ndim == 2 else 1
        args = [require_ffmpeg(), "-hide_banner", "-loglevel", "error", "-y", "-f", "f32le"]
        args += ["-ar", str(audio.sample_rate), "-ac", str(channels), "-i", "pipe:0"]
        args += ["-af", filters, "-ar", str(OPUS_RATE), "-c:a", "libopus", "-b:a", bitrate]
        args += ["-application", "audio", "-map_metadata", "-1", "-f", "ogg", str(path)]
        self.process = subprocess.Popen(
            args, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        # As bytes: a memoryview of floats counts items, and a float is four bytes.
        self.data = memoryview(samples).cast("B")
        self.error = b""
        self.thread = threading.Thread(target=self._feed, daemon=True)
        self.thread.start()

    def _feed(self) -> None:
        process = self.process
        assert process.stdin is not None and process.stderr is not None
        try:
            for start in range(0, len(self.data), 1 << 20):
                process.stdin.write(self.data[start : start + (1 << 20)])
            process.stdin.close()
        except (BrokenPipeError, ValueError, OSError):
            pass  # ffmpeg stopped: its error says why
        self.error = process.stderr.read()

    def wait(self) -> None:
        """Wait for the file; an error if ffmpeg failed."""
        self.thread.join()
        if self.process.wait() != 0:
            detail = self.error.decode("utf-8", errors="replace").strip()[-300:]
            raise PipelineError(f"ffmpeg could not write the Opus rendition: {detail}")

    def kill(self) -> None:
        """Stop it now (the render is stopping)."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


class OpusRendition:
    """The Opus rendition of a mix mastered at ``gain_db`` and ``limit_db`` (the MP3's
    ``MasterReport``), made in the background at ``path`` to ``spec``: ``result`` waits for
    it and gives its measurement; ``kill`` stops it."""

    def __init__(
        self, audio: Audio, gain_db: float, limit_db: float, path: Path, spec: Spec
    ) -> None:
        self.audio, self.path, self.spec = audio, path, spec
        self.gain_db = gain_db + LAME_SCALE_DB
        self.limit_db = limit_db - OPUS_MARGIN_DB
        self.encode: OpusEncode | None = None
        self.stopped = False
        self.outcome: Measurement | PipelineError | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            for _ in range(PASSES):
                rate = self.audio.sample_rate
                self.encode = OpusEncode(
                    self.audio, chain(self.gain_db, self.limit_db, rate), self.path
                )
                self.encode.wait()
                if self.stopped:
                    return
                measured = measure(self.path)
                over = measured.true_peak_db - self.spec.true_peak_db
                if over <= 0:
                    self.outcome = self._checked(measured)
                    return
                self.limit_db -= over + 0.2
            self.outcome = PipelineError(
                f"the Opus rendition's true peak stayed over {self.spec.true_peak_db} dBTP "
                f"after {PASSES} encodes ({measured.true_peak_db:.1f} dBTP)"
            )
        except PipelineError as exc:
            self.outcome = exc

    def _checked(self, measured: Measurement) -> Measurement | PipelineError:
        off = abs(measured.loudness_lufs - self.spec.loudness_lufs)
        if off <= self.spec.tolerance_lu:
            return measured
        return PipelineError(
            f"the Opus rendition measures {measured.loudness_lufs:.1f} LUFS, not "
            f"{self.spec.loudness_lufs} LUFS"
        )

    def result(self) -> Measurement:
        """Wait for the file; its loudness and true peak, or an error."""
        self.thread.join()
        if isinstance(self.outcome, Measurement):
            return self.outcome
        raise self.outcome or PipelineError("the Opus rendition was stopped")

    def kill(self) -> None:
        """Stop it now (the render is stopping)."""
        self.stopped = True
        if self.encode is not None:
            self.encode.kill()
