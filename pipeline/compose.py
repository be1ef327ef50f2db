"""The show's music, composed in code: intro, outro and a chapter sting for "Life is Artificial".

Each piece is written as General MIDI with mido, rendered with FluidSynth and the
FluidR3 GM soundfont (Debian's fluid-soundfont-gm, MIT), trimmed, levelled to the speech
level the mixer expects, and saved as a small stereo Ogg Vorbis file beside its MIDI file in
``assets/music/``, with ``music.yaml`` describing each one. The rendered files are
committed, so rendering an episode needs no synthesizer; ``make music`` runs this again.

The theme: A minor, 96 beats a minute, the progression Am - F - C - G under a rising
arpeggio, a warm pad and a synth bass; a light kit keeps time. The instruments are placed
a little apart in stereo (the pad left, the arpeggio and the bell right, bass and kit in
the middle), as a small band on a stage.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import mido
import numpy as np
import pyloudnorm
import soundfile
import yaml

from pipeline.delivery import SAMPLE_RATE, SPEECH_LUFS
from pipeline.errors import PipelineError

SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
TEMPO_BPM = 96
TICKS = 480  # per beat
BEAT_S = 60 / TEMPO_BPM
BAR_S = 4 * BEAT_S
LICENSE = (
    "Composed by this project's code (pipeline/compose.py), GPL-3.0-or-later; rendered with "
    "the FluidR3 GM soundfont (fluid-soundfont-gm, MIT)."
)

# General MIDI programs (0-based) and drum keys.
PAD, ARP, BASS, BELL = 89, 4, 38, 11  # warm pad, electric piano, synth bass, vibraphone
KICK, SNARE, HAT, CRASH = 36, 38, 42, 49
DRUMS = 9  # MIDI channel 10

# A minor: Am - F - C - G, as (root for the bass, chord tones for pad and arpeggio).
PROGRESSION = [
    (45, (57, 60, 64)),  # A2 | A3 C4 E4
    (41, (57, 60, 65)),  # F2 | A3 C4 F4
    (48, (55, 60, 64)),  # C3 | G3 C4 E4
    (43, (55, 59, 62)),  # G2 | G3 B3 D4
]


@dataclass
class Part:
    """One instrument's notes: (start beat, length in beats, pitch, velocity)."""

    program: int
    """General MIDI program (ignored on the drum channel)."""

    channel: int
    """MIDI channel."""

    pan: int = 64
    """Stereo position, MIDI controller 10: 0 left, 64 centre, 127 right."""

    notes: list[tuple[float, float, int, int]] = field(default_factory=list)
    """The notes."""


@dataclass(frozen=True)
class Piece:
    """A composed piece and how the mixer uses it."""

    name: str
    """Asset name, as a script's ``[music: NAME]`` cue says it."""

    parts: list[Part]
    """The score."""

    lead: float
    """Seconds the music plays alone before a voice may come in."""

    description: str
    """What it is, for people."""


def _chords(part: Part, bars: range, velocity: int) -> None:
    for bar in bars:
        _, tones = PROGRESSION[bar % 4]
        for pitch in tones:
            part.notes.append((bar * 4, 4, pitch, velocity))


def _arpeggio(part: Part, bars: range, velocity: int) -> None:
    pattern = (0, 1, 2, 1, 2, 0, 1, 2)  # chord tones, eighth notes, an octave up
    for bar in bars:
        _, tones = PROGRESSION[bar % 4]
        for step, index in enumerate(pattern):
            accent = 12 if step % 4 == 0 else 0
            part.notes.append((bar * 4 + step / 2, 0.5, tones[index] + 12, velocity + accent))


def _bass(part: Part, bars: range, velocity: int) -> None:
    for bar in bars:
        root, _ = PROGRESSION[bar % 4]
        for beat, length in ((0, 1.5), (1.5, 0.5), (2, 1.5), (3.5, 0.5)):
            part.notes.append((bar * 4 + beat, length, root, velocity))


