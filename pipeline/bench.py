"""``make bench``: how fast and how lean a render of the real episode is.

Renders the episode cold (empty cache), after a one-line edit, and with nothing changed,
each as its own process whose whole process tree's memory is sampled and which reports
its seconds per stage; times one-line edits under ``render --watch`` (the edit loop, voices
kept loaded: from the save to the render); times ``pipeline check``; times the raw engine
synthesis of the same turns, one after another in this process; then renders, cold, a
script of the episode repeated to at least three hours, whose peak memory must stay within
10% of the episode's. Parallel efficiency is that raw serial engine time over cores x the cold
render's time. Writes ``build/bench.json``, prints a table against the targets (issue
17's) and, with ``--readme``, writes the table into the README between its bench markers.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from pipeline.files import write_json, write_text
from pipeline.outputs import OutputSet
from pipeline.production import prepare
from pipeline.timeline import Timeline

# (value, at least?) per measure: at most the value, unless "at least" is True.
TARGETS = {
    "parallel_efficiency": (0.8, True),
    "edit_rerender_s": (2.0, False),
    "noop_rerender_s": (1.0, False),
    "check_s": (1.5, False),
    "peak_pss_mb": (1024.0, False),
    "long_peak_ratio": (1.10, False),
}
LONG_S = 3 * 3600.0  # the long-script run lasts at least this long
MARKERS = ("<!-- bench:start -->", "<!-- bench:end -->")


def _timed_render(script: Path, output: Path, cache: Path) -> tuple[float, float, float, dict]:
    """Render in a subprocess: seconds, its process tree's peak memory in MB as the sum of
    RSS (pages shared between processes counted in each) and of PSS (shared pages divided
    among the processes that share them: what the tree really holds), and the seconds of
    each stage the render reports."""
    report = output.with_name("render-report.json")
    args = [
        sys.executable,
        "-m",
        "pipeline",
        "render",
        str(script),
        "-o",
        str(output),
        "-q",
        "--cache",
        str(cache),
        "--report",
        str(report),
    ]
    started = time.perf_counter()
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak = peak_pss = 0.0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak, peak_pss
        root = psutil.Process(process.pid)
        count = 0
        while not stop.is_set():
            try:
                tree = [root, *root.children(recursive=True)]
                rss = sum(p.memory_info().rss for p in tree if p.is_running()) / 2**20
                if rss > peak or count % 10 == 0:
                    # PSS reads every page table (smaps): costly, so only now and then,
                    # and at each new RSS peak, to leave the render its cores.
                    full = [p.memory_full_info() for p in tree if p.is_running()]
                    peak_pss = max(peak_pss, sum(m.pss for m in full) / 2**20)
                peak = max(peak, rss)
            except psutil.Error:
                pass
            count += 1
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, err = process.communicate()
    elapsed = time.perf_counter() - started
    stop.set()
    sampler.join()
    if process.returncode != 0:
        raise SystemExit(f"render failed: {err}")
    stages = json.loads(report.read_text(encoding="utf-8"))["stages_s"]
    return elapsed, peak, peak_pss, stages


def _timed_check(script: Path) -> float:
    """Seconds ``pipeline check`` takes, in a fresh process as a user runs it."""
    started = time.perf_counter()
    args = [sys.executable, "-m", "pipeline", "check", str(script)]
    subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def _raw_engine_seconds(script: Path) -> float:
    production = prepare(script)
    started = time.perf_counter()
    for utterance in production.utterances:
        for sentence in utterance.sentences:
            production.engines[utterance.turn.speaker].synthesize(sentence)
    return time.perf_counter() - started


def _edited(script: Path) -> Path:
    """A copy of the script beside it with one turn's line changed."""
    copy = script.with_name(f".bench-{script.name}")
    copy.write_text(_edited_text(script, " Really."), encoding="utf-8")
    return copy


