"""Reference clips for voice cloning (Coqui XTTS), made from each default host's offline voice.

``make references`` speaks a short, phonetically varied paragraph with every host's voice
and writes ``voices/<host>-reference.wav``. They let a cloned voice sound like the default
host out of the box; a producer replaces them with recordings of the real host.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pyloudnorm
import soundfile

from pipeline.delivery import SAMPLE_RATE, SPEECH_LUFS
from pipeline.engines import load_engine
from pipeline.errors import PipelineError
from pipeline.files import atomic_output
from pipeline.script import parse_script
from pipeline.speech import sentences
from pipeline.synthesize import joined
from pipeline.timing import Timing
from pipeline.voices import host_voices

# Every English vowel and most consonant clusters, in natural sentences, about 12 seconds.
PARAGRAPH = (
    "Welcome back to the show. Today we are looking at a very large computer chip, and at "
    "the people who build it. The quick brown fox jumps over the lazy dog, while six thick "
    "thistle sticks sit by the shore. Would you rather hear about memory, or about money?"
)


def make_reference(voice_path: Path, out: Path) -> float:
    """Speak ``PARAGRAPH`` with a voice into a mono 16-bit WAV; return its length."""
    from pipeline.voices import Voice

    engine = load_engine(Voice.load(voice_path))
    audio, _ = joined(engine, sentences(PARAGRAPH), SAMPLE_RATE, Timing())
    samples = audio.samples.astype(np.float64)
    gain = SPEECH_LUFS - pyloudnorm.Meter(audio.sample_rate).integrated_loudness(samples)
    samples = np.clip(samples * 10 ** (gain / 20), -1.0, 1.0)
    with atomic_output(out) as tmp:
        soundfile.write(tmp, samples, audio.sample_rate, subtype="PCM_16", format="WAV")
    return audio.duration


def main(argv: list[str] | None = None) -> int:
    """``python -m pipeline.reference SCRIPT [OUT_DIR]``."""
    parser = argparse.ArgumentParser(prog="python -m pipeline.reference", description=__doc__)
    parser.add_argument("script", type=Path)
    parser.add_argument("out_dir", nargs="?", type=Path, default=Path("voices"))
    args = parser.parse_args(argv)
    try:
        script = parse_script(args.script)
        for speaker, voice in host_voices(script).items():
            name = script.meta.hosts[speaker].name.lower()
            out = args.out_dir / f"{name}-reference.wav"
            seconds = make_reference(voice.path, out)
            print(f"wrote {out} ({seconds:.1f} s, {voice.engine})")
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
