"""QA by speech recognition: pocketsphinx listens to a real render."""

from __future__ import annotations

import json

import pytest
from conftest import FRONT_MATTER, REPO

from pipeline.cli import main
from pipeline.lexicon import Lexicon
from pipeline.qa import listen, plain

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
    timeline = json.loads(mp3.with_suffix(".timeline.json").read_text(encoding="utf-8"))
    return script, mp3, timeline


def test_plain_words() -> None:
    assert plain("It's forty-six, Nvidia's GPU!") == "it's forty six nvidia's gpu"


def test_the_recogniser_hears_the_turns(rendered) -> None:
    _, mp3, timeline = rendered
    report = listen(mp3, timeline, Lexicon.load(LEXICON))
    assert [t.line for t in report.turns] == [t["line"] for t in timeline["turns"]]
    alex, maya = report.turns
    assert alex.expected.startswith("hello and welcome to the show")
    assert "welcome" in alex.heard and "show" in alex.heard
    assert alex.wer < 0.5 and maya.wer < 0.6
    assert set(report.hosts) == {"ALEX", "MAYA"}
    assert 100 < report.hosts["ALEX"].words_per_minute < 260
    terms = [(t.term, t.expected) for t in report.terms]
    assert terms == [("Cerebras", "cerebras"), ("GPU", "g p u")]


def test_a_wrong_script_scores_badly(rendered) -> None:
    """The measure can fail: against the wrong words the error rate is high."""
    _, mp3, timeline = rendered
    wrong = json.loads(json.dumps(timeline))
    for turn in wrong["turns"]:
        turn["text"] = "Completely different words that nobody said in this recording at all."
    report = listen(mp3, wrong, Lexicon.empty())
    assert all(score.wer > 0.8 for score in report.turns)


def test_qa_command_writes_reports_and_never_fails_on_scores(rendered, capsys) -> None:
    script, mp3, _ = rendered
    assert main(["qa", str(script), "-i", str(mp3)]) == 0
    out = capsys.readouterr().out
    assert "Alex: median WER" in out and "words a minute" in out
    data = json.loads((mp3.parent / "qa.json").read_text(encoding="utf-8"))
    assert set(data["hosts"]) == {"ALEX", "MAYA"} and len(data["turns"]) == 2
    report = (mp3.parent / "qa.md").read_text(encoding="utf-8")
    assert "| Alex |" in report and "## Lexicon terms as heard" in report
    assert "| Cerebras |" in report


def test_qa_needs_a_render(tmp_path, capsys) -> None:
    script = tmp_path / "ep.md"
    script.write_text(FRONT_MATTER + BODY, encoding="utf-8")
    assert main(["qa", str(script), "-i", str(tmp_path / "episode.mp3")]) == 1
    assert "episode.timeline.json not found" in capsys.readouterr().err
