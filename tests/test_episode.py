"""The real episode, rendered end to end with the default voices."""

from __future__ import annotations

import json

import numpy as np
import pyloudnorm
import pytest
import soundfile
from conftest import REPO, ffprobe

from pipeline.cli import main
from pipeline.loudness import measure
from pipeline.script import parse_script

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def episode(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("episode") / "episode.mp3"
    assert main(["render", str(REPO / "script" / "episode.md"), "-o", str(out), "-q"]) == 0
    timeline = json.loads(out.with_suffix(".timeline.json").read_text(encoding="utf-8"))
    return {"mp3": out, "timeline": timeline}


def test_episode_runs_20_to_28_minutes(episode) -> None:
    duration = float(ffprobe(episode["mp3"])["format"]["duration"])
    minutes = duration / 60
    assert 20 <= minutes <= 28, minutes
    assert duration == pytest.approx(episode["timeline"]["duration"], abs=0.06)


def test_episode_has_every_turn_and_chapter_in_order(episode) -> None:
    script = parse_script(REPO / "script" / "episode.md")
    timeline = episode["timeline"]
    assert [t["line"] for t in timeline["turns"]] == [t.line for t in script.turns()]
    assert [c["title"] for c in timeline["chapters"]] == [c.title for c in script.chapters]
    starts = [c["start"] for c in timeline["chapters"]]
    assert starts == sorted(starts)
    # The intro opens, a sting marks each later chapter, the outro closes.
    stings = ["sting"] * (len(script.chapters) - 1)
    assert [m["name"] for m in timeline["music"]] == ["intro", *stings, "outro"]
    music_starts = [m["start"] for m in timeline["music"][:-1]]
    assert music_starts == pytest.approx(starts, abs=0.001)


def test_episode_meets_the_delivery_spec(episode) -> None:
    measured = measure(episode["mp3"])
    assert measured.loudness_lufs == pytest.approx(-16.0, abs=0.5)  # stereo
    assert measured.true_peak_db <= -1.0
    audio, _ = soundfile.read(episode["mp3"], dtype="float64")
    meter = pyloudnorm.Meter(44_100)
    loudness = {}
    for speaker in ("ALEX", "MAYA"):
        parts = [
            audio[round(t["start"] * 44_100) : round(t["end"] * 44_100)]
            for t in episode["timeline"]["turns"]
            if t["speaker"] == speaker
        ]
        loudness[speaker] = meter.integrated_loudness(np.concatenate(parts))
    assert abs(loudness["ALEX"] - loudness["MAYA"]) < 1.0, loudness
