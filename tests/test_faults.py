"""Faults and kills (issue 13's audit), on real processes with real signals: a stuck or
broken engine (a fake Festival on PATH), Ctrl-C, SIGTERM and SIGKILL, a kill in the middle
of replacing the outputs. After each: one clear error or a documented recovery, no
orphaned process, no leftover temporary file, and a complete output set."""

from __future__ import annotations

import base64
import io
import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import numpy as np
import pytest
import soundfile
from conftest import FRONT_LINES, FRONT_MATTER, REPO, VOICES
from servers import free_port

from pipeline import workers
from pipeline.errors import PipelineError
from pipeline.files import TEMPORARY, file_digest
from pipeline.outputs import OutputSet
from pipeline.render import render
from pipeline.serve import serving

BODY = 1 + FRONT_LINES
TURNS = "## Chapter\nALEX: Hello there, and welcome.\n\nMAYA: Thank you, it is good to be here.\n"
STUCK = "987654"  # the fake engine's sleep: how its processes are found afterwards

FAKE_FESTIVAL = """\
#!/bin/sh
case "$FAKE_FESTIVAL" in hang-load) exec sleep {stuck};; esac
case "$1" in
  --version) echo "festival: fake 1.0";;
  *) echo "(cmu_us_slt_arctic_hts)";;
esac
"""
FAKE_TEXT2WAVE = """\
#!/bin/sh
out=""
while [ $# -gt 0 ]; do case "$1" in -o) out="$2"; shift 2;; *) shift;; esac; done
cat > /dev/null
case "$FAKE_TEXT2WAVE" in
  hang) sleep {stuck} & wait;;
  garbage) printf 'RIFF\\044\\000\\000\\000WAVEfmt garbage' > "$out";;
  silent) printf '%s' "$SILENT_WAV" | base64 -d > "$out";;
esac
"""


@pytest.fixture
def fake_festival(tmp_path) -> Path:
    """A folder with a fake ``festival`` and ``text2wave``; modes by environment."""
    folder = tmp_path / "fakebin"
    folder.mkdir()
    for name, text in (("festival", FAKE_FESTIVAL), ("text2wave", FAKE_TEXT2WAVE)):
        program = folder / name
        program.write_text(text.format(stuck=STUCK), encoding="utf-8")
        program.chmod(program.stat().st_mode | stat.S_IEXEC)
    return folder


def festival_script(tmp_path: Path, timeout: float) -> Path:
    voice = tmp_path / "slow.yaml"
    voice.write_text(f"engine: festival\ntimeout: {timeout}\n", encoding="utf-8")
    script = tmp_path / "ep.md"
    front = FRONT_MATTER.replace(str(VOICES / "slt.yaml"), str(voice))
    script.write_text(front + TURNS, encoding="utf-8")
    return script


