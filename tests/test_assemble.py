"""The timeline and mastering rules, on synthetic audio (no engines needed)."""

from __future__ import annotations

import numpy as np
import pyloudnorm
import pytest

from pipeline.assemble import Timing, assemble
from pipeline.audio import Audio
from pipeline.master import master
from pipeline.script import parse_script
from pipeline.speech import utterances
from pipeline.synthesize import SpokenTurn

RATE = 44_100
TIMING = Timing(lead_in=0.5, turn_gap=0.25, chapter_gap=1.0, tail=0.75)


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
    _, mix = build(write_script, "## A\nALEX: one\nMAYA: two\n## B\nALEX: three\n", [1, 2, 1])
    assert starts(mix) == [0.5, 1.75, 4.75]
    assert mix.audio.duration == pytest.approx(4.75 + 1 + 0.75)


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
        ("C", 3.5),
    ]
    assert [(m.name, round(mix.seconds(m.at), 6)) for m in mix.music] == [
        ("intro", 0.0),
        ("sting", 3.5),
        ("outro", 3.5),
    ]


def test_turn_audio_is_copied_sample_exact(write_script) -> None:
    _, mix = build(write_script, "## A\nALEX: one\nMAYA: two\n", [0.5, 0.5])
    for placement in mix.placements:
        region = mix.audio.samples[placement.start : placement.end]
        assert np.array_equal(region, tone(0.5).samples)
    gap = mix.audio.samples[mix.placements[0].end : mix.placements[1].start]
    assert len(gap) == round(0.25 * RATE) and not gap.any()


def test_master_matches_hosts_and_respects_the_ceiling(write_script) -> None:
    # ALEX is 20 dB quieter than MAYA from the engine; mastering evens them out.
    body = "## A\nALEX: a\nMAYA: b\nALEX: c\nMAYA: d\nALEX: short\n"
    _, mix = build(write_script, body, [2, 2, 2, 2, 0.2], [0.02, 0.2, 0.02, 0.2, 0.02])
    report = master(mix, target_lufs=-16.0, ceiling_db=-1.0)
    meter = pyloudnorm.Meter(RATE)
    samples = mix.audio.samples.astype(np.float64)
    level = [meter.integrated_loudness(samples[p.start : p.end]) for p in mix.placements[:4]]
    assert max(level) - min(level) < 0.1
    # The turn too short to measure gets its host's gain: same level as ALEX's others.
    short = mix.placements[4]
    assert float(np.abs(samples[short.start : short.end]).max()) == pytest.approx(
        float(np.abs(samples[mix.placements[0].start : mix.placements[0].end]).max()), rel=0.01
    )
    assert report.peak_db <= -1.0 + 1e-3
    # Sine tones have a low crest factor: the target is reached without touching the ceiling.
    assert not report.peak_limited
    assert report.loudness_lufs == pytest.approx(-16.0, abs=0.1)


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
