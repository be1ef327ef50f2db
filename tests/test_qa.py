"""QA by speech recognition: pocketsphinx listens to a real render."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from conftest import FRONT_MATTER, REPO

from pipeline.cli import main
from pipeline.lexicon import Lexicon
from pipeline.outputs import OutputSet
from pipeline.qa import TermHeard, heard_as, listen, misheard, plain, quality_turns, vocabulary
from pipeline.quality import dnsmos
from pipeline.timeline import TimedCue, TimedTurn, Timeline

pytestmark = pytest.mark.slow

LEXICON = REPO / "voices" / "lexicon.yaml"
BODY = (
    "## Chapter\n"
    "ALEX: Hello and welcome to the show. Today we talk about Cerebras and its chip.\n\n"
    "MAYA: Thanks. A GPU is a graphics processor, and it is very good at many things.\n"
)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    folder = tmp_path_factory.mktemp("qa")
    script = folder / "ep.md"
    script.write_text(
        FRONT_MATTER.replace("hosts:", f"lexicon: {LEXICON}\nhosts:", 1) + BODY, encoding="utf-8"
    )
    mp3 = folder / "episode.mp3"
    assert main(["render", str(script), "-o", str(mp3), "-q"]) == 0
    return script, mp3, Timeline.load(OutputSet(mp3).timeline)


def test_plain_words() -> None:
    assert plain("It's forty-six, Nvidia's GPU!") == "it's forty six nvidia's gpu"


def test_the_recogniser_hears_the_turns(rendered) -> None:
    _, mp3, timeline = rendered
    report = listen(mp3, timeline, Lexicon.load(LEXICON))
    assert [t.line for t in report.turns] == [t.line for t in timeline.turns]
    alex, maya = report.turns
    assert alex.expected.startswith("hello and welcome to the show")
    assert "welcome" in alex.heard and "show" in alex.heard
    assert "cerebras" in alex.heard  # taught to the recogniser from the lexicon's IPA
    # Pitch: Piper's joe is a low male voice, Festival's slt a female one.
    assert report.hosts["ALEX"].median_pitch_hz < 130 < report.hosts["MAYA"].median_pitch_hz
    assert alex.wer < 0.5 and maya.wer < 0.6
    assert set(report.hosts) == {"ALEX", "MAYA"}
    assert 100 < report.hosts["ALEX"].words_per_minute < 260
    terms = [(t.term, t.expected) for t in report.terms]
    assert terms == [("Cerebras", "cerebras"), ("GPU", "g p u")]


def test_a_wrong_script_scores_badly(rendered) -> None:
    """The measure can fail: against the wrong words the error rate is high."""
    _, mp3, timeline = rendered
    other = "Completely different words that nobody said in this recording at all."
    turns = tuple(dataclasses.replace(turn, text=other) for turn in timeline.turns)
    wrong = dataclasses.replace(timeline, turns=turns)
    report = listen(mp3, wrong, Lexicon.empty())
    assert all(score.wer > 0.8 for score in report.turns)


def test_qa_command_writes_reports_and_never_fails_on_scores(rendered, capsys) -> None:
    script, mp3, _ = rendered
    assert main(["qa", str(script), "-i", str(mp3)]) == 0
    out = capsys.readouterr().out
    assert "Alex: median WER" in out and "words a minute" in out
    assert "median pitch" in out and "DNSMOS raw" in out
    data = json.loads((mp3.parent / "qa.json").read_text(encoding="utf-8"))
    assert set(data["hosts"]) == {"ALEX", "MAYA"} and len(data["turns"]) == 2
    for host in data["hosts"].values():
        # Both turns are long enough to score: the engine's raw turn, spoken again, and the
        # same turn in the MP3 score alike (the production chain keeps the voice intact).
        assert host["quality_turns"] == 1
        assert 2.0 < host["mos_raw"] < 5.0
        assert abs(host["mos_finished"] - host["mos_raw"]) <= 0.1
    report = (mp3.parent / "qa.md").read_text(encoding="utf-8")
    assert "| Alex |" in report and "## Lexicon terms as heard" in report
    assert "| Cerebras |" in report and "DNSMOS raw" in report
    assert "## Lexicon terms misheard in more than half their uses" in report


def test_qa_needs_a_render(tmp_path, capsys) -> None:
    script = tmp_path / "ep.md"
    script.write_text(FRONT_MATTER + BODY, encoding="utf-8")
    assert main(["qa", str(script), "-i", str(tmp_path / "episode.mp3")]) == 1
    assert "episode.timeline.json not found" in capsys.readouterr().err


def test_dnsmos_hears_damage_and_ignores_level(rendered) -> None:
    """The quality measure can fail: noise lowers it; a level change alone does not."""
    import soundfile

    _, mp3, timeline = rendered
    audio, rate = soundfile.read(mp3, dtype="float32")
    audio = audio.mean(axis=1)  # the stereo episode, as one channel (DNSMOS takes one)
    turn = timeline.turns[0]
    clip = audio[round(turn.start * rate) : round(turn.end * rate)]
    clean = dnsmos(clip, rate)
    noise = np.random.default_rng(0).normal(0, 1, len(clip)).astype(np.float32)
    noise *= np.sqrt(np.mean(clip**2) / np.mean(noise**2)) * 10 ** (-10 / 20)  # 10 dB SNR
    assert dnsmos(clip + noise, rate) < clean - 0.5
    assert dnsmos(clip * 0.1, rate) == pytest.approx(clean, abs=0.02)


def test_quality_is_scored_only_where_one_voice_sounds_alone() -> None:
    spans = [
        (0.0, 6.0),  # under the intro music
        (7.0, 13.0),  # clear
        (12.5, 13.5),  # overlaps the one before (and too short)
        (14.0, 16.0),  # too short
        (17.0, 30.0),  # clear
    ]
    turns = tuple(TimedTurn("A", "A", a, b, 0.0, False, (), 1, "x", "x", "x") for a, b in spans)
    music = (TimedCue("intro", 0.0, 5.0, 1),)
    timeline = Timeline("Show", 1, "Title", 30.0, 44_100, {}, (), turns, music)
    assert quality_turns(timeline) == [4]  # turn 1 has another voice under its end


def test_misheard_terms_are_those_wrong_in_more_than_half_their_uses() -> None:
    lexicon = Lexicon.load(LEXICON)

    def heard(term: str, expected: str, got: str) -> TermHeard:
        return TermHeard(term, 1, expected, got)

    terms = [
        heard("Cerebras", "cerebras", "surrender"),
        heard("Cerebras's", "cerebras's", "cerebras's"),
        heard("Cerebras", "cerebras", "terrible"),
        heard("GPUs", "g p u's", "g p use"),  # spelled differently, said the same
        heard("GPU", "g p u", "g p u"),
        heard("AI", "a i", "ai"),
        heard("SRAM", "s ram", "best friend"),
        heard("SRAM", "s ram", "s ram"),
    ]
    found = misheard(terms, lexicon)
    assert [(m.term, m.misheard, m.uses) for m in found] == [("Cerebras", 2, 3)]
    assert found[0].heard == ["surrender", "terrible"]
    assert heard_as("g p u's", "g p use") and not heard_as("cerebras", "surrender")


def test_the_recogniser_learns_the_lexicon_terms_it_lacks() -> None:
    words = vocabulary(Lexicon.load(LEXICON))
    assert words["cerebras"] == "S ER EH B R AH S"
    assert words["cerebras's"] == "S ER EH B R AH S IH Z"
    assert words["exaflops"] == "EH K S AH F L AA P S"
    assert "c s two" not in words  # several words: each is in the dictionary already