def _edited_text(script: Path, added: str) -> str:
    """The script with ``added`` at the end of its first turn's line."""
    lines = script.read_text(encoding="utf-8").split("\n")
    index = next(i for i, line in enumerate(lines) if line.startswith(("ALEX:", "MAYA:")))
    lines[index] = lines[index].rstrip() + added
    return "\n".join(lines)


def _watched_edits(script: Path, output: Path, cache: Path, edits: int = 3) -> list[float]:
    """Seconds from saving each of ``edits`` one-line edits (a sentence added to the first
    turn, as ``_edited``) to ``render --watch`` saying it rendered it: the edit loop as a
    producer sees it. The first edit also starts the voice's worker; later ones find it."""
    copy = script.with_name(f".bench-watch-{script.name}")
    copy.write_text(script.read_text(encoding="utf-8"), encoding="utf-8")
    args = [sys.executable, "-m", "pipeline", "render", "--watch", str(copy), "-o", str(output)]
    process = subprocess.Popen(
        [*args, "-q", "--cache", str(cache)], stdout=subprocess.PIPE, text=True, bufsize=1
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stdout or ()), daemon=True)
    reader.start()

    def rendered(count: int) -> None:
        while sum("rendered in" in line for line in lines) < count:
            if process.poll() is not None:
                raise SystemExit(f"render --watch ended: {''.join(lines)[-500:]}")
            time.sleep(0.01)

    try:
        rendered(1)
        seconds = []
        for number in range(edits):
            text = _edited_text(script, f" Really, {number + 2} times.")
            started = time.perf_counter()
            copy.write_text(text, encoding="utf-8")
            rendered(number + 2)
            seconds.append(round(time.perf_counter() - started, 2))
        return seconds
    finally:
        process.terminate()
        process.wait(timeout=30)
        copy.unlink(missing_ok=True)


def _repeated(script: Path, times: int) -> Path:
    """A copy of the script beside it with its body (after the front matter) ``times``
    over: a long episode made of the real one."""
    text = script.read_text(encoding="utf-8")
    _, front, body = text.split("---\n", 2)
    # The format takes one level-1 heading, before the first chapter: the copies drop theirs.
    again = "\n".join(line for line in body.split("\n") if not line.startswith("# "))
    copy = script.with_name(f".bench-long-{script.name}")
    copy.write_text(f"---\n{front}---\n" + body + again * (times - 1), encoding="utf-8")
    return copy