def _kit(part: Part, bars: range, velocity: int) -> None:
    for bar in bars:
        start = bar * 4
        part.notes += [(start, 0.5, KICK, velocity), (start + 2, 0.5, KICK, velocity)]
        part.notes += [
            (start + 1, 0.5, SNARE, velocity - 25),
            (start + 3, 0.5, SNARE, velocity - 25),
        ]
        part.notes += [(start + i / 2, 0.25, HAT, velocity - 40) for i in range(8)]


def _ending(parts: dict[str, Part], bar: int, beats: float = 4) -> None:
    """A held A minor chord to close, with a crash."""
    for pitch in (45, 57, 60, 64, 69):
        parts["pad"].notes.append((bar * 4, beats, pitch, 80))
    parts["bell"].notes.append((bar * 4, beats, 76, 90))
    parts["drums"].notes.append((bar * 4, 1, CRASH, 70))


def _new_parts() -> dict[str, Part]:
    return {
        "pad": Part(PAD, 0, pan=40),
        "arp": Part(ARP, 1, pan=88),
        "bass": Part(BASS, 2),
        "bell": Part(BELL, 3, pan=84),
        "drums": Part(0, DRUMS),
    }


def intro() -> Piece:
    """Two bars alone, then four under the voice, then a held chord."""
    parts = _new_parts()
    _chords(parts["pad"], range(6), 70)
    _arpeggio(parts["arp"], range(6), 70)
    _bass(parts["bass"], range(1, 6), 80)
    _kit(parts["drums"], range(1, 6), 90)
    melody = [(0, 76), (1, 72), (2, 69), (3, 71), (4, 72), (6, 71), (7, 67)]
    parts["bell"].notes += [(beat, 1, pitch, 85) for beat, pitch in melody]
    _ending(parts, 6)
    return Piece("intro", list(parts.values()), lead=2 * BAR_S, description="Opening theme")


def outro() -> Piece:
    """The theme again, building for four bars and closing on a long chord."""
    parts = _new_parts()
    _chords(parts["pad"], range(4), 75)
    _arpeggio(parts["arp"], range(4), 75)
    _bass(parts["bass"], range(4), 85)
    _kit(parts["drums"], range(1, 4), 95)
    melody = [(8, 76), (9, 74), (10, 72), (11, 71), (12, 72), (13, 71), (14, 67), (15, 69)]
    parts["bell"].notes += [(beat, 1, pitch, 90) for beat, pitch in melody]
    _ending(parts, 4, beats=6)
    return Piece("outro", list(parts.values()), lead=BAR_S, description="Closing theme")


def sting() -> Piece:
    """A rising arpeggio and a chord hit: a chapter change in about three seconds."""
    parts = _new_parts()
    rise = (57, 60, 64, 69, 72, 76)
    parts["arp"].notes += [(i / 3, 0.5, pitch, 80 + 4 * i) for i, pitch in enumerate(rise)]
    for pitch in (45, 57, 64, 69, 72):
        parts["pad"].notes.append((2, 2, pitch, 80))
    parts["bell"].notes.append((2, 2, 81, 90))
    parts["drums"].notes += [(2, 1, CRASH, 60), (2, 0.5, KICK, 90)]
    return Piece("sting", list(parts.values()), lead=2.5 * BEAT_S, description="Chapter sting")


PIECES = (intro, outro, sting)


def to_midi(piece: Piece) -> mido.MidiFile:
    """The piece as a type-1 standard MIDI file."""
    midi = mido.MidiFile(type=1, ticks_per_beat=TICKS)
    conductor = mido.MidiTrack(
        [
            mido.MetaMessage("track_name", name=f"Life is Artificial - {piece.name}", time=0),
            mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(TEMPO_BPM), time=0),
            mido.MetaMessage("time_signature", numerator=4, denominator=4, time=0),
        ]
    )
    midi.tracks.append(conductor)
    for part in piece.parts:
        events: list[tuple[int, int, mido.Message]] = []
        for start, length, pitch, velocity in part.notes:
            on, off = round(start * TICKS), round((start + length) * TICKS)
            vel = max(1, min(127, velocity))
            events.append(
                (on, 1, mido.Message("note_on", note=pitch, velocity=vel, channel=part.channel))
            )
            events.append(
                (off, 0, mido.Message("note_off", note=pitch, velocity=0, channel=part.channel))
            )
        events.sort(key=lambda event: (event[0], event[1]))  # note-offs first at a tick
        track = mido.MidiTrack()
        if part.channel != DRUMS:
            track.append(
                mido.Message("program_change", program=part.program, channel=part.channel, time=0)
            )
        track.append(
            mido.Message("control_change", control=10, value=part.pan, channel=part.channel)
        )
        now = 0
        for tick, _, message in events:
            track.append(message.copy(time=tick - now))
            now = tick
        midi.tracks.append(track)
    return midi