def marked(mark: str) -> list[int]:
    """Live processes whose environment carries ``mark`` (a run and all it started)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if f"RUN_MARK={mark}".encode() in environ.split(b"\0") and state != "Z":
            found.append(int(entry.name))
    return found


def start(args: list[str], env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    """``python -m pipeline ARGS`` as a process of its own, marked for finding later."""
    mark = uuid.uuid4().hex
    environment = os.environ | (env or {}) | {"RUN_MARK": mark}
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline", *args],
        cwd=REPO,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # like a shell job: its own group, as a terminal makes
    )
    return process, mark


def wait_for(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def stuck_engines(mark: str) -> list[int]:
    return [pid for pid in marked(mark) if STUCK in Path(f"/proc/{pid}/cmdline").read_text()]


def no_temporaries(folder: Path) -> None:
    left = [p.name for p in folder.rglob(".*") if TEMPORARY.match(p.name) or p.suffix == ".part"]
    assert left == [], left


@pytest.mark.slow
def test_a_stuck_engine_fails_the_render_at_its_turn_in_bounded_time(
    fake_festival, tmp_path
) -> None:
    script = festival_script(tmp_path, timeout=2)
    out = tmp_path / "out" / "episode.mp3"
    env = {"PATH": f"{fake_festival}:{os.environ['PATH']}", "FAKE_TEXT2WAVE": "hang"}
    started = time.monotonic()
    process, mark = start(["render", str(script), "-o", str(out), "-q"], env)
    _, err = process.communicate(timeout=90)
    took = time.monotonic() - started
    assert process.returncode == 1, err
    assert f"{script}:{BODY + 3}: the festival engine failed on MAYA's turn" in err, err
    assert "took longer than 2 s" in err or "no progress for 7 s" in err, err
    assert "Traceback" not in err
    assert took < 40, took  # start-up, the other host's worker, 2 s, and the stop
    wait_for(lambda: not marked(mark), 5, "every process the render started to end")
    no_temporaries(out.parent)
    assert not out.exists()


def test_a_festival_stuck_at_load_is_an_error_at_its_voice_file(fake_festival, tmp_path) -> None:
    script = festival_script(tmp_path, timeout=2)
    env = {"PATH": f"{fake_festival}:{os.environ['PATH']}", "FAKE_FESTIVAL": "hang-load"}
    started = time.monotonic()
    process, mark = start(["check", str(script)], env)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 1
    assert f"{tmp_path / 'slow.yaml'}:1: Festival did not answer within 2 s" in err, err
    assert "Traceback" not in err and time.monotonic() - started < 20
    wait_for(lambda: not marked(mark), 5, "the stuck festival to be killed")


def test_an_engine_that_writes_a_broken_wav_is_an_error_at_its_turn(
    fake_festival, tmp_path
) -> None:
    script = festival_script(tmp_path, timeout=10)
    env = {"PATH": f"{fake_festival}:{os.environ['PATH']}", "FAKE_TEXT2WAVE": "garbage"}
    process, _ = start(["render", str(script), "-o", str(tmp_path / "o" / "e.mp3"), "-q"], env)
    _, err = process.communicate(timeout=90)
    assert process.returncode == 1
    assert (
        f"{script}:{BODY + 3}: the festival engine failed on MAYA's turn: text2wave wrote a "
        "WAV that cannot be read" in err
    ), err
    assert "Traceback" not in err


def test_an_engine_that_says_nothing_is_an_error_at_its_turn(fake_festival, tmp_path) -> None:
    silent = io.BytesIO()
    soundfile.write(silent, np.zeros(0, dtype=np.float32), 16_000, format="WAV")
    script = festival_script(tmp_path, timeout=10)
    env = {
        "PATH": f"{fake_festival}:{os.environ['PATH']}",
        "FAKE_TEXT2WAVE": "silent",
        "SILENT_WAV": base64.b64encode(silent.getvalue()).decode(),
    }
    process, _ = start(["render", str(script), "-o", str(tmp_path / "o" / "e.mp3"), "-q"], env)
    _, err = process.communicate(timeout=90)
    assert process.returncode == 1
    assert f"{script}:{BODY + 3}: the festival engine produced no sound for MAYA's turn" in err


@pytest.mark.parametrize(
    ("signum", "code", "said"),
    [
        (signal.SIGINT, 130, "interrupted"),
        (signal.SIGTERM, 143, "stopped by SIGTERM"),
    ],
)
@pytest.mark.slow
def test_ctrl_c_and_sigterm_stop_a_stuck_render_within_seconds(
    signum, code, said, fake_festival, tmp_path
) -> None:
    script = festival_script(tmp_path, timeout=600)
    out = tmp_path / "out" / "episode.mp3"
    env = {"PATH": f"{fake_festival}:{os.environ['PATH']}", "FAKE_TEXT2WAVE": "hang"}
    process, mark = start(["render", str(script), "-o", str(out), "-q"], env)
    wait_for(lambda: stuck_engines(mark), 60, "the engine to get stuck")
    sent = time.monotonic()
    process.send_signal(signum)  # to the render alone, as `timeout` or systemd sends it
    _, err = process.communicate(timeout=30)
    assert time.monotonic() - sent < 5
    assert process.returncode == code, err
    assert said in err and "Traceback" not in err, err
    wait_for(lambda: not marked(mark), 5, "workers and the stuck engine to be gone")
    no_temporaries(out.parent)


@pytest.mark.slow
def test_workers_die_with_a_render_killed_by_sigkill(tmp_path) -> None:
    """Real Piper and hibari workers (hundreds of MB each) exit when their render is
    SIGKILLed: nothing is left blocked."""
    script = tmp_path / "ep.md"
    front = FRONT_MATTER.replace(str(VOICES / "slt.yaml"), str(VOICES / "heart.yaml"))
    turns = "".join(
        f"ALEX: This is turn number {n}, and it has a few words to say.\n\n"
        f"MAYA: And this is my answer to turn {n}, which is also long enough.\n\n"
        for n in range(1, 40)
    )
    script.write_text(front + "## Chapter\n" + turns, encoding="utf-8")
    process, mark = start(["render", str(script), "-o", str(tmp_path / "o" / "e.mp3"), "-q"])
    wait_for(lambda: len(marked(mark)) >= 3, 60, "the render and its two workers")
    time.sleep(2)  # the workers are loaded and speaking
    os.kill(process.pid, signal.SIGKILL)
    process.communicate(timeout=10)
    wait_for(lambda: not marked(mark), 5, "the workers to die with their render")


COMMIT_KILL = """\
import os, signal, sys
from pathlib import Path
import pipeline.outputs as outputs
from pipeline.render import render

