"""Incremental and resumable rendering: the turn cache, counted engine calls, a render
stopped with SIGINT and resumed, and a corrupted cache entry."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import FIXTURES, FRONT_MATTER, REPO, decode
from mutagen import id3

from pipeline.audio import Audio
from pipeline.cache import TurnCache, project_cache
from pipeline.mp3 import split_frames
from pipeline.production import prepare
from pipeline.render import render
from pipeline.speech import Utterance
from pipeline.synthesize import plan_pools, synthesize

SCRIPT = FIXTURES / "two_hosts.md"


@dataclass
class Counting:
    """A real engine, with its calls counted."""

    engine: object
    calls: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.engine.name

    @property
    def phoneme_set(self):
        return self.engine.phoneme_set

    @property
    def lexicon_mode(self):
        return self.engine.lexicon_mode

    @property
    def fingerprint(self) -> str:
        return self.engine.fingerprint

    @property
    def scratch_mb_per_char(self) -> float:
        return self.engine.scratch_mb_per_char

    def synthesize(self, text: str) -> Audio:
        self.calls.append(text)
        return self.engine.synthesize(text)


def counted(production) -> dict[str, Counting]:
    return {speaker: Counting(engine) for speaker, engine in production.engines.items()}


def run(production, engines, cache, utterances=None):
    return synthesize(
        utterances or production.utterances, engines, production.script.path, cache=cache
    )


def test_only_the_edited_turn_is_spoken_again(tmp_path) -> None:
    production = prepare(SCRIPT)
    cache = TurnCache(tmp_path / "cache")
    engines = counted(production)
    first = run(production, engines, cache)
    assert sum(len(e.calls) for e in engines.values()) == 6  # a call per sentence
    edited = list(production.utterances)
    turn = edited[2]
    edited[2] = Utterance(
        turn.turn, tuple(s.replace("first", "second") for s in turn.sentences), turn.words
    )
    engines = counted(production)
    second = run(production, engines, cache, edited)
    assert [c for e in engines.values() for c in e.calls] == list(edited[2].sentences)
    for index in (0, 1, 3, 4):  # the others come from the cache, sample for sample
        assert np.array_equal(first[index].audio.samples, second[index].audio.samples)


def test_an_edited_turn_speaks_only_its_new_sentences(tmp_path) -> None:
    """A sentence some cached turn holds is taken from it: the edited turn speaks only
    what is new, and sounds sample for sample as if spoken whole (same gain, same spans).
    A sentence whose turn has left the cache is spoken again."""
    production = prepare(SCRIPT)
    cache = TurnCache(tmp_path / "cache")
    run(production, counted(production), cache)
    edited = list(production.utterances)
    turn = next(i for i, u in enumerate(edited) if len(u.sentences) >= 2)
    old = edited[turn]
    added = ("And one more thing.",)
    edited[turn] = Utterance(old.turn, old.sentences + added, old.words)
    engines = counted(production)
    reused = run(production, engines, cache, edited)[turn]
    assert [c for e in engines.values() for c in e.calls] == list(added)
    whole = run(production, counted(production), None, edited)[turn]
    assert np.array_equal(reused.audio.samples, whole.audio.samples)
    assert (reused.gain_db, reused.sentences) == (whole.gain_db, whole.sentences)
    for entry in (tmp_path / "cache").rglob("*.f32"):  # every turn gone, pointers left
        entry.unlink()
    engines = counted(production)
    run(production, engines, cache, edited)
    assert sum(len(e.calls) for e in engines.values()) == 6 + len(added)


def test_a_changed_voice_renders_only_that_host_again(tmp_path) -> None:
    cache = TurnCache(tmp_path / "cache")
    production = prepare(SCRIPT)
    run(production, counted(production), cache)
    faster = tmp_path / "slt-fast.yaml"
    faster.write_text(
        (REPO / "voices" / "slt.yaml").read_text().replace("rate: 0.95", "rate: 1.1"),
        encoding="utf-8",
    )
    production = prepare(SCRIPT, {"MAYA": faster})
    engines = counted(production)
    run(production, engines, cache)
    assert engines["ALEX"].calls == []
    assert len(engines["MAYA"].calls) == 3  # MAYA's three sentences, nothing of ALEX's


def test_a_corrupted_entry_is_detected_and_spoken_again(tmp_path) -> None:
    production = prepare(SCRIPT)
    cache = TurnCache(tmp_path / "cache")
    first = run(production, counted(production), cache)
    # As heard now: turns are memory maps of their entries, and the entry is damaged in
    # place below (the cache itself only ever replaces whole files).
    heard = [np.array(turn.audio.samples) for turn in first]
    data = sorted((tmp_path / "cache").rglob("*.f32"))[0]
    raw = bytearray(data.read_bytes())
    raw[100:104] = b"\x00\x01\x02\x03"
    data.write_bytes(bytes(raw))
    engines = counted(production)
    again = run(production, engines, cache)
    assert sum(len(e.calls) for e in engines.values()) == 1
    for before, after in zip(heard, again, strict=True):
        assert np.array_equal(before, after.audio.samples)
    # A half-written entry (data but no record) is never served either.
    (data.with_suffix(".json")).unlink()
    assert cache.get(data.stem) is None


@pytest.mark.slow
def test_parallel_synthesis_matches_one_process(tmp_path) -> None:
    production = prepare(SCRIPT)
    alone = synthesize(production.utterances, production.engines, production.script.path)
    together = synthesize(
        production.utterances,
        production.engines,
        production.script.path,
        voices=production.voices,
        workers=2,
    )
    for a, b in zip(alone, together, strict=True):
        assert np.array_equal(a.audio.samples, b.audio.samples)


def test_each_voice_gets_its_own_workers(tmp_path) -> None:
    """A worker loads only the engines of the turns it is given, so memory stays at one
    engine per worker; spare workers go to the voice with the most text."""
    voice = {name: SimpleNamespace(path=tmp_path / f"{name}.yaml") for name in "abc"}
    texts = [("A", "x" * 300), ("B", "y" * 100), ("A", "x" * 300), ("C", "z")]
    said = [SimpleNamespace(turn=SimpleNamespace(speaker=s), text=t) for s, t in texts]
    two = {"A": voice["a"], "B": voice["b"]}
    assert plan_pools(said, [0, 1, 2], two, 2) == [(["A"], 1, [0, 2]), (["B"], 1, [1])]
    assert plan_pools(said, [0, 1, 2], two, 4) == [(["A"], 3, [0, 2]), (["B"], 1, [1])]
    assert plan_pools(said, [1], two, 2) == [(["B"], 2, [1])]  # only B has work to do
    shared = {"A": voice["a"], "B": voice["a"]}  # two hosts, one voice file: one engine
    assert plan_pools(said, [0, 1], shared, 2) == [(["A", "B"], 2, [0, 1])]
    three = {"A": voice["a"], "B": voice["b"], "C": voice["c"]}
    assert plan_pools(said, [0, 1, 3], three, 2) == [(["A", "B", "C"], 2, [0, 1, 3])]


GATED_TEXT2WAVE = """\
#!/bin/sh
input=$(cat)
case "$input" in
  *"Stop here"*) touch "$GATE.reached"; while [ -e "$GATE" ]; do sleep 0.05; done;;
