"""The episode at a glance: loudness over time, who speaks when, music, chapters."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt

from pipeline.assemble import Mix
from pipeline.files import atomic_output
from pipeline.loudness import Measurement
from pipeline.script import Script

HOST_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b", "#e377c2")
MUSIC_COLOUR = "#ff9f1c"


def draw_overview(
    script: Script, mix: Mix, measured: Measurement, path: Path, target_lufs: float
) -> Path:
    """Draw the overview PNG at ``path``, from the delivered file's loudness and the mix."""
    minutes = 60.0
    fig, (loud_ax, lane_ax) = plt.subplots(
        2, 1, figsize=(18, 7), dpi=100, sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    times = [t / minutes for t in measured.times]
    loud_ax.plot(times, measured.momentary, lw=0.5, color="#999999", label="momentary (400 ms)")
    loud_ax.plot(times, measured.short_term, lw=1.2, color="#222222", label="short-term (3 s)")
    loud_ax.axhline(
        target_lufs, color="#2ca02c", ls="--", lw=1, label=f"target {target_lufs:g} LUFS"
    )
    loud_ax.set_ylim(-50, -5)
    loud_ax.set_ylabel("loudness (LUFS)")
    loud_ax.set_title(
        f"{script.meta.podcast}, episode {script.meta.episode}: {script.meta.title}\n"
        f"integrated {measured.loudness_lufs:.1f} LUFS, "
        f"true peak {measured.true_peak_db:.1f} dBTP, range {measured.loudness_range:.1f} LU",
        loc="left",
    )
    speakers = list(script.meta.hosts)
    for index, speaker in enumerate(speakers):
        spans = [
            (mix.seconds(p.start) / minutes, mix.seconds(p.end - p.start) / minutes)
            for p in mix.placements
            if p.turn.speaker == speaker
        ]
        colour = HOST_COLOURS[index % len(HOST_COLOURS)]
        lane_ax.broken_barh(spans, (len(speakers) - index, 0.8), color=colour)
        lane_ax.text(
            0,
            len(speakers) - index + 0.4,
            f" {script.meta.hosts[speaker].name}",
            va="center",
            ha="right",
            fontsize=9,
        )
    music = [
        (mix.seconds(m.at) / minutes, mix.seconds(m.end - m.at) / minutes)
        for m in mix.music
        if m.end > m.at
    ]
    lane_ax.broken_barh(music, (0, 0.8), color=MUSIC_COLOUR)
    lane_ax.text(0, 0.4, " music", va="center", ha="right", fontsize=9)
    lane_ax.set_yticks([])
    lane_ax.set_xlabel("minutes")
    for chapter in mix.chapters:
        at = mix.seconds(chapter.start) / minutes
        for ax in (loud_ax, lane_ax):
            ax.axvline(at, color="#555555", lw=0.8, ls=":")
        loud_ax.text(at, -6, f" {chapter.title}", rotation=90, va="top", fontsize=8)
    loud_ax.legend(loc="lower right", fontsize=8)
    lane_ax.set_xlim(0, mix.duration / minutes)
    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path
