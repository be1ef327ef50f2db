"""``make bench``: how fast and how lean a render of the real episode is.

Renders the episode cold (empty cache), after a one-line edit, and with nothing changed,
each as its own process whose whole process tree's memory is sampled; then times the raw
engine synthesis of the same turns, one after another in this process. Writes
``build/bench.json`` and prints a table against the targets.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from pipeline.outputs import OutputSet
from pipeline.production import prepare
from pipeline.timeline import Timeline

TARGETS = {"cold_rtf": 0.08, "edit_rerender_s": 5.0, "overhead": 0.20, "peak_rss_mb": 1536.0}


def _timed_render(script: Path, output: Path, cache: Path) -> tuple[float, float, float]:
    """Render in a subprocess: seconds, and its process tree's peak memory in MB as the sum
    of RSS (pages shared between processes counted in each) and of PSS (shared pages
    divided among the processes that share them: what the tree really holds)."""
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
    return elapsed, peak, peak_pss


def _raw_engine_seconds(script: Path) -> float:
    production = prepare(script)
    started = time.perf_counter()
    for utterance in production.utterances:
        for sentence in utterance.sentences:
            production.engines[utterance.turn.speaker].synthesize(sentence)
    return time.perf_counter() - started


def _edited(script: Path) -> Path:
    """A copy of the script beside it with one turn's line changed."""
    lines = script.read_text(encoding="utf-8").split("\n")
    index = next(i for i, line in enumerate(lines) if line.startswith(("ALEX:", "MAYA:")))
    lines[index] = lines[index].rstrip() + " Really."
    copy = script.with_name(f".bench-{script.name}")
    copy.write_text("\n".join(lines), encoding="utf-8")
    return copy


def run(script: Path, folder: Path) -> dict[str, Any]:
    """Run the benchmark; return its numbers."""
    cache = folder / "cache"
    shutil.rmtree(cache, ignore_errors=True)
    output = folder / "episode.mp3"
    cold_s, cold_rss, cold_pss = _timed_render(script, output, cache)
    audio_s = Timeline.load(OutputSet(output).timeline).duration
    edited = _edited(script)
    try:
        edit_s, edit_rss, edit_pss = _timed_render(edited, output, cache)
        noop_s, noop_rss, noop_pss = _timed_render(edited, output, cache)
    finally:
        edited.unlink(missing_ok=True)
    raw_s = _raw_engine_seconds(script)
    return {
        "audio_s": round(audio_s, 1),
        "cold_render_s": round(cold_s, 2),
        "raw_engine_s": round(raw_s, 2),
        "cold_rtf": round(cold_s / audio_s, 4),
        "edit_rerender_s": round(edit_s, 2),
        "noop_rerender_s": round(noop_s, 2),
        "overhead": round((cold_s - raw_s) / raw_s, 3),
        "peak_rss_mb": round(max(cold_rss, edit_rss, noop_rss), 1),
        "peak_pss_mb": round(max(cold_pss, edit_pss, noop_pss), 1),
        "cores": psutil.cpu_count(),
    }


def table(results: dict[str, Any]) -> str:
    """The results as a table with the targets."""
    rows = ["| measure | value | target | met |", "|---|---|---|---|"]
    for key, value in results.items():
        target = TARGETS.get(key)
        met = "" if target is None else ("yes" if value <= target else "NO")
        rows.append(f"| {key} | {value} | {'' if target is None else f'<= {target}'} | {met} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    """``python -m pipeline.bench [SCRIPT] [--out build/bench.json]``."""
    parser = argparse.ArgumentParser(prog="python -m pipeline.bench", description=__doc__)
    parser.add_argument("script", nargs="?", type=Path, default=Path("script/episode.md"))
    parser.add_argument("--out", type=Path, default=Path("build/bench.json"))
    args = parser.parse_args(argv)
    results = run(args.script, args.out.parent / "bench")
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(table(results))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
