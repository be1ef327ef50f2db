"""The script format: every element, with the source line of each."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from conftest import FIXTURES, FRONT_LINES, FRONT_MATTER, REPO, VOICES

from pipeline.errors import PipelineError
from pipeline.script import MusicCue, Pause, SoundbiteMark, Turn, parse_script

BODY = 1 + FRONT_LINES  # line number of the first body line


def test_front_matter_gives_episode_meta_and_hosts() -> None:
    script = parse_script(FIXTURES / "two_hosts.md")
    meta = script.meta
    assert (meta.podcast, meta.episode, meta.title) == ("Test Show", 7, "Fixture episode")
    assert meta.description == "Two hosts, two chapters, every kind of gap."
    assert list(meta.hosts) == ["ALEX", "MAYA"]
    alex = meta.hosts["ALEX"]
    assert alex.name == "Alex Example"
    assert alex.voice.resolve() == (VOICES / "joe.yaml").resolve()
    assert alex.line == 16  # the `voice:` line, where voice errors point
    assert (alex.pan, meta.hosts["MAYA"].pan) == (-0.2, 0.2)
    assert meta.date == datetime.date(2026, 1, 2)
    assert meta.season == 2
    assert meta.disclosure == "The script was written by the test suite."
    assert meta.music is not None and meta.cover is not None and meta.artwork is not None
    assert meta.music.resolve() == (REPO / "assets" / "music" / "music.yaml").resolve()
    assert meta.cover.resolve() == (REPO / "assets" / "cover.jpg").resolve()


def test_fixture_structure_with_lines() -> None:
    script = parse_script(FIXTURES / "two_hosts.md")
    assert [(c.title, c.line) for c in script.chapters] == [
        ("First things", 24),
        ("Second thoughts", 35),
    ]
    first, second = script.chapters
    assert first.items == [
        MusicCue("intro", 26),
        Turn("ALEX", "Hello and welcome to the show.", 28),
        Turn("MAYA", "Thanks. It is good to be here today.", 29),
        Pause(1.2, 31),
        Turn("ALEX", "Let us begin with the first question.", 33),
    ]
    assert second.items == [
        MusicCue("sting", 37),
        SoundbiteMark(start=True, line=39),
        Turn(
            "MAYA",
            "Here is the second chapter, and a longer answer "
            "that runs over two lines of the script.",
            40,
        ),
        SoundbiteMark(start=False, line=42),
        Pause(0.8, 44),
        Turn("ALEX", "That is all for now.", 46),
        MusicCue("outro", 48),
    ]
    assert [t.line for t in script.turns()] == [28, 29, 33, 40, 46]


@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        (
            "## A\n[soundbite]\nALEX: a\n[soundbite]\nALEX: b\n",
            4,
            f"inside the one opened at line {FRONT_LINES + 2}",
        ),
        ("## A\nALEX: a\n[soundbite end]\n", 3, "a [soundbite end] with no [soundbite] open"),
        ("## A\n[soundbite]\n[soundbite end]\nALEX: a\n", 3, "a soundbite with no turn in it"),
        ("## A\n[soundbite]\nALEX: a\n", 2, "this [soundbite] is never closed"),
    ],
)
def test_soundbite_marks_must_pair_up(write_script, body, line, message) -> None:
    with pytest.raises(PipelineError) as caught:
        parse_script(write_script(body))
    assert caught.value.line == FRONT_LINES + line and message in str(caught.value)


@pytest.mark.parametrize(
    ("field", "message"),
    [("    pan: 2\n", "'pan' must be a number from -1"), ("season: 0\n", "'season' must be")],
)
def test_pan_and_season_are_checked(write_script, field, message) -> None:
    text = (
        FRONT_MATTER.replace("hosts:\n", field + "hosts:\n")
        if "season" in field
        else (FRONT_MATTER.replace("joe.yaml\n", "joe.yaml\n" + field))
    )
    with pytest.raises(PipelineError, match=message):
        parse_script(write_script(raw=text + "## A\nALEX: a\n"))


def test_multiline_turn_runs_to_blank_line(write_script) -> None:
    path = write_script("""
        ## Chapter
        ALEX: one
          two
        three

        MAYA: four
        """)
    turns = list(parse_script(path).turns())
    assert [(t.speaker, t.text, t.line) for t in turns] == [
        ("ALEX", "one two three", BODY + 2),
        ("MAYA", "four", BODY + 6),
    ]


def test_bold_labels_in_both_styles(write_script) -> None:
    path = write_script("""
        ## Chapter
        **ALEX:** first

        **MAYA**: second
        """)
    assert [(t.speaker, t.text) for t in parse_script(path).turns()] == [
        ("ALEX", "first"),
        ("MAYA", "second"),
    ]


def test_a_label_shaped_line_inside_a_turn_is_never_taken_silently(write_script) -> None:
    """It could be a misspelt host (spoken by the wrong voice) or wrapped text: refused,
    with both fixes named."""
    path = write_script("""
        ## Chapter
        ALEX: the chip has
        SRAM: forty gigabytes of it
        """)
    with pytest.raises(PipelineError) as caught:
        parse_script(path)
    message = str(caught.value)
    assert f"{path}:{FRONT_LINES + 4}: unknown speaker 'SRAM'" in message
    assert "rewrap it so that no line starts with 'SRAM:'" in message


def test_comments_are_not_spoken_and_keep_line_numbers(write_script) -> None:
    path = write_script("""
        <!-- a note
             over two lines -->
        ## Chapter
        ALEX: before <!-- inline --> after
        <!-- a note inside a turn -->
        still Alex

        <!--
        MAYA: commented out, never spoken
        -->
        MAYA: spoken
        """)
    script = parse_script(path)
    assert script.chapters[0].line == BODY + 3
    assert [(t.speaker, t.text, t.line) for t in script.turns()] == [
        ("ALEX", "before after still Alex", BODY + 4),
        ("MAYA", "spoken", BODY + 11),
    ]


def test_cues(write_script) -> None:
    path = write_script("""
        ## Chapter
        [music: intro]
        ALEX: hi
        [pause 1.5s]
        [ pause 250ms ]
        [pause .5s]
        MAYA: hello
        [music: outro-2]
        """)
    items = parse_script(path).chapters[0].items
    assert items == [
        MusicCue("intro", BODY + 2),
        Turn("ALEX", "hi", BODY + 3),
        Pause(1.5, BODY + 4),
        Pause(0.25, BODY + 5),
        Pause(0.5, BODY + 6),
        Turn("MAYA", "hello", BODY + 7),
        MusicCue("outro-2", BODY + 8),
    ]


def test_cue_line_ends_a_turn_and_phonemes_stay_text(write_script) -> None:
    path = write_script("""
        ## Chapter
        ALEX: Cerebras is said
        [[sɛɹˈɛbɹəs]]
        [pause 1s]
        """)
    items = parse_script(path).chapters[0].items
    assert items == [Turn("ALEX", "Cerebras is said [[sɛɹˈɛbɹəs]]", BODY + 2), Pause(1.0, BODY + 4)]


def test_document_title_is_allowed_before_the_first_chapter(write_script) -> None:
    path = write_script("""
        # Episode three

        ## Chapter
        ALEX: hi
        """)
    script = parse_script(path)
    assert [c.title for c in script.chapters] == ["Chapter"]


def test_crlf_and_bom_are_accepted(tmp_path: Path) -> None:
    text = (FIXTURES / "two_hosts.md").read_text(encoding="utf-8")
    path = tmp_path / "windows.md"
    path.write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode("utf-8"))
    script = parse_script(path)
    assert [t.line for t in script.turns()] == [28, 29, 33, 40, 46]


def test_host_voice_paths_resolve_against_the_script_folder() -> None:
    script = parse_script(FIXTURES / "two_hosts.md")
    assert script.meta.hosts["MAYA"].voice.resolve() == (VOICES / "slt.yaml").resolve()
