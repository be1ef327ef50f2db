"""Bad input: one clear error naming file:line and what to do, and no output written."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest
from conftest import FRONT_LINES, FRONT_MATTER, REPO, VOICES

from pipeline.cli import main
from pipeline.files import atomic_output

BODY = 1 + FRONT_LINES


def render_fails(script: Path, tmp_path: Path, capsys, *extra: str) -> str:
    """Render ``script``; assert it fails and leaves nothing in the output folder."""
    out_dir = tmp_path / "out"
    code = main(["render", str(script), "-o", str(out_dir / "episode.mp3"), "-q", *extra])
    err = capsys.readouterr().err
    assert code != 0
    assert err.startswith("error: "), err
    assert err.count("error:") == 1, err
    # The turn cache may keep what was spoken (a fixed script resumes from it); no output.
    left = [p.name for p in out_dir.iterdir() if p.name != "cache"] if out_dir.exists() else []
    assert left == [], "output left behind"
    return err


def test_unknown_speaker(write_script, tmp_path, capsys) -> None:
    path = write_script("## Chapter\nALEX: hi\n\nBOB: who am I?\n")
    err = render_fails(path, tmp_path, capsys)
    assert f"{path}:{BODY + 3}: unknown speaker 'BOB'" in err
    assert "ALEX, MAYA" in err


def test_empty_turn(write_script, tmp_path, capsys) -> None:
    path = write_script("## Chapter\nALEX: hi\nMAYA:   <!-- nothing to say -->\n")
    err = render_fails(path, tmp_path, capsys)
    assert f"{path}:{BODY + 2}: MAYA's turn has no text" in err


def test_turn_before_first_chapter(write_script, tmp_path, capsys) -> None:
    path = write_script("ALEX: too early\n\n## Chapter\nMAYA: hi\n")
    err = render_fails(path, tmp_path, capsys)
    assert f"{path}:{BODY}: a turn before the first chapter heading" in err
    assert "## Chapter title" in err


def test_stray_text_before_first_chapter(write_script, tmp_path, capsys) -> None:
    path = write_script("Some notes for the producer.\n\n## Chapter\nMAYA: hi\n")
    err = render_fails(path, tmp_path, capsys)
    assert f"{path}:{BODY}: text that is not part of a turn" in err


def test_cue_before_first_chapter(write_script, tmp_path, capsys) -> None:
    path = write_script("[music: intro]\n## Chapter\nMAYA: hi\n")
    err = render_fails(path, tmp_path, capsys)
    assert f"{path}:{BODY}: a cue before the first chapter heading" in err


def test_unclosed_front_matter(write_script, tmp_path, capsys) -> None:
    path = write_script(raw="---\npodcast: X\nepisode: 1\n\n## Chapter\nALEX: hi\n")
    err = render_fails(path, tmp_path, capsys)
    assert f"{path}:1: the front matter opened here is never closed" in err


def test_missing_front_matter(write_script, tmp_path, capsys) -> None:
    path = write_script(raw="## Chapter\nALEX: hi\n")
    err = render_fails(path, tmp_path, capsys)
    assert f"{path}:1: the script must start with YAML front matter" in err


def test_invalid_front_matter_yaml(write_script, tmp_path, capsys) -> None:
    raw = FRONT_MATTER.replace("title: A test", "title: [unclosed") + "## C\nALEX: hi\n"
    path = write_script(raw=raw)
    err = render_fails(path, tmp_path, capsys)
    assert f"{path}:" in err and "invalid YAML" in err
    line = int(err.split(f"{path}:")[1].split(":")[0])
    assert line in (4, 5)  # the flow sequence opened on line 4 is broken by line 5


def test_front_matter_missing_field(write_script, tmp_path, capsys) -> None:
    raw = FRONT_MATTER.replace("episode: 3\n", "") + "## C\nALEX: hi\n"
    err = render_fails(write_script(raw=raw), tmp_path, capsys)
    assert "the front matter has no 'episode' field" in err


def test_front_matter_bad_episode_number(write_script, tmp_path, capsys) -> None:
    raw = FRONT_MATTER.replace("episode: 3", "episode: three") + "## C\nALEX: hi\n"
    path = write_script(raw=raw)
    err = render_fails(path, tmp_path, capsys)
    assert f"{path}:3: 'episode' must be a whole number" in err


def test_front_matter_unknown_field(write_script, tmp_path, capsys) -> None:
    raw = FRONT_MATTER.replace("title: A test", "title: A test\ntitel: typo") + "## C\nALEX: hi\n"
    path = write_script(raw=raw)
    err = render_fails(path, tmp_path, capsys)
    assert f"{path}:5: unknown front-matter field 'titel'" in err


def test_unknown_cue(write_script, tmp_path, capsys) -> None:
    path = write_script("## Chapter\nALEX: hi\n[applause]\n")
    err = render_fails(path, tmp_path, capsys)
    assert f"{path}:{BODY + 2}: unknown cue [applause]" in err
    assert "[pause 1.5s]" in err


@pytest.mark.parametrize(
    "cue", ["pause", "pause 1.5", "pause abc", "pause 0s", "pause -1s", "pause 1.5 sec"]
)
def test_malformed_pause(cue, write_script, tmp_path, capsys) -> None:
    path = write_script(f"## Chapter\nALEX: hi\n[{cue}]\n")
    err = render_fails(path, tmp_path, capsys)
    assert f"{path}:{BODY + 2}: malformed pause duration in [{cue}]" in err


def test_pause_too_long_suggests_milliseconds(write_script, tmp_path, capsys) -> None:
    path = write_script("## Chapter\nALEX: hi\n[pause 500s]\n")
    err = render_fails(path, tmp_path, capsys)
    assert f"{path}:{BODY + 2}: pause of 500s" in err and "milliseconds" in err


def test_unclosed_comment(write_script, tmp_path, capsys) -> None:
    path = write_script("## Chapter\nALEX: hi\n<!-- never closed\n\nMAYA: lost\n")
    err = render_fails(path, tmp_path, capsys)
    assert f"{path}:{BODY + 2}: a comment opened here is never closed" in err


def test_voice_file_missing(write_script, tmp_path, capsys) -> None:
    raw = FRONT_MATTER.replace(str(VOICES / "slt.yaml"), "nowhere/slt.yaml") + "## C\nMAYA: hi\n"
    path = write_script(raw=raw)
    err = render_fails(path, tmp_path, capsys)
    assert f"{path}:12: voice file for MAYA {tmp_path / 'nowhere/slt.yaml'} does not exist" in err


def test_voice_file_unknown_engine(write_script, tmp_path, capsys) -> None:
    voice = tmp_path / "bad.yaml"
    voice.write_text("# a voice\nengine: espeak9000\nrate: 1.0\n", encoding="utf-8")
    raw = FRONT_MATTER.replace(str(VOICES / "slt.yaml"), str(voice)) + "## C\nMAYA: hi\n"
    err = render_fails(write_script(raw=raw), tmp_path, capsys)
    assert f"{voice}:2: unknown engine 'espeak9000'" in err
    assert "known engines: piper, hibari, festival" in err


def test_voice_file_bad_setting(write_script, tmp_path, capsys) -> None:
    voice = tmp_path / "bad.yaml"
    voice.write_text("engine: piper\nrate: fast\n", encoding="utf-8")
    raw = FRONT_MATTER.replace(str(VOICES / "joe.yaml"), str(voice)) + "## C\nALEX: hi\n"
    err = render_fails(write_script(raw=raw), tmp_path, capsys)
    assert f"{voice}:2: 'rate' must be a number" in err


def _path_without(tmp_path: Path, *programs: str) -> str:
    """A PATH holding only links to ``programs`` (so everything else is 'not installed')."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for program in programs:
        found = shutil.which(program)
        assert found, f"{program} is needed for this test"
        (bin_dir / program).symlink_to(found)
    return str(bin_dir)


