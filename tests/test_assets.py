"""The show's own assets: music composed in code and rendered by FluidSynth, the cover art."""

from __future__ import annotations

import mido
import numpy as np
import pyloudnorm
import pytest
import soundfile
import yaml
from conftest import REPO
from PIL import Image

from pipeline.compose import BAR_S, TEMPO_BPM, compose_all, intro, sting, to_midi
from pipeline.cover import SIZE, draw_cover
from pipeline.delivery import SPEECH_LUFS
from pipeline.music import MusicLibrary


@pytest.fixture(scope="module")
def composed(tmp_path_factory):
    out = tmp_path_factory.mktemp("music")
    return out, compose_all(out)


def test_make_music_writes_every_piece(composed) -> None:
    out, catalogue = composed
    assert set(catalogue) == {"intro", "outro", "sting"}
    library = MusicLibrary.load(out / "music.yaml")
    for name, piece in library.pieces.items():
        assert (out / f"{name}.mid").is_file()
        samples = piece.audio.samples.astype(np.float64)
        assert piece.audio.sample_rate == 44_100
        # Levelled to the speech reference the mixer expects, and never clipping.
        loudness = pyloudnorm.Meter(44_100).integrated_loudness(samples)
        assert loudness == pytest.approx(SPEECH_LUFS, abs=0.5)
        assert float(np.abs(samples).max()) < 1.0
    assert library.pieces["intro"].lead == pytest.approx(2 * BAR_S)
    assert 12 < library.pieces["intro"].audio.duration < 25
    assert 2 < library.pieces["sting"].audio.duration < 6
    info = soundfile.info(out / "intro.ogg")
    assert (info.format, info.subtype, info.channels) == ("OGG", "VORBIS", 2)
    # Stereo, not two copies of one channel: the pad sits left, the arpeggio right.
    intro = library.pieces["intro"].audio.samples
    assert intro.shape[1] == 2 and np.corrcoef(intro[:, 0], intro[:, 1])[0, 1] < 0.9


def test_committed_music_matches_the_composition(composed) -> None:
    """The committed assets are what `make music` makes: same MIDI, same catalogue."""
    out, _ = composed
    committed = REPO / "assets" / "music"
    for name in ("intro", "outro", "sting"):
        assert (committed / f"{name}.mid").read_bytes() == (out / f"{name}.mid").read_bytes()
    assert yaml.safe_load((committed / "music.yaml").read_text(encoding="utf-8")) == yaml.safe_load(
        (out / "music.yaml").read_text(encoding="utf-8")
    )


def test_midi_is_a_real_general_midi_score() -> None:
    midi = to_midi(intro())
    assert midi.type == 1 and len(midi.tracks) == 6  # conductor + five parts
    tempos = [m.tempo for m in midi.tracks[0] if m.type == "set_tempo"]
    assert tempos == [mido.bpm2tempo(TEMPO_BPM)]
    programs = {m.channel: m.program for t in midi.tracks for m in t if m.type == "program_change"}
    assert programs == {0: 89, 1: 4, 2: 38, 3: 11}
    drums = [m for m in midi.tracks[5] if m.type == "note_on"]
    assert drums and all(m.channel == 9 for m in drums)
    assert midi.length == pytest.approx(7 * BAR_S, abs=0.01)  # six bars and the held chord
    assert to_midi(sting()).length < 3 * 60 / TEMPO_BPM * 4


def test_cover_is_a_3000_pixel_rgb_square() -> None:
    with Image.open(REPO / "assets" / "cover.jpg") as image:
        assert image.format == "JPEG" and image.mode == "RGB"
        assert image.size == (SIZE, SIZE) == (3000, 3000)
    assert draw_cover().tobytes() == draw_cover().tobytes()  # drawn the same every time
