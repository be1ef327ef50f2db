"""The real episode, rendered end to end with the default voices."""

from __future__ import annotations

import json

import pytest
from conftest import REPO, ffprobe

from pipeline.cli import main
from pipeline.script import parse_script


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
    assert [m["name"] for m in timeline["music"]] == ["intro", "outro"]