esac
printf "%s" "$input" | exec {real} "$@"
"""


@pytest.mark.slow
def test_a_render_stopped_with_sigint_resumes_to_the_same_episode(tmp_path) -> None:
    """Deterministic: the last turn (the shortest, spoken last by one worker) waits at a
    gate, so Ctrl-C always lands with exactly the other three turns cached."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "text2wave"
    wrapper.write_text(GATED_TEXT2WAVE.format(real=shutil.which("text2wave")), encoding="utf-8")
    wrapper.chmod(0o755)
    gate = tmp_path / "gate"
    gate.touch()
    script = tmp_path / "ep.md"
    script.write_text(
        FRONT_MATTER
        + "## Chapter\n"
        + "ALEX: This is the first turn, and it is the longest of them all by far.\n\n"
        + "ALEX: This is the second turn, a little shorter than that.\n\n"
        + "ALEX: And this is the third one, shorter still.\n\n"
        + "MAYA: Stop here.\n",
        encoding="utf-8",
    )
    cache = tmp_path / "cache"
    out = tmp_path / "out" / "episode.mp3"
    args = [sys.executable, "-m", "pipeline", "render", str(script), "-o", str(out), "-q"]
    args += ["--cache", str(cache), "--workers", "1"]
    env = os.environ | {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "GATE": str(gate)}
    render = subprocess.Popen(
        args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    reached = Path(f"{gate}.reached")
    deadline = time.monotonic() + 120
    while not reached.exists():
        assert render.poll() is None and time.monotonic() < deadline, render.stderr
        time.sleep(0.02)
    render.send_signal(signal.SIGINT)
    _, err = render.communicate(timeout=30)
    assert render.returncode == 130, err
    assert "run the same command again to resume" in err
    assert not out.exists()
    assert len(list(cache.rglob("*.f32"))) == 3  # the three turns before the gate
    gate.unlink()
    resumed = subprocess.run(args, cwd=REPO, capture_output=True, text=True, env=env, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert len(list(cache.rglob("*.f32"))) == 4  # only the gated turn was spoken again
    whole = tmp_path / "whole" / "episode.mp3"
    straight = [sys.executable, "-m", "pipeline", "render", str(script), "-o", str(whole)]
    done = subprocess.run(
        [*straight, "-q", "--no-cache"], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert np.array_equal(decode(out), decode(whole))  # identical in content


def audio_frames(path: Path) -> list[bytes]:
    """The MP3's audio frames: after its ID3 tag and its Info frame."""
    return split_frames(path.read_bytes()[id3.ID3(path).size :])[1:]


LINES = [
    "ALEX: Welcome back to the show, where we read the fine print.",
    "MAYA: Today the fine print is about a chip the size of a plate.",
    "ALEX: Then this turn changes.",
    "MAYA: Every turn after it should keep its frames in the file.",
    "ALEX: Because each one lands a whole number of frames later.",
    "MAYA: And the encoder is cut before some of them, in the silence.",
    "ALEX: Which ones is chosen by what they say, not by where they are.",
    "MAYA: So an edit here does not move the cuts that come after it.",
    "ALEX: That is the whole trick, and it saves the rest of the encode.",
]


@pytest.mark.slow
def test_an_edit_encodes_only_the_segments_it_changed(write_script, tmp_path) -> None:
    """After an edit inside a chapter, only the segment the edit is in is encoded again:
    the turns after it moved by whole frames, keep their frames byte for byte and come
    from the cache, as does everything before it."""
    cache, out = tmp_path / "cache", tmp_path / "out" / "episode.mp3"
    first = render(write_script("## One\n" + "\n".join(LINES)), out, cache=cache)
    parts = first.segments_encoded + first.segments_reused
    assert parts >= 3  # cut before some turns, not all
    assert first.segments_reused <= first.segments_ahead  # only what was encoded ahead
    before = audio_frames(out)
    lines = [*LINES[:2], "ALEX: And now this turn has changed, and it is longer.", *LINES[3:]]
    edited = render(write_script("## One\n" + "\n".join(lines)), out, cache=cache)
    assert edited.mastering.passes == 1  # the last render's gain still meets the target
    assert edited.segments_encoded <= 2 and edited.segments_reused >= parts - 2
    after = audio_frames(out)
    same_start = next(i for i, (a, b) in enumerate(zip(before, after, strict=False)) if a != b)
    backwards = zip(before[::-1], after[::-1], strict=False)
    same_end = next(i for i, (a, b) in enumerate(backwards) if a != b)
    assert len(after) - same_start - same_end < len(after) / 2  # the edited stretch
    assert same_end > len(after) / 3  # the turns after it: the same frames


def test_a_turn_said_again_word_for_word_is_spoken_once(write_script) -> None:
    """With or without a cache: the second "Thanks." is the first one's audio."""
    script = write_script("## A\nALEX: Thanks.\nMAYA: You are welcome.\nALEX: Thanks.\n")
    production = prepare(script)
    for cache in (None, TurnCache(script.parent / "cache")):
        engines = counted(production)
        spoken = run(production, engines, cache)
        assert engines["ALEX"].calls == ["Thanks."]
        assert spoken[0].audio is spoken[2].audio and spoken[0].key == spoken[2].key


def test_one_cache_per_project_whatever_the_output_folder(tmp_path) -> None:
    show = tmp_path / "show"
    (show / "scripts" / "season-1").mkdir(parents=True)
    (show / "podcast.yaml").write_text("title: x\n", encoding="utf-8")
    script = show / "scripts" / "season-1" / "ep1.md"
    assert project_cache(script) == (show / "build" / "cache").resolve()
    loose = tmp_path / "loose" / "ep.md"
    loose.parent.mkdir()
    assert project_cache(loose) == (tmp_path / "loose" / "build" / "cache").resolve()
    assert project_cache(SCRIPT) == REPO / "build" / "cache"  # the fixture: this project's


def test_an_unchanged_render_does_nothing_and_says_so(write_script, tmp_path) -> None:
    """Run as a user runs it, in a fresh process: with every file it read unchanged, its
    outputs in place and the same options, a render writes nothing and says the episode
    is up to date; a changed input, a lost output or another voice renders again."""
    lexicon = tmp_path / "lexicon.yaml"
    lexicon.write_text("Hello: {ipa: həlˈoʊ, respell: heh low}\n", encoding="utf-8")
    script = write_script(
        raw=FRONT_MATTER.replace("hosts:", f"lexicon: {lexicon}\nhosts:")
        + "## One\nALEX: Hello there.\nMAYA: Hi.\n"
    )
    out = tmp_path / "out" / "ep.mp3"
    args = [sys.executable, "-m", "pipeline", "render", str(script), "-o", str(out)]
    args += ["--cache", str(tmp_path / "cache"), "-q"]

    def render_again(*extra: str) -> str:
        done = subprocess.run([*args, *extra], capture_output=True, text=True, check=True)
        return done.stdout

    assert "wrote" in render_again()
    written = {path: path.stat().st_mtime_ns for path in out.parent.iterdir()}
    assert len(written) == 10  # the MP3, the Opus file and what goes beside them
    assert "is up to date" in render_again()
    assert {path: path.stat().st_mtime_ns for path in out.parent.iterdir()} == written
    os.utime(script)  # touched, not changed: its content is the same
    assert "is up to date" in render_again()

    lexicon.write_text("Hello: {ipa: hɛlˈoʊ, respell: hell oh}\n", encoding="utf-8")  # named
    assert "wrote" in render_again()
    assert "is up to date" in render_again()
    out.with_suffix(".srt").unlink()  # an output lost
    assert "wrote" in render_again() and out.with_suffix(".srt").is_file()
    assert "wrote" in render_again("--voice", f"ALEX={REPO / 'voices' / 'slt.yaml'}")
    assert "wrote" in render_again()  # back to the script's own voices
    assert "wrote" in render_again("--no-cache")
    # Another script (the same words in another file) to the same output is rendered.
    other = script.with_name("other.md")
    other.write_text(script.read_text(encoding="utf-8"), encoding="utf-8")
    args[4] = str(other)
    assert "wrote" in render_again()
