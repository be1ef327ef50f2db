"""End to end: the fixture script rendered with both default engines, checked from the audio."""

from __future__ import annotations

import itertools
import json
import re
import subprocess
from pathlib import Path

import numpy as np
import parselmouth
import pytest
from conftest import FIXTURES, ffprobe

from pipeline.assemble import Timing
from pipeline.cli import main

RATE = 44_100
TIMING = Timing()
# The gap before each turn of two_hosts.md, from the script: lead-in, turn gap,
# [pause 1.2s], chapter gap (a music cue is not a pause), [pause 800ms]; then the tail.
EXPECTED_GAPS = [TIMING.lead_in, TIMING.turn_gap, 1.2, TIMING.chapter_gap, 0.8]
EXPECTED_SPEAKERS = ["ALEX", "MAYA", "ALEX", "MAYA", "ALEX"]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("render") / "episode.mp3"
    assert main(["render", str(FIXTURES / "two_hosts.md"), "-o", str(out), "-q"]) == 0
    timeline = json.loads(out.with_suffix(".timeline.json").read_text(encoding="utf-8"))
    return {"mp3": out, "timeline": timeline, "audio": decode(out)}


def decode(path: Path) -> np.ndarray:
    """The MP3 decoded by ffmpeg to mono float32 at 44.1 kHz."""
    raw = subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-i",
            str(path),
            "-f",
            "f32le",
            "-ac",
            "1",
            "-ar",
            str(RATE),
            "-",
        ],
        capture_output=True,
        check=True,
    ).stdout
    return np.frombuffer(raw, dtype="<f4")


def rms_db(samples: np.ndarray) -> float:
    return 10 * float(np.log10(np.mean(samples.astype(np.float64) ** 2) + 1e-20))


def median_pitch(samples: np.ndarray) -> float:
    pitch = parselmouth.Sound(samples.astype(np.float64), RATE).to_pitch(
        pitch_floor=60, pitch_ceiling=400
    )
    f0 = pitch.selected_array["frequency"]
    return float(np.median(f0[f0 > 0]))


def test_mp3_format(rendered) -> None:
    probe = ffprobe(rendered["mp3"])
    (stream,) = probe["streams"]
    assert stream["codec_name"] == "mp3"
    assert int(stream["sample_rate"]) == RATE and stream["channels"] == 1
    assert abs(int(stream["bit_rate"]) - 96_000) < 1_000
    # The Info header makes the reported duration the real one (within a frame or two).
    assert abs(float(probe["format"]["duration"]) - rendered["timeline"]["duration"]) < 0.06


def test_mp3_decodes_cleanly(rendered) -> None:
    """Playable: ffmpeg decodes every frame without a single warning."""
    result = subprocess.run(
        ["ffmpeg", "-v", "warning", "-i", str(rendered["mp3"]), "-f", "null", "-"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0 and result.stderr == ""


def test_turns_are_placed_by_the_plan(rendered) -> None:
    turns = rendered["timeline"]["turns"]
    assert [t["speaker"] for t in turns] == EXPECTED_SPEAKERS
    assert [t["line"] for t in turns] == [17, 18, 22, 28, 33]
    previous_end = 0.0
    for turn, gap in zip(turns, EXPECTED_GAPS, strict=True):
        assert turn["start"] - previous_end == pytest.approx(gap, abs=1 / RATE)
        assert turn["end"] - turn["start"] > 1.0
        previous_end = turn["end"]
    assert rendered["timeline"]["duration"] == pytest.approx(
        previous_end + TIMING.tail, abs=1 / RATE
    )


def test_duration_is_the_sum_of_turns_and_gaps(rendered) -> None:
    turns = rendered["timeline"]["turns"]
    speech = sum(t["end"] - t["start"] for t in turns)
    expected = speech + sum(EXPECTED_GAPS) + TIMING.tail
    decoded = len(rendered["audio"]) / RATE
    assert decoded == pytest.approx(expected, abs=0.005)


def test_audio_has_speech_in_turns_and_silence_in_gaps(rendered) -> None:
    audio = rendered["audio"]
    turns = rendered["timeline"]["turns"]
    edges = [0.0] + [x for t in turns for x in (t["start"], t["end"])] + [len(audio) / RATE]
    margin = 0.02
    for gap_start, gap_end in zip(edges[0::2], edges[1::2], strict=True):
        gap = audio[int((gap_start + margin) * RATE) : int((gap_end - margin) * RATE)]
        assert rms_db(gap) < -70, (gap_start, gap_end)
    for turn in turns:
        assert rms_db(audio[int(turn["start"] * RATE) : int(turn["end"] * RATE)]) > -35, turn


def test_silences_found_by_ffmpeg_match_the_gaps(rendered) -> None:
    """An independent measure: ffmpeg's silencedetect finds every planned gap."""
    log = subprocess.run(
        [
            "ffmpeg",
            "-hide_banner",
            "-i",
            str(rendered["mp3"]),
            "-af",
            "silencedetect=noise=-55dB:duration=0.4",
            "-f",
            "null",
            "-",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stderr
    starts = [float(x) for x in re.findall(r"silence_start: ([\d.]+)", log)]
    ends = [float(x) for x in re.findall(r"silence_end: ([\d.]+)", log)]
    silences = list(zip(starts, [*ends, rendered["timeline"]["duration"]], strict=False))
    turns = rendered["timeline"]["turns"]
    for before, after in itertools.pairwise(turns):
        assert any(
            abs(s - before["end"]) < 0.05 and abs(e - after["start"]) < 0.05 for s, e in silences
        ), (before["end"], after["start"], silences)


def test_the_two_hosts_sound_different(rendered) -> None:
    audio = rendered["audio"]
    pitches: dict[str, list[float]] = {"ALEX": [], "MAYA": []}
    for turn in rendered["timeline"]["turns"]:
        region = audio[int(turn["start"] * RATE) : int(turn["end"] * RATE)]
        pitches[turn["speaker"]].append(median_pitch(region))
    alex, maya = max(pitches["ALEX"]), min(pitches["MAYA"])
    # Piper joe is a male voice, Festival slt a female one: every turn says so.
    assert alex < 150 < maya, pitches
    assert maya / alex > 1.3


def test_timeline_has_chapters_and_music(rendered) -> None:
    timeline = rendered["timeline"]
    turns = timeline["turns"]
    assert [(c["title"], c["line"]) for c in timeline["chapters"]] == [
        ("First things", 15),
        ("Second thoughts", 24),
    ]
    assert timeline["chapters"][0]["start"] == turns[0]["start"]
    # The second chapter opens with its music cue, at the end of the previous turn.
    assert timeline["chapters"][1]["start"] == pytest.approx(turns[2]["end"])
    assert timeline["music"] == [
        {"name": "sting", "at": timeline["chapters"][1]["start"], "line": 26}
    ]
    assert turns[0]["name"] == "Alex Example"
    assert turns[0]["text"] == "Hello and welcome to the show."


def test_hosts_are_levelled(rendered) -> None:
    import pyloudnorm

    meter = pyloudnorm.Meter(RATE)
    audio = rendered["audio"].astype(np.float64)
    loudness = {}
    for speaker in ("ALEX", "MAYA"):
        parts = [
            audio[int(t["start"] * RATE) : int(t["end"] * RATE)]
            for t in rendered["timeline"]["turns"]
            if t["speaker"] == speaker
        ]
        loudness[speaker] = meter.integrated_loudness(np.concatenate(parts))
    assert abs(loudness["ALEX"] - loudness["MAYA"]) < 1.0, loudness
    assert float(np.abs(rendered["audio"]).max()) <= 10 ** (-0.9 / 20)
