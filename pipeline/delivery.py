"""The delivery format every stage works to, in one place: the sample rate, channels, the
MP3 frame grid and bitrate, and the loudness levels. The mixer, the encoder, the composer
and the mastering read these from here, so no stage imports another for a number."""

from __future__ import annotations

SAMPLE_RATE = 44_100
"""The podcast delivery rate: every turn and piece of music is resampled to it."""

CHANNELS = 2
"""Stereo: the hosts sit a little apart and the music keeps its width. Speech is placed
with a constant-power pan law, so a voice measures the same loudness wherever it sits."""

FRAME = 1152
"""Samples in an MPEG-1 Layer III frame: chapters start and segments are cut on this grid."""

BITRATE = "128k"
"""Joint-stereo constant bitrate: transparent for speech and music at 44.1 kHz, where
96 kb/s is the usual mono rate (the hosts are mostly centred, which joint stereo codes
cheaply as one mid channel)."""

OPUS_BITRATE = "64k"
"""The Opus rendition's stereo bitrate: Opus at 64 kb/s matches the MP3 at half the size."""

SPEECH_LUFS = -20.0
"""Every turn's level before mastering; composed music and reference clips are levelled to it."""

MASTER_LUFS = -16.0
"""The delivered file's integrated loudness, measured on both channels as ffmpeg's ebur128
does: the level Apple Podcasts and most apps expect of a stereo episode."""