moves = []
real = os.replace
def replace(src, dst):
    if {when!r} == "before-record" and str(dst).endswith(".commit.json"):
        os.kill(os.getpid(), signal.SIGKILL)
    real(src, dst)
    if {when!r} == "after-mp3" and Path(dst) == Path(sys.argv[2]):  # not a cached segment
        os.kill(os.getpid(), signal.SIGKILL)
outputs.os.replace = replace
import pipeline.files as files
files.os.replace = replace
if __name__ == "__main__":
    render(Path(sys.argv[1]), Path(sys.argv[2]), cache=Path(sys.argv[3]))
"""


def snapshot(outputs: OutputSet) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in outputs.files() if path.is_file()}


@pytest.mark.parametrize("when", ["before-record", "after-mp3"])
@pytest.mark.slow
def test_a_kill_while_replacing_the_outputs_leaves_one_complete_set(
    when, write_script, tmp_path
) -> None:
    first = write_script(TURNS)
    out, cache = tmp_path / "out" / "episode.mp3", tmp_path / "cache"
    render(first, out, cache=cache)
    outputs = OutputSet(out)
    before = snapshot(outputs)
    assert len(before) == len(outputs.files())
    second = write_script(TURNS.replace("Hello there", "Hello again"), name="ep2.md")
    runner = tmp_path / "kill_during_commit.py"
    runner.write_text(COMMIT_KILL.format(when=when), encoding="utf-8")
    killed = subprocess.run(
        [sys.executable, str(runner), str(second), str(out), str(cache)],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=os.environ | {"PYTHONPATH": str(REPO)},
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    if when == "before-record":
        assert snapshot(outputs) == before  # the previous set, untouched
        assert not outputs.journal.exists()
    else:
        assert outputs.journal.exists()  # the commit is on record: the next command ends it
    outputs.recover()
    after = snapshot(outputs)
    assert set(after) == set(before)
    manifest = json.loads(outputs.manifest.read_text(encoding="utf-8"))
    assert manifest["mp3"]["sha256"] == file_digest(outputs.mp3)  # one set, not a mix
    timeline = json.loads(outputs.timeline.read_text(encoding="utf-8"))
    texts = [turn["text"] for turn in timeline["turns"]]
    assert texts[0] == (
        "Hello there, and welcome." if when == "before-record" else "Hello again, and welcome."
    )
    no_temporaries(out.parent)


@pytest.mark.slow
def test_leftovers_of_dead_runs_are_swept_and_live_ones_kept(write_script, tmp_path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    folder = tmp_path / "out"
    folder.mkdir()
    stale = [
        folder / f".episode.mp3.{dead.pid}-0123abcd.part",
        folder / f".mp3.{dead.pid}-89abcdef.tmp",
    ]
    stale[0].write_bytes(b"half an mp3")
    stale[1].mkdir()
    (stale[1] / "frames.mp3").write_bytes(b"frames")
    live = folder / f".episode.vtt.{os.getpid()}-0123abcd.part"
    live.write_bytes(b"another run's file, still being written")
    render(write_script(TURNS), folder / "episode.mp3", cache=tmp_path / "cache")
    assert not any(path.exists() for path in stale)
    assert live.exists()
    live.unlink()
    no_temporaries(folder)


@pytest.mark.slow
def test_a_cache_and_state_of_the_wrong_shape_are_made_again(write_script, tmp_path) -> None:
    script = write_script(TURNS)
    out, cache = tmp_path / "out" / "episode.mp3", tmp_path / "cache"
    render(script, out, cache=cache)
    first = out.read_bytes()
    records = [p for p in cache.rglob("*.json")]
    assert records
    for number, record in enumerate(records):
        record.write_text(["null\n", "[]\n", '{"sha256": 1}\n'][number % 3], encoding="utf-8")
    again = render(script, out, cache=cache)  # twice: a bad record once made is made again
    again = render(script, out, cache=cache)
    assert again.mastering.passes == 0 and out.read_bytes() == first


@pytest.mark.servers
def test_serve_hides_dotfiles(tmp_path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("<p>hi</p>")
    (site / ".manifest.json").write_text("{}")
    (site / ".feed.xml.123-0123abcd.part").write_text("half")
    with serving(site, free_port()) as url:
        assert urllib.request.urlopen(f"{url}index.html").status == 200
        for name in (".manifest.json", ".feed.xml.123-0123abcd.part"):
            with pytest.raises(urllib.error.HTTPError) as caught:
                urllib.request.urlopen(f"{url}{name}")
            assert caught.value.code == 404


def _nap(seconds: float, *, progress) -> str:
    time.sleep(seconds)  # a stuck engine: no progress
    return "woke"


def _crash(*, progress) -> None:
    os._exit(3)  # a worker that dies in a job, as an engine's segfault would


def _no_setup() -> None:
    raise PipelineError("the voice will not load", path=Path("v.yaml"), line=2)


def _ready() -> None:
    pass


def _whose(*, progress) -> int:
    return os.getpid()


def test_a_worker_started_ahead_is_taken_by_the_run_or_ended_unused() -> None:
    """A spare started while the script is read (``LocalWorkers.warmed``) runs the first
    job, loaded with its group's setup; one no run took is ended on the way out."""
    local = workers.LocalWorkers(1)
    group = workers.Group(_ready, (), 1, 30.0)
    with local.warmed(("json",)):
        spare = local.spares.idle[0][0]
        done = dict(local.run([group], [workers.Job(0, 0, _whose, (), 30.0)]))
        assert done == {0: spare.pid} and local.spares.idle == []
    with local.warmed(("json",)):
        unused = local.spares.idle[0][0]
        assert unused.is_alive()
    assert not unused.is_alive() and unused.exitcode is not None


