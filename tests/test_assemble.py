"""The timeline and mastering rules, on synthetic audio (no engines needed)."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pedalboard
import pyloudnorm
import pytest
from conftest import REPO, rms_db

from pipeline.assemble import Timing, assemble
from pipeline.audio import Audio, pan
from pipeline.delivery import FRAME, SPEECH_LUFS
from pipeline.level import MASTER_HEADROOM_DB, headroom_db, level_gain, leveled
from pipeline.master import Spec
from pipeline.music import MusicLibrary
from pipeline.script import parse_script
from pipeline.speech import utterances
from pipeline.synthesize import SpokenTurn

RATE = 44_100
TIMING = Timing(lead_in=0.5, turn_gap=0.25, chapter_gap=1.0, tail=0.75, grid=1, variation=0)


def tone(seconds: float, level: float = 0.1, freq: float = 220.0) -> Audio:
    t = np.arange(round(seconds * RATE)) / RATE
    return Audio((level * np.sin(2 * np.pi * freq * t)).astype(np.float32), RATE)


def build(write_script, body: str, durations: list[float], levels: list[float] | None = None):
    script = parse_script(write_script(body))
    said = utterances(script)
    levels = levels or [0.1] * len(said)
    spoken = [SpokenTurn(u, tone(d, lv)) for u, d, lv in zip(said, durations, levels, strict=True)]
    return script, assemble(script, spoken, TIMING)


def starts(mix) -> list[float]:
    return [round(mix.seconds(p.start), 6) for p in mix.placements]


def test_default_gaps(write_script) -> None:
    body = "## A\nALEX: one\nMAYA: and then a second turn\n## B\nALEX: three\n"
    _, mix = build(write_script, body, [1, 2, 1])
    assert starts(mix) == [0.5, 1.75, 4.75]
    assert mix.audio.duration == pytest.approx(4.75 + 1 + 0.75)


def test_sounds_after_a_gap_start_on_mp3_frames_so_an_edit_moves_the_rest_by_frames(
    write_script,
) -> None:
    """Every turn after a gap starts on the frame grid, so after an edit everything that
    follows has the same samples on frames moved by a whole number of frames, and is not
    encoded again."""
    body = "## A\nALEX: one\nMAYA: two\n## B\nALEX: three\nMAYA: four\n## C\nALEX: five\n"
    timing = dataclasses.replace(TIMING, grid=FRAME)
    script = parse_script(write_script(body))
    said = utterances(script)

    def mix_of(durations: list[float]):
        spoken = [
            SpokenTurn(u, tone(d, 0.1, 200 + 50 * i))
            for i, (u, d) in enumerate(zip(said, durations, strict=True))
        ]
        return assemble(script, spoken, timing)

    before, after = mix_of([1, 1.2, 0.7, 0.9, 1.1]), mix_of([1.37, 1.2, 0.7, 0.9, 1.1])
    for mix in (before, after):
        assert [p.start % FRAME for p in mix.placements] == [0] * 5
        assert [c.start % FRAME for c in mix.chapters[1:]] == [0, 0]
        plain = mix.chapters[1].start - mix.placements[1].end - round(timing.chapter_gap * RATE)
        assert 0 <= plain < FRAME  # the gap grew by less than a frame
    # The first turn grew; every turn after it is the same samples, on the frame grid.
    b0, b1 = before.placements[1].start, after.placements[1].start
    assert b0 != b1
    assert np.array_equal(before.audio.samples[b0:], after.audio.samples[b1:])


def test_quiet_starts_are_turns_after_silence_named_by_what_is_said(write_script) -> None:
    """Where the encoder may cut: turns that nothing sounds before for the given time (not
    an overlapping turn, not one after a short gap), each named by who says what."""
    line = "the same words twice over"
    body = f"## A\nALEX: {line}\n[pause 0.1s]\nMAYA: two\nALEX (overlap): three\nMAYA: {line}\n"
    script = parse_script(write_script(body))
    spoken = [SpokenTurn(u, tone(1.0, 0.1, 300)) for u in utterances(script)]
    mix = assemble(script, spoken, TIMING)
    quiet = mix.quiet_starts(round(0.2 * RATE))
    assert [at for at, _ in quiet] == [mix.placements[0].start, mix.placements[3].start]
    assert quiet[0][1] != quiet[1][1]  # the same words said by another host
    assert [at for at, _ in mix.quiet_starts(round(0.05 * RATE))][:2] == [
        mix.placements[0].start,
        mix.placements[1].start,
    ]


def test_pauses_are_exact_and_add_up(write_script) -> None:
    body = "## A\nALEX: one\n[pause 1.5s]\n[pause 250ms]\nMAYA: two\n## B\n[pause 0.1s]\nALEX: x\n"
    _, mix = build(write_script, body, [1, 1, 1])
    # 1.75 s of written pause replaces the turn gap; 0.1 s replaces the chapter gap.
    assert starts(mix) == [0.5, 3.25, 4.35]


def test_pause_before_the_first_turn_replaces_the_lead_in(write_script) -> None:
    _, mix = build(write_script, "## A\n[pause 2s]\nALEX: one\n", [1])
    assert starts(mix) == [2.0]


def test_pause_after_the_last_turn_replaces_the_tail(write_script) -> None:
    _, mix = build(write_script, "## A\nALEX: one\n[pause 3s]\n", [1])
    assert mix.audio.duration == pytest.approx(0.5 + 1 + 3)


def test_chapter_and_music_marks(write_script) -> None:
    body = (
        "## A\n[music: intro]\nALEX: one\n## B\nMAYA: two\n[music: sting]\n## C\n[music: outro]\n"
    )
    _, mix = build(write_script, body, [1, 1])
    assert [(c.title, round(mix.seconds(c.start), 6)) for c in mix.chapters] == [
        ("A", 0.0),
        ("B", 2.5),
        ("C", 3.8),
    ]
    assert [(m.name, round(mix.seconds(m.at), 6)) for m in mix.music] == [
        ("intro", 0.0),
        ("sting", 3.8),  # a music cue comes a breath (music_gap) after the last words
        ("outro", 3.8),
    ]


def test_turn_audio_is_levelled_and_copied_sample_exact(write_script) -> None:
    _, mix = build(write_script, "## A\nALEX: one\nMAYA: and a second turn\n", [0.5, 0.5])
    for placement in mix.placements:
        region = mix.audio.samples[placement.start : placement.end]
        turn = leveled(tone(0.5).samples, placement.gain_db, RATE)
        assert np.array_equal(region, pan(turn, 0.0))  # centred: each channel at -3 dB
        assert np.allclose(region[:, 0], turn * np.float32(np.sqrt(0.5)), atol=1e-7)
    gap = mix.audio.samples[mix.placements[0].end : mix.placements[1].start]
    assert len(gap) == round(0.25 * RATE) and not gap.any()


def test_turns_are_levelled_to_the_speech_level(write_script) -> None:
    # ALEX comes from the engine 20 dB quieter than MAYA; the mix evens them out.
    body = "## A\nALEX: a\nMAYA: b\nALEX: c\nMAYA: d\nALEX: short\n"
    _, mix = build(write_script, body, [2, 2, 2, 2, 0.2], [0.02, 0.2, 0.02, 0.2, 0.02])
    meter = pyloudnorm.Meter(RATE)
    samples = mix.audio.samples.astype(np.float64)  # stereo: BS.1770 sums the channels
    level = [meter.integrated_loudness(samples[p.start : p.end]) for p in mix.placements[:4]]
    assert level == pytest.approx([SPEECH_LUFS] * 4, abs=0.1)
    # The turn too short to measure gets its host's gain: ALEX's others'.
    short, alex = mix.placements[4], mix.placements[0]
    assert short.gain_db == pytest.approx(alex.gain_db, abs=0.01)


def test_peaky_speech_is_levelled_for_the_master_limiter_and_only_gained(write_script) -> None:
    """Clicks 30 dB over a quiet tone: the turn is only gained (its peaks are the master's
    to limit), by as much more as the master's limiter will take from it. The clicks are
    band-limited as an engine's are (made at 22.05 kHz, like Piper's voices): levelling
    measures at that rate."""
    script = parse_script(write_script("## A\nALEX: a\n"))
    made = tone(3.0, 0.03).resample(RATE // 2).samples.copy()
    made[:: RATE // 4] = 0.9
    clicky = Audio(made, RATE // 2).resample(RATE).samples
    (said,) = utterances(script)
    mix = assemble(script, [SpokenTurn(said, Audio(clicky, RATE))], TIMING)
    (placement,) = mix.placements
    region = mix.audio.samples[placement.start : placement.end, 0] * np.float32(np.sqrt(2))
    assert np.allclose(region, clicky * 10 ** (placement.gain_db / 20), rtol=1e-5, atol=1e-6)
    meter = pyloudnorm.Meter(RATE)
    plain_gain = SPEECH_LUFS - meter.integrated_loudness(clicky.astype(np.float64))
    assert placement.gain_db > plain_gain + 0.1  # more, for what the limiter will take
    limiter = pedalboard.BrickwallLimiter(
        ceiling_db=SPEECH_LUFS + MASTER_HEADROOM_DB, release_ms=80, lookahead_ms=2, true_peak=True
    )
    after = limiter(region, RATE).astype(np.float64)
    assert meter.integrated_loudness(after) == pytest.approx(SPEECH_LUFS, abs=0.1)


def test_the_limiter_model_matches_the_master() -> None:
    spec = Spec()
    centre_db = -20 * np.log10(np.sqrt(0.5))  # what a centred voice loses in each channel
    assert spec.limit_db - spec.loudness_lufs + centre_db == pytest.approx(
        MASTER_HEADROOM_DB, abs=0.05
    )


def test_hosts_are_panned_at_constant_loudness(write_script) -> None:
    """A host's ``pan`` places the voice in the stereo mix; the constant-power law keeps
    its loudness (BS.1770 over both channels) wherever it sits."""
    body = "## A\nALEX: a\nMAYA: b\n"
    path = write_script(body)
    text = path.read_text().replace("joe.yaml\n", "joe.yaml\n    pan: -0.6\n")
    path.write_text(text.replace("slt.yaml\n", "slt.yaml\n    pan: 1\n"))
    script = parse_script(path)
    assert [h.pan for h in script.meta.hosts.values()] == [-0.6, 1.0]
    spoken = [SpokenTurn(u, tone(2.0)) for u in utterances(script)]
    mix = assemble(script, spoken, TIMING)
    alex, maya = (mix.audio.samples[p.start : p.end] for p in mix.placements)
    assert rms_db(alex[:, 0]) - rms_db(alex[:, 1]) == pytest.approx(
        20 * np.log10(np.cos(0.1 * np.pi) / np.sin(0.1 * np.pi)), abs=0.01
    )
    assert np.abs(maya[:, 0]).max() < 1e-12  # hard right
    meter = pyloudnorm.Meter(RATE)
    for region in (alex, maya):
        assert meter.integrated_loudness(region.astype(np.float64)) == pytest.approx(
            SPEECH_LUFS, abs=0.1
        )


def test_audio_trim_keeps_a_margin() -> None:
    silence = np.zeros(RATE, dtype=np.float32)
    body = tone(1.0).samples
    audio = Audio(np.concatenate([silence, body, silence]), RATE)
    trimmed = audio.trim(margin_s=0.01)
    assert trimmed.duration == pytest.approx(1.0 + 0.02, abs=0.002)


def test_resample_is_proper() -> None:
    """A 1 kHz tone survives 22.05 -> 44.1 kHz with its frequency and level."""
    src = Audio(
        (0.5 * np.sin(2 * np.pi * 1000 * np.arange(22050) / 22050)).astype(np.float32), 22050
    )
    out = src.resample(RATE)
    assert out.sample_rate == RATE and len(out.samples) == RATE
    spectrum = np.abs(np.fft.rfft(out.samples[1000:-1000] * np.hanning(RATE - 2000)))
    peak_hz = np.argmax(spectrum) * RATE / (RATE - 2000)
    assert peak_hz == pytest.approx(1000, abs=2)
    assert float(np.abs(out.samples[1000:-1000]).max()) == pytest.approx(0.5, abs=0.01)


def test_a_panned_voice_is_levelled_for_the_limiter_it_meets() -> None:
    """Off centre, a voice is louder in one channel, so the master limiter starts lower
    over it: by 3 dB at either side, not at all in the centre."""
    assert headroom_db(0.0) == MASTER_HEADROOM_DB
    assert (
        headroom_db(-1.0) == headroom_db(1.0) == pytest.approx(MASTER_HEADROOM_DB - 3.01, abs=0.01)
    )
    assert headroom_db(0.2) == headroom_db(-0.2) < MASTER_HEADROOM_DB
    clicky = tone(3.0, 0.03).samples.copy()
    clicky[:: RATE // 2] = 0.9
    assert level_gain(clicky, RATE, headroom_db(1.0)) > level_gain(clicky, RATE) + 0.05


def test_any_window_of_the_mix_is_that_stretch_of_the_whole(write_script) -> None:
    """The mix sounds a window at a time (a render never holds the whole episode): cut
    anywhere, through turns, an overlap and music ducking under speech, the windows are
    the whole mix sample for sample."""

    body = (
        "## A\n[music: intro]\nALEX: One turn here.\nMAYA (overlap): And one over it.\n"
        "ALEX: Then a third.\n[music: outro]\n"
    )
    script = parse_script(write_script(body))
    said = utterances(script)
    turns = [SpokenTurn(u, tone(1.5 + i, 0.1, 200 + 50 * i)) for i, u in enumerate(said)]
    music = MusicLibrary.load(REPO / "assets" / "music" / "music.yaml")
    mix = assemble(script, turns, TIMING, music)
    assert any(p.overlapped for p in mix.placements) and mix.music
    whole = mix.audio.samples
    assert whole.shape == (mix.length, 2) and rms_db(whole) > -40
    rng = np.random.default_rng(7)
    cuts = sorted({0, mix.length, *rng.integers(1, mix.length, 12).tolist()})
    pieces = [mix.window(a, b) for a, b in itertools.pairwise(cuts)]
    assert np.array_equal(np.concatenate(pieces), whole)


def test_a_window_is_known_by_what_makes_it(write_script) -> None:
    """Encoded segments are cached under ``window_key``, made without mixing: the same
    sound moved later keeps its key, and any change to what is heard in the window (a
    turn, its gain, the music under it) changes it."""
    music = MusicLibrary.load(REPO / "assets" / "music" / "music.yaml")

    def mixed(first_s: float, gain: float = 0.1, key: str = "k0", bed: bool = False):
        cue = "[music: intro]\n" if bed else ""
        script = parse_script(write_script(f"## A\n{cue}ALEX: One turn.\nMAYA: A second.\n"))
        said = utterances(script)
        turns = [
            SpokenTurn(said[0], tone(first_s, gain, 200), key),
            SpokenTurn(said[1], tone(2.0, 0.1, 300), "k1"),
        ]
        return assemble(script, turns, TIMING, music)

    for bed in (False, True):
        base = mixed(1.5, bed=bed)
        second = base.placements[1]
        window = (second.start - 1000, second.end)
        # The first turn longer by whole frames: the second turn moves with what follows
        # it; the music under it (a bed that started before) does not.
        moved = mixed(1.5 + 10 * FRAME / RATE, bed=bed)
        shift = moved.placements[1].start - second.start
        later = (window[0] + shift, window[1] + shift)
        same_sound = np.array_equal(base.window(*window), moved.window(*later))
        assert same_sound is (not bed)
        assert (base.window_key(*window) == moved.window_key(*later)) is same_sound
    whole = (0, base.length)
    assert base.window_key(*whole) == mixed(1.5, bed=True).window_key(*whole)
    assert mixed(1.5, key="other", bed=True).window_key(*whole) != base.window_key(*whole)
    assert mixed(1.5, gain=0.05, bed=True).window_key(*whole) != base.window_key(*whole)
    assert base.window_key(0, 1000) != base.window_key(1000, 2000)
    # A window with a turn of unknown key is known by its samples instead.
    script = parse_script(write_script("## A\nALEX: One turn.\n"))
    plain = assemble(script, [SpokenTurn(u, tone(1.0)) for u in utterances(script)], TIMING)
    assert plain.window_key(0, plain.length) is None