def render(midi_path: Path, wav_path: Path, soundfont: Path = SOUNDFONT) -> None:
    """Render a MIDI file with FluidSynth (no audio device, no shell)."""
    fluidsynth = shutil.which("fluidsynth")
    if fluidsynth is None or not soundfont.is_file():
        raise PipelineError(
            "FluidSynth and the GM soundfont are needed to render music",
            hint="apt-get install fluidsynth fluid-soundfont-gm ('make music' does this)",
        )
    args = [
        fluidsynth,
        "-ni",
        "-q",
        "-g",
        "0.6",
        "-r",
        str(SAMPLE_RATE),
        "-F",
        str(wav_path),
        str(soundfont),
        str(midi_path),
    ]
    result = subprocess.run(args, capture_output=True, text=True, timeout=300, check=False)
    if result.returncode != 0 or not wav_path.is_file():
        raise PipelineError(f"fluidsynth failed: {result.stderr.strip() or result.returncode}")


def finish(samples: np.ndarray, rate: int) -> np.ndarray:
    """Stereo (n, 2), trimmed of silence, faded at the very end, at the mixer's reference
    loudness (measured over both channels, as the master is)."""
    stereo = samples if samples.ndim == 2 else np.stack([samples, samples], axis=1)
    peak = np.abs(stereo).max(axis=1)
    loud = np.flatnonzero(peak > 10 ** (-60 / 20))
    start, end = (int(loud[0]), int(loud[-1]) + 1) if len(loud) else (0, len(stereo))
    stereo = stereo[start:end].copy()
    fade = min(len(stereo), int(0.3 * rate))
    stereo[len(stereo) - fade :] *= np.linspace(1.0, 0.0, fade)[:, None]
    loudness = pyloudnorm.Meter(rate).integrated_loudness(stereo)
    return (stereo * 10 ** ((SPEECH_LUFS - loudness) / 20)).astype(np.float32)


def compose_all(out_dir: Path) -> dict[str, dict]:
    """Compose, render and save every piece into ``out_dir``; return the catalogue."""
    out_dir.mkdir(parents=True, exist_ok=True)
    catalogue: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="compose-") as tmp:
        for make in PIECES:
            piece = make()
            midi_path = out_dir / f"{piece.name}.mid"
            to_midi(piece).save(midi_path)
            wav = Path(tmp) / f"{piece.name}.wav"
            render(midi_path, wav)
            samples, rate = soundfile.read(wav, dtype="float64")
            audio = finish(samples, rate)
            soundfile.write(
                out_dir / f"{piece.name}.ogg", audio, rate, format="OGG", subtype="VORBIS"
            )
            catalogue[piece.name] = {
                "file": f"{piece.name}.ogg",
                "lead": round(piece.lead, 3),
                "description": piece.description,
            }
    document = {"license": LICENSE, "pieces": catalogue}
    header = "# Written by `make music` (pipeline/compose.py). Do not edit by hand.\n"
    (out_dir / "music.yaml").write_text(
        header + yaml.safe_dump(document, sort_keys=False), encoding="utf-8"
    )
    return catalogue


def main(argv: list[str] | None = None) -> int:
    """``python -m pipeline.compose [OUT_DIR]``."""
    parser = argparse.ArgumentParser(prog="python -m pipeline.compose", description=__doc__)
    parser.add_argument("out_dir", nargs="?", type=Path, default=Path("assets/music"))
    args = parser.parse_args(argv)
    try:
        for name, entry in compose_all(args.out_dir).items():
            print(f"{args.out_dir / entry['file']}: {name}, voice may enter at {entry['lead']} s")
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
