"""The delivery format every stage works to, in one place: the sample rate, the MP3 frame
grid and bitrate, and the loudness levels. The mixer, the encoder, the composer and the
mastering read these from here, so no stage imports another for a number."""

from __future__ import annotations

SAMPLE_RATE = 44_100
"""The podcast delivery rate: every turn and piece of music is resampled to it."""

FRAME = 1152
"""Samples in an MPEG-1 Layer III frame: chapters start and segments are cut on this grid."""

BITRATE = "96k"
"""Mono constant bitrate, the common spoken-word delivery spec."""

SPEECH_LUFS = -20.0
"""Every turn's level before mastering; composed music and reference clips are levelled to it."""

MASTER_LUFS = -19.0
"""The delivered file's integrated loudness (mono: it plays at -16 on two speakers)."""