@pytest.mark.slow
def test_render_watch_renders_each_edit_with_its_voices_kept_loaded(tmp_path) -> None:
    """``render --watch``: an edit is rendered as a plain render of the edited script
    renders it (the same timeline: every turn's audio and place), by the workers kept
    from before (alive while idle); a broken edit is an error at its line and the watch
    goes on; Ctrl-C ends the watch and its workers."""
    script, out = tmp_path / "ep.md", tmp_path / "o" / "e.mp3"
    script.write_text(FRONT_MATTER + TURNS, encoding="utf-8")
    args = ["render", "--watch", str(script), "-o", str(out), "--cache", str(tmp_path / "c")]
    process, mark = start([*args, "-q"])
    said: list[str] = []
    reader = threading.Thread(target=lambda: said.extend(process.stdout), daemon=True)
    errors: list[str] = []
    threading.Thread(target=lambda: errors.extend(process.stderr), daemon=True).start()
    reader.start()

    def rendered(count: int) -> None:
        wait_for(lambda: sum("rendered in" in line for line in said) >= count, 120, "a render")

    try:
        rendered(1)
        workers_before = set(marked(mark)) - {process.pid}
        assert workers_before  # a worker a voice, kept loaded
        script.write_text(FRONT_MATTER + TURNS.replace("welcome.", "welcome. Twice."), "utf-8")
        rendered(2)
        assert set(marked(mark)) - {process.pid} == workers_before  # the same worker
        watched = out.with_suffix(".timeline.json").read_text(encoding="utf-8")
        script.write_text(FRONT_MATTER + TURNS + "BOB: Who?\n", encoding="utf-8")
        wait_for(lambda: any(f"{script}:" in line for line in errors), 60, "the error")
        assert process.poll() is None
        script.write_text(FRONT_MATTER + TURNS.replace("welcome.", "welcome. Twice."), "utf-8")
        plain = tmp_path / "plain" / "e.mp3"
        render(script, plain, cache=tmp_path / "c")  # every turn, placed as the watch did
        assert plain.with_suffix(".timeline.json").read_text(encoding="utf-8") == watched
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
    wait_for(lambda: not marked(mark), 10, "the watch's workers to end")
    wait_for(lambda: any("watch ended" in line for line in errors), 10, "the watch's last word")
    assert not any("run the same command again" in line for line in errors)


