"""How a voice sounds, measured by independent tools: quality (DNSMOS) and pitch (Praat).

DNSMOS P.835 (Microsoft's Deep Noise Suppression MOS; its ONNX models ship in PyPI's
``speechmos``) predicts the mean opinion score listeners would give a clip, 1 to 5. Its
score moves with the clip's level (the same clip scores about 0.1 lower at -16 LUFS than
at -26), so every clip is brought to ``MEASURE_LUFS`` first, the level ITU-T P.56 uses for
objective speech-quality tests: a raw turn and the same turn in the finished MP3 then differ
only by what the production chain did to it. Pitch is Praat's autocorrelation pitch track
(parselmouth), the median over voiced frames.
"""

from __future__ import annotations

import numpy as np
import pyloudnorm
import soxr

DNSMOS_RATE = 16_000
MEASURE_LUFS = -26.0
# DNSMOS hears 9 s at a time, one window a second: a clip is scored on its first 10 s (two
# windows), which keeps QA to seconds a turn and compares raw and finished alike.
MAX_CLIP_S = 10.0
PITCH_FLOOR_HZ, PITCH_CEILING_HZ = 60.0, 400.0  # covers low male to high female voices


def dnsmos(samples: np.ndarray, rate: int) -> float:
    """DNSMOS overall quality of a speech clip's first ``MAX_CLIP_S``, measured at
    ``MEASURE_LUFS``."""
    from speechmos import dnsmos as model  # loads onnxruntime and librosa: only for QA

    clip = samples[: round(MAX_CLIP_S * rate)]
    clip = np.asarray(soxr.resample(clip, rate, DNSMOS_RATE), dtype=np.float64)
    loudness = pyloudnorm.Meter(DNSMOS_RATE).integrated_loudness(clip)
    if not np.isfinite(loudness):
        raise ValueError("the clip is silent")
    clip = np.clip(clip * 10 ** ((MEASURE_LUFS - loudness) / 20), -1.0, 1.0)
    return float(model.run(clip.astype(np.float32), DNSMOS_RATE)["ovrl_mos"])


def pitches(samples: np.ndarray, rate: int) -> np.ndarray:
    """The pitch of each voiced 10 ms frame, in Hz."""
    import parselmouth

    sound = parselmouth.Sound(samples.astype(np.float64), sampling_frequency=rate)
    track = sound.to_pitch(
        time_step=0.01, pitch_floor=PITCH_FLOOR_HZ, pitch_ceiling=PITCH_CEILING_HZ
    )
    frequency = track.selected_array["frequency"]
    return frequency[frequency > 0]