def _long_run(script: Path, folder: Path, audio_s: float) -> dict[str, Any]:
    """Render, cold, the script repeated to at least ``LONG_S``: its time and memory."""
    times = max(2, -int(-LONG_S // audio_s))
    long = _repeated(script, times)
    cache = folder / "long-cache"
    shutil.rmtree(cache, ignore_errors=True)
    try:
        seconds, rss, pss, stages = _timed_render(long, folder / "long.mp3", cache)
    finally:
        long.unlink(missing_ok=True)
        shutil.rmtree(cache, ignore_errors=True)
    audio = Timeline.load(OutputSet(folder / "long.mp3").timeline).duration
    return {
        "audio_s": round(audio, 1),
        "copies": times,
        "render_s": round(seconds, 2),
        "peak_rss_mb": round(rss, 1),
        "peak_pss_mb": round(pss, 1),
        "stages_s": stages,
    }


def run(script: Path, folder: Path) -> dict[str, Any]:
    """Run the benchmark; return its numbers."""
    cache = folder / "cache"
    shutil.rmtree(cache, ignore_errors=True)
    output = folder / "episode.mp3"
    cold_s, cold_rss, cold_pss, cold_stages = _timed_render(script, output, cache)
    audio_s = Timeline.load(OutputSet(output).timeline).duration
    edited = _edited(script)
    try:
        edit_s, edit_rss, edit_pss, edit_stages = _timed_render(edited, output, cache)
        noop_s, noop_rss, noop_pss, noop_stages = _timed_render(edited, output, cache)
    finally:
        edited.unlink(missing_ok=True)
    watched = _watched_edits(script, output, cache)
    check_s = _timed_check(script)
    raw_s = _raw_engine_seconds(script)
    cores = psutil.cpu_count() or 1
    long = _long_run(script, folder, audio_s)
    peak_pss = max(cold_pss, edit_pss, noop_pss)
    return {
        "measured": time.strftime("%Y-%m-%d"),
        "audio_s": round(audio_s, 1),
        "cold_render_s": round(cold_s, 2),
        "raw_engine_s": round(raw_s, 2),
        "parallel_efficiency": round(raw_s / (cores * cold_s), 3),
        "cold_rtf": round(cold_s / audio_s, 4),
        "edit_rerender_s": round(edit_s, 2),
        "noop_rerender_s": round(noop_s, 2),
        "watch_first_edit_s": watched[0],
        "watch_edit_s": round(statistics.median(watched[1:]), 2),
        "check_s": round(check_s, 2),
        "peak_rss_mb": round(max(cold_rss, edit_rss, noop_rss), 1),
        "peak_pss_mb": round(peak_pss, 1),
        "long_audio_s": long["audio_s"],
        "long_render_s": long["render_s"],
        "long_peak_pss_mb": long["peak_pss_mb"],
        "long_peak_ratio": round(long["peak_pss_mb"] / peak_pss, 3),
        "cores": cores,
        "stages_s": {
            "cold": cold_stages,
            "edit": edit_stages,
            "unchanged": noop_stages,
            "long": long["stages_s"],
        },
    }


def table(results: dict[str, Any]) -> str:
    """The results as a table with the targets, then each run's seconds per stage."""
    rows = ["| measure | value | target | met |", "|---|---|---|---|"]
    for key, value in results.items():
        if isinstance(value, dict):
            continue
        target = TARGETS.get(key)
        if target is None:
            rows.append(f"| {key} | {value} |  |  |")
            continue
        limit, at_least = target
        met = value >= limit if at_least else value <= limit
        rows.append(
            f"| {key} | {value} | {'>=' if at_least else '<='} {limit} | {'yes' if met else 'NO'} |"
        )
    stages = results.get("stages_s", {})
    names = list(dict.fromkeys(name for run in stages.values() for name in run))
    rows += ["", "| run | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for run, laps in stages.items():
        rows.append(f"| {run} | " + " | ".join(f"{laps.get(n, 0):.2f}" for n in names) + " |")
    return "\n".join(rows)


def write_readme(readme: Path, results: dict[str, Any]) -> None:
    """Put the results' table into ``readme`` between its bench markers."""
    text = readme.read_text(encoding="utf-8")
    start, end = MARKERS
    if start not in text or end not in text:
        raise SystemExit(f"{readme} has no {start} ... {end} section for the table")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    when = f"`make bench`, {results.get('measured', '')}, {results.get('cores', '?')} cores"
    note = f"<!-- generated from build/bench.json by {when}: do not edit -->"
    write_text(readme, f"{head}{start}\n{note}\n\n{table(results)}\n\n{end}{tail}")


def main(argv: list[str] | None = None) -> int:
    """``python -m pipeline.bench [SCRIPT] [--out build/bench.json] [--readme README.md]
    [--table-only]``."""
    parser = argparse.ArgumentParser(prog="python -m pipeline.bench", description=__doc__)
    parser.add_argument("script", nargs="?", type=Path, default=Path("script/episode.md"))
    parser.add_argument("--out", type=Path, default=Path("build/bench.json"))
    parser.add_argument("--readme", type=Path, help="write the table into this README")
    parser.add_argument(
        "--table-only", action="store_true", help="do not run: take the results from --out"
    )
    args = parser.parse_args(argv)
    if args.table_only:
        results = json.loads(args.out.read_text(encoding="utf-8"))
    else:
        results = run(args.script, args.out.parent / "bench")
        write_json(args.out, results)
    print(table(results))
    if args.readme is not None:
        write_readme(args.readme, results)
        print(f"wrote the table into {args.readme}")
    print(f"results: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