def _note_setup(path: str) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(f"{os.getpid()}\n")


def test_kept_workers_serve_the_next_run_without_setting_up_again(tmp_path) -> None:
    """``render --watch`` keeps its workers: the next run's job runs in the same process,
    set up once; a group set up otherwise gets a worker of its own; closing ends them."""
    spares = workers.Spares(keep=True)
    local = workers.LocalWorkers(1, spares=spares)
    notes = tmp_path / "setups"
    group = workers.Group(_note_setup, (str(notes),), 1, 30.0)
    first = dict(local.run([group], [workers.Job(0, 0, _whose, (), 30.0)]))
    second = dict(local.run([group], [workers.Job(1, 0, _whose, (), 30.0)]))
    assert first[0] == second[1] and notes.read_text().split() == [str(first[0])]
    other = workers.Group(_note_setup, (str(tmp_path / "other"),), 1, 30.0)
    third = dict(local.run([other], [workers.Job(2, 0, _whose, (), 30.0)]))
    assert third[2] != first[0]
    kept = [worker.process for worker in spares.loaded]
    assert len(kept) == 2 and all(process.is_alive() for process in kept)
    spares.close(loaded=True)
    assert not any(process.is_alive() for process in kept) and spares.loaded == []


@pytest.mark.slow
def test_the_watchdog_stops_a_job_that_makes_no_progress() -> None:
    group = workers.Group(_ready, (), 1, 30.0)
    assert list(workers.run([group], [workers.Job(0, 0, _nap, (0.1,), 5.0)])) == [(0, "woke")]
    started = time.monotonic()
    with pytest.raises(workers.JobFailed) as caught:
        list(workers.run([group], [workers.Job(7, 0, _nap, (3600,), 1.0)]))
    assert caught.value.key == 7 and "no progress for 6 s" in caught.value.message
    assert time.monotonic() - started < 1.0 + workers.GRACE_S + 5


@pytest.mark.slow
def test_a_worker_that_dies_or_cannot_set_up_is_reported_not_waited_for() -> None:
    group = workers.Group(_ready, (), 1, 30.0)
    with pytest.raises(workers.JobFailed, match="its worker process died \\(exit code 3\\)"):
        list(workers.run([group], [workers.Job(1, 0, _crash, (), 60.0)]))
    broken = workers.Group(_no_setup, (), 1, 30.0)
    with pytest.raises(PipelineError, match="the voice will not load") as caught:
        list(workers.run([broken], [workers.Job(1, 0, _nap, (0,), 60.0)]))
    assert str(caught.value).startswith("v.yaml:2: ")


def _pid(seconds: float, *, progress) -> int:
    time.sleep(seconds)
    return os.getpid()


def test_a_worker_whose_voice_is_done_helps_the_other() -> None:
    """One worker per voice, one voice far quicker (hibari against Piper): when the quick
    voice's worker has nothing left, it is ended and a worker of the slow voice started in
    its place, so both cores speak the slow voice's turns to the end."""
    quick, slow = workers.Group(_ready, (), 1, 30.0), workers.Group(_ready, (), 1, 30.0)
    jobs = [workers.Job(0, 0, _pid, (0.0,), 30.0)]
    jobs += [workers.Job(k, 1, _pid, (0.4,), 30.0) for k in range(1, 13)]
    pids = dict(workers.run([quick, slow], jobs))
    slow_pids = {pids[k] for k in range(1, 13)}
    assert len(slow_pids) == 2 and pids[0] not in slow_pids  # a new process, not the quick one


def _span(seconds: float, *, progress) -> tuple[float, float]:
    started = time.time()
    time.sleep(seconds)
    return started, time.time()


