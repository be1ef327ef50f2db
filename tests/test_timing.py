"""Conversational timing: gaps chosen by what came before, sentence pauses, overlaps, and
the true times of all of them in the timeline, the transcripts and the chapters."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import webvtt
from test_assemble import RATE, tone

from pipeline.assemble import assemble
from pipeline.audio import Audio, pan
from pipeline.cli import main
from pipeline.errors import PipelineError
from pipeline.package import timeline
from pipeline.script import Turn, parse_script
from pipeline.speech import sentences, utterances
from pipeline.synthesize import SpokenTurn
from pipeline.timing import Timing
from pipeline.transcript import cues, to_json, to_srt, to_vtt

TIMING = Timing(grid=1, variation=0)  # exact gaps; variation has its own test


def mix_of(write_script, body: str, seconds: float = 1.0, timing: Timing = TIMING):
    script = parse_script(write_script(body))
    spoken = [
        SpokenTurn(u, tone(seconds, 0.1, 200 + 40 * i)) for i, u in enumerate(utterances(script))
    ]
    return script, assemble(script, spoken, timing)


def gaps(mix) -> list[float]:
    """Silence before each turn after the first, in seconds."""
    places = mix.placements
    return [round((b.start - a.end) / RATE, 4) for a, b in itertools.pairwise(places)]


def test_an_answer_comes_faster_than_a_turn_and_a_chapter_leaves_most_room(write_script):
    body = (
        "## One\n"
        "ALEX: Here is a statement about the chip.\n"
        "MAYA: And here is my reply to that statement.\n"
        "ALEX: Is that the biggest chip ever made?\n"
        "MAYA: Yes, it is the biggest chip ever made.\n"
        "## Two\n"
        "ALEX: A new topic starts the second chapter.\n"
    )
    _, mix = mix_of(write_script, body)
    after_statement, after_question, before_chapter = gaps(mix)[1:]
    assert after_question == TIMING.answer_gap
    assert after_statement == TIMING.turn_gap
    assert before_chapter == TIMING.chapter_gap
    assert after_question < after_statement < before_chapter


def test_reactions_are_quick_and_a_host_speaking_again_pauses(write_script):
    body = (
        "## One\n"
        "ALEX: The wafer is the size of a dinner plate.\n"
        "MAYA: Wow.\n"
        "MAYA: And what does that mean for the business?\n"
    )
    _, mix = mix_of(write_script, body)
    assert gaps(mix) == [TIMING.reaction_gap, TIMING.same_host_gap]


def test_a_written_pause_overrides_the_model(write_script):
    _, mix = mix_of(write_script, "## One\nALEX: Is it big?\n[pause 1.1s]\nMAYA: Yes it is big.\n")
    assert gaps(mix) == [1.1]


@pytest.mark.parametrize(
    "sentence, pause",
    [
        ("It is big.", TIMING.sentence_pause),
        ("Is it big?", TIMING.question_pause),
        ("Is it big?\u201d", TIMING.question_pause),
        ("Well...", TIMING.trail_pause),
        ("Wow!", TIMING.sentence_pause),
    ],
)
def test_sentence_pauses_follow_how_a_sentence_ends(sentence, pause) -> None:
    assert Timing().after_sentence(sentence) == pause


def test_sentences_split_where_captions_and_engines_split() -> None:
    text = 'It is big. Is it? "Yes!" she said... and then 2.5 times more.'
    assert sentences(text) == [
        "It is big.",
        "Is it?",
        '"Yes!"',
        "she said...",
        "and then 2.5 times more.",
    ]


def test_the_gap_model_is_a_function_of_the_script() -> None:
    timing = Timing(variation=0)
    question, statement = Turn("ALEX", "Is it big?", 1), Turn("ALEX", "It is big.", 1)
    answer, reaction = Turn("MAYA", "Yes, it is very big.", 2), Turn("MAYA", "Wow.", 2)
    assert timing.gap(question, answer, chapter_start=False) == timing.answer_gap
    assert timing.gap(statement, answer, chapter_start=False) == timing.turn_gap
    assert timing.gap(statement, reaction, chapter_start=False) == timing.reaction_gap
    assert timing.gap(question, answer, chapter_start=True) == timing.chapter_gap
    assert timing.gap(None, answer, chapter_start=False) == timing.turn_gap  # after a cue


def test_gaps_vary_by_turn_but_keep_their_order_and_repeat_exactly() -> None:
    timing = Timing()
    question = Turn("ALEX", "Is it big?", 1)
    statement = Turn("ALEX", "It is big.", 1)
    answers = [Turn("MAYA", f"Yes, it is big, about {n} times bigger.", 2) for n in range(40)]
    replies = [Turn("MAYA", f"And that matters for reason number {n}.", 2) for n in range(40)]
    after_question = [timing.gap(question, a, chapter_start=False) for a in answers]
    after_statement = [timing.gap(statement, r, chapter_start=False) for r in replies]
    assert len({round(g, 4) for g in after_statement}) > 30  # not one fixed gap
    low, high = 1 - timing.variation, 1 + timing.variation
    assert all(low * timing.answer_gap <= g <= high * timing.answer_gap for g in after_question)
    assert all(low * timing.turn_gap <= g <= high * timing.turn_gap for g in after_statement)
    assert max(after_question) < min(after_statement)  # an answer still comes faster
    assert after_question == [timing.gap(question, a, chapter_start=False) for a in answers]
    # A chapter's opening is fixed: an edit there leaves the chapter before it as it was.
    assert {timing.gap(statement, r, chapter_start=True) for r in replies} == {timing.chapter_gap}


OVERLAP = (
    "## One\n"
    "ALEX: The wafer is the size of a dinner plate. It holds many cores.\n"
    "MAYA (overlap): Wow.\n"
    "ALEX: And it runs them all at once.\n"
    "MAYA (overlap 0.6s): Right.\n"
    "## Two\n"
    "ALEX: Next chapter.\n"
)


def test_an_overlap_starts_under_the_end_of_the_turn_before(write_script) -> None:
    _, mix = mix_of(write_script, OVERLAP, seconds=2.0)
    first, wow, second, right, _ = mix.placements
    assert (first.end - wow.start) / RATE == pytest.approx(TIMING.overlap, abs=1e-4)
    assert (second.end - right.start) / RATE == pytest.approx(0.6, abs=1e-4)
    assert wow.overlapped and not first.overlapped
    # The next turn waits for both voices to stop, then the usual gap.
    assert second.start == max(first.end, wow.end) + round(TIMING.turn_gap * RATE)
    # Both voices sound together: the mix is their sum.
    together = slice(wow.start, first.end)
    alex = tone(2.0, 0.1, 200).samples * 10 ** (first.gain_db / 20)
    maya = tone(2.0, 0.1, 240).samples * 10 ** (wow.gain_db / 20)
    expected = alex[wow.start - first.start :] + maya[: first.end - wow.start]
    assert np.allclose(mix.audio.samples[together], pan(expected, 0.0), atol=1e-6)
    # The chapter after starts after the end of the last voice, not of the turn before it.
    assert mix.chapters[1].start >= right.end + round(TIMING.chapter_gap * RATE)


def test_an_overlap_never_starts_before_the_middle_of_the_turn(write_script) -> None:
    body = "## One\nALEX: Short.\nMAYA (overlap 2.5s): Oh, right.\n"
    _, mix = mix_of(write_script, body, seconds=1.0)
    short, right = mix.placements
    assert right.start == (short.start + short.end) // 2


def test_overlaps_carry_their_true_times_into_timeline_and_transcripts(write_script) -> None:
    script, mix = mix_of(write_script, OVERLAP, seconds=2.0)
    turns = timeline(script, mix, {}).turns
    assert [t.overlap for t in turns] == [False, True, False, True, False]
    assert turns[1].start < turns[0].end
    assert turns[1].start == pytest.approx(turns[0].end - TIMING.overlap, abs=1e-4)
    all_cues = cues(script, mix)
    assert [c.start for c in all_cues] == sorted(c.start for c in all_cues)
    wow = next(c for c in all_cues if c.text == "Wow.")
    plate = next(c for c in all_cues if "plate" in c.text)
    cores = next(c for c in all_cues if "cores" in c.text)
    assert wow.start == pytest.approx(turns[1].start) and wow.start < cores.end
    assert plate.start == pytest.approx(turns[0].start)
    vtt = to_vtt(all_cues)
    srt = to_srt(all_cues)
    segments = to_json(all_cues)["segments"]
    wow_at = next(s for s in segments if s["body"] == "Wow.")
    assert wow_at["startTime"] == pytest.approx(turns[1].start, abs=1e-3)
    assert "<v Maya>Wow." in vtt and "Maya: Wow." in srt


def test_each_caption_starts_where_its_sentence_is_spoken(write_script) -> None:
    """Sentences are spoken one by one, so a caption's time is the sentence's, not a share
    of the turn by length."""
    script = parse_script(
        write_script("## One\nALEX: A short one. Then a much longer second sentence here.\n")
    )
    (said,) = utterances(script)
    rate = RATE
    first, second = tone(0.5).samples, tone(2.0).samples
    pause = np.zeros(round(0.3 * rate), dtype=np.float32)
    audio = Audio(np.concatenate([first, pause, second]), rate)
    spans = ((0, len(first)), (len(first) + len(pause), len(audio.samples)))
    mix = assemble(script, [SpokenTurn(said, audio, sentences=spans)], TIMING)
    (placement,) = mix.placements
    one, two = cues(script, mix)
    assert one.start == pytest.approx(placement.start / rate)
    assert one.end == pytest.approx((placement.start + len(first)) / rate)
    assert two.start == pytest.approx((placement.start + spans[1][0]) / rate)


@pytest.mark.parametrize(
    "body, line, message",
    [
        ("## One\nMAYA (overlap): Hi.\n", 1, "does not follow another host's turn"),
        ("## One\nALEX: Hi.\nALEX (overlap): Me again.\n", 2, "does not follow another host"),
        ("## One\nALEX: Hi.\n[pause 1s]\nMAYA (overlap): Hi.\n", 3, "does not follow another"),
        (
            "## One\nALEX: Hi.\nMAYA (overlap): This is far too long to be an interjection.\n",
            2,
            "must be a short interjection",
        ),
        ("## One\nALEX: Hi.\nMAYA (laughs): Ha.\n", 2, r"unknown direction \(laughs\)"),
        ("## One\nALEX: Hi.\nMAYA (overlap 2x): Ha.\n", 2, "malformed overlap duration"),
        ("## One\nALEX: Hi.\nMAYA (overlap 5s): Ha.\n", 2, "longer than 3s"),
    ],
)
def test_overlap_errors_name_the_line(write_script, body, line, message) -> None:
    from conftest import FRONT_LINES

    path = write_script(body)
    with pytest.raises(PipelineError, match=message) as err:
        parse_script(path)
    assert (err.value.path, err.value.line) == (path, FRONT_LINES + 1 + line)


@pytest.mark.slow
def test_a_real_render_puts_the_overlap_in_every_transcript(write_script, tmp_path) -> None:
    body = (
        "## One\n"
        "ALEX: The wafer is the size of a dinner plate.\n"
        "MAYA (overlap): Wow.\n"
        "ALEX: And that is only the start.\n"
    )
    out = tmp_path / "ep.mp3"
    assert main(["render", str(write_script(body)), "-o", str(out), "-q", "--no-cache"]) == 0
    turns = json.loads(out.with_suffix(".timeline.json").read_text(encoding="utf-8"))["turns"]
    plate, wow, start = turns
    assert wow["overlap"] and wow["start"] < plate["end"] < wow["end"] < start["start"]
    captions = list(webvtt.read(str(out.with_suffix(".vtt"))))
    said = next(c for c in captions if c.text.strip() == "Wow.")
    hours, minutes, seconds = said.start.split(":")
    start = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    assert start == pytest.approx(wow["start"], abs=0.002)
    srt = out.with_suffix(".srt").read_text(encoding="utf-8")
    assert "Maya: Wow." in srt
    segments = json.loads((tmp_path / "ep.transcript.json").read_text(encoding="utf-8"))["segments"]
    seg = next(s for s in segments if s["body"] == "Wow.")
    assert seg["startTime"] == pytest.approx(wow["start"], abs=0.002)
    assert seg["startTime"] < next(s for s in segments if "plate" in s["body"])["endTime"]