def test_engine_program_missing(write_script, tmp_path, capsys, monkeypatch) -> None:
    path = write_script("## Chapter\nMAYA: hi\n")
    monkeypatch.setenv("PATH", _path_without(tmp_path, "ffmpeg"))
    err = render_fails(path, tmp_path, capsys)
    assert f"{VOICES / 'slt.yaml'}:3: Festival is not installed" in err
    assert "apt-get install festival festvox-us-slt-hts" in err


def test_ffmpeg_missing(write_script, tmp_path, capsys, monkeypatch) -> None:
    path = write_script("## Chapter\nMAYA: hi\n")
    monkeypatch.setenv("PATH", _path_without(tmp_path, "festival", "text2wave"))
    err = render_fails(path, tmp_path, capsys)
    assert "ffmpeg is not installed" in err and "apt-get install ffmpeg" in err


def test_engine_fails_on_a_turn(write_script, tmp_path, capsys, monkeypatch) -> None:
    """text2wave exiting non-zero on the third turn: the error names that turn's line."""
    bin_dir = Path(_path_without(tmp_path, "ffmpeg", "festival"))
    real = shutil.which("text2wave")
    wrapper = bin_dir / "text2wave"
    # A text2wave that breaks on one particular input and is the real one otherwise.
    wrapper.write_text(
        "#!/bin/sh\n"
        "input=$(cat)\n"
        'case "$input" in *explode*) echo "SIOD ERROR: damaged utterance" >&2; exit 3;; esac\n'
        f'printf "%s" "$input" | exec {real} "$@"\n',
        encoding="utf-8",
    )
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    path = write_script("## Chapter\nMAYA: one\n\nALEX: two\n\nMAYA: this will explode\n")
    err = render_fails(path, tmp_path, capsys)
    assert f"{path}:{BODY + 5}: the festival engine failed on MAYA's turn" in err
    assert "SIOD ERROR: damaged utterance" in err