def test_jobs_that_need_much_memory_never_run_at_once_within_a_budget() -> None:
    """Two Piper workers decoding the longest sentences at once push a render past 1 GB:
    with a budget for this process and its workers as they really are, a job that would
    not fit beside the running ones waits, and its worker takes a job that fits instead,
    so both workers stay busy."""
    group = workers.Group(_ready, (), 2, 30.0)

    def jobs() -> list[workers.Job]:
        heavy = [workers.Job(k, 0, _span, (0.8,), 30.0, memory_mb=4000.0) for k in (0, 1)]
        return heavy + [workers.Job(k, 0, _span, (0.2,), 30.0, memory_mb=20.0) for k in range(2, 8)]

    def overlap(spans: dict[int, tuple[float, float]], a: int, b: int) -> float:
        return min(spans[a][1], spans[b][1]) - max(spans[a][0], spans[b][0])

    unlimited = dict(workers.run([group], jobs()))
    assert overlap(unlimited, 0, 1) > 0.5  # without a budget the two run together
    # Room for one heavy job and light ones beside this process and two small workers.
    budget = workers.resident_mb(os.getpid()) + 2 * 150 + 5000
    spans = dict(workers.run([group], jobs(), memory_mb=budget))
    assert overlap(spans, 0, 1) <= 0
    assert any(overlap(spans, 0, k) > 0 for k in range(2, 8))  # the other worker kept busy
    assert 0 < workers.resident_mb(os.getpid()) < 4000
    assert workers.resident_mb(None) == 0.0


def _steps(seconds: float, *, progress) -> tuple[float, float, float]:
    """Two steps of ``seconds``: when it started, when its second step began, when done."""
    started = time.time()
    time.sleep(seconds)
    progress()
    middle = time.time()
    time.sleep(seconds)
    return started, middle, time.time()


def test_a_job_beyond_the_budget_runs_alone_and_says_so() -> None:
    """A job bigger than the whole budget still runs when nothing else does, and the
    ``crowded`` flag is up while its big step runs (encoding ahead waits then:
    pipeline/ahead.py), not during its small step, nor for a job that fits, nor after."""
    group = workers.Group(_ready, (), 1, 30.0)
    jobs = [
        workers.Job(0, 0, _steps, (1.0,), 30.0, 2, memory_mb=1e6, step_mb=(1.0, 1e6)),
        workers.Job(1, 0, _steps, (0.5,), 30.0, 2, memory_mb=1.0),
    ]
    crowded, stop, seen = threading.Event(), threading.Event(), []

    def watch() -> None:
        while not stop.is_set():
            seen.append((time.time(), crowded.is_set()))
            time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    budget = workers.resident_mb(os.getpid()) + 2000
    spans = dict(workers.run([group], jobs, budget, crowded))
    stop.set()
    watcher.join()

    def during(start: float, end: float) -> list[bool]:
        return [on for at, on in seen if start + 0.15 < at < end - 0.15]

    small, big, light = (spans[0][0], spans[0][1]), (spans[0][1], spans[0][2]), spans[1][::2]
    assert during(*big) and all(during(*big))
    assert during(*small) and not any(during(*small))
    assert during(*light) and not any(during(*light))
    assert not crowded.is_set()


_HELD: list[object] = []


def _hold(mb: int) -> None:
    import numpy as np

    _HELD.append(np.ones(mb * 2**20, dtype=np.uint8))  # written: resident


def test_workers_a_watch_keeps_count_against_the_next_runs_budget() -> None:
    """A kept worker (``render --watch``) holds its memory between runs: a later run whose
    two jobs fit beside each other only without it runs them one after the other."""
    spares = workers.Spares(keep=True)
    try:
        list(
            workers.run(
                [workers.Group(_hold, (800,), 1, 30.0)],
                [workers.Job(0, 0, _whose, (), 30.0)],
                spares=spares,
            )
        )
        assert spares.held_mb() > 800
        group = workers.Group(_ready, (), 2, 30.0)

        def overlap() -> float:
            jobs = [workers.Job(k, 0, _span, (0.8,), 30.0, memory_mb=50.0) for k in (1, 2)]
            budget = workers.resident_mb(os.getpid()) + 2 * 200 + 2 * 50 + 400
            spans = dict(workers.run([group], jobs, memory_mb=budget, spares=spares))
            return min(spans[1][1], spans[2][1]) - max(spans[1][0], spans[2][0])

        assert overlap() <= 0
        spares.close(loaded=True)
        spares.keep = False
        assert overlap() > 0.4
    finally:
        spares.close(loaded=True)