def test_a_turn_of_punctuation_alone_is_refused_before_synthesis(
    write_script, tmp_path, capsys
) -> None:
    """Piper would say nothing for it: the turn is named before anything is spoken."""
    path = write_script("## Chapter\nMAYA: fine\n\nALEX: ...\n")
    err = render_fails(path, tmp_path, capsys)
    assert f"{path}:{BODY + 3}: ALEX's turn has no words to say" in err


def test_script_not_utf8(write_script, tmp_path, capsys) -> None:
    raw = (FRONT_MATTER + "## Chapter\nALEX: caf\xe9\n").encode("latin-1")
    path = write_script(raw=raw)
    err = render_fails(path, tmp_path, capsys)
    assert f"{path}:{BODY + 1}: the script is not UTF-8" in err


def test_script_missing(tmp_path, capsys) -> None:
    err = render_fails(tmp_path / "nope.md", tmp_path, capsys)
    assert "nope.md: script not found" in err


def test_unknown_voice_override_speaker(write_script, tmp_path, capsys) -> None:
    path = write_script("## Chapter\nALEX: hi\n")
    err = render_fails(path, tmp_path, capsys, "--voice", f"BOB={VOICES / 'slt.yaml'}")
    assert "--voice names unknown speaker 'BOB'" in err


def test_atomic_output_leaves_nothing_on_failure(tmp_path) -> None:
    target = tmp_path / "episode.mp3"
    with pytest.raises(RuntimeError), atomic_output(target) as tmp:
        tmp.write_bytes(b"half an mp3")
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_atomic_output_replaces_only_when_complete(tmp_path) -> None:
    target = tmp_path / "episode.mp3"
    target.write_bytes(b"previous episode")
    with atomic_output(target) as tmp:
        tmp.write_bytes(b"new episode")
        assert target.read_bytes() == b"previous episode"
    assert target.read_bytes() == b"new episode"
    assert [p.name for p in tmp_path.iterdir()] == ["episode.mp3"]


MUSIC = REPO / "assets" / "music" / "music.yaml"


def test_music_cue_without_a_library(write_script, tmp_path, capsys) -> None:
    path = write_script("## Chapter\n[music: intro]\nALEX: hi\n")
    err = render_fails(path, tmp_path, capsys)
    assert f"{path}:{BODY + 1}: [music: intro] but the script names no music library" in err
    assert "music: ../assets/music/music.yaml" in err


def test_unknown_music_piece(write_script, tmp_path, capsys) -> None:
    raw = FRONT_MATTER.replace("hosts:", f"music: {MUSIC}\nhosts:", 1)
    path = write_script(raw=raw + "## Chapter\nALEX: hi\n[music: jingle]\n")
    err = render_fails(path, tmp_path, capsys)
    assert f"{path}:{BODY + 3}: no music called 'jingle'" in err
    assert "pieces: intro, outro, sting" in err


def test_missing_music_library(write_script, tmp_path, capsys) -> None:
    raw = FRONT_MATTER.replace("hosts:", "music: nowhere/music.yaml\nhosts:", 1)
    err = render_fails(write_script(raw=raw + "## Chapter\nALEX: hi\n"), tmp_path, capsys)
    assert "music library" in err and "nowhere/music.yaml does not exist" in err
    assert "make music" in err


def test_missing_cover(write_script, tmp_path, capsys) -> None:
    raw = FRONT_MATTER.replace("hosts:", "cover: nowhere.jpg\nhosts:", 1)
    err = render_fails(write_script(raw=raw + "## Chapter\nALEX: hi\n"), tmp_path, capsys)
    assert "cover art" in err and "nowhere.jpg does not exist" in err


def test_bad_date(write_script, tmp_path, capsys) -> None:
    raw = FRONT_MATTER.replace("hosts:", "date: next Tuesday\nhosts:", 1)
    path = write_script(raw=raw + "## Chapter\nALEX: hi\n")
    err = render_fails(path, tmp_path, capsys)
    assert f"{path}:6: 'date' must be a date written YYYY-MM-DD" in err
