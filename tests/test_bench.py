"""``make bench``'s report: the table against issue 17's targets, and the README's copy
of it, generated from ``build/bench.json``."""

from __future__ import annotations

import pytest
from conftest import REPO

from pipeline.bench import MARKERS, _repeated, _watched_edits, table, write_readme
from pipeline.outputs import OutputSet

RESULTS = {
    "measured": "2026-12-02",
    "cold_render_s": 90.0,
    "parallel_efficiency": 0.3,
    "noop_rerender_s": 0.3,
    "long_peak_ratio": 0.9,
    "cores": 2,
    "stages_s": {"cold": {"synthesis": 50.0, "packaging": 0.5}, "edit": {"synthesis": 2.0}},
}


def test_the_table_says_which_targets_are_met() -> None:
    rows = table(RESULTS).splitlines()
    assert "| parallel_efficiency | 0.3 | >= 0.8 | NO |" in rows
    assert "| noop_rerender_s | 0.3 | <= 1.0 | yes |" in rows
    assert "| long_peak_ratio | 0.9 | <= 1.1 | yes |" in rows
    assert "| cold | 50.00 | 0.50 |" in rows and "| edit | 2.00 | 0.00 |" in rows


def test_the_readme_table_is_written_between_its_markers(tmp_path) -> None:
    assert all(marker in (REPO / "README.md").read_text(encoding="utf-8") for marker in MARKERS)
    readme = tmp_path / "README.md"
    readme.write_text(f"# Show\n\nBefore.\n\n{MARKERS[0]}\nstale table\n{MARKERS[1]}\n\nAfter.\n")
    write_readme(readme, RESULTS)
    text = readme.read_text(encoding="utf-8")
    assert "stale table" not in text and table(RESULTS) in text
    assert text.startswith("# Show\n\nBefore.\n\n") and text.endswith("\n\nAfter.\n")
    assert "generated from build/bench.json by `make bench`, 2026-12-02, 2 cores" in text
    write_readme(readme, RESULTS)
    assert readme.read_text(encoding="utf-8") == text  # the same results, the same README


def test_the_long_script_is_the_episode_over_and_over(tmp_path) -> None:
    script = tmp_path / "ep.md"
    script.write_text("---\ntitle: x\n---\n# Ep\n## One\nALEX: Hi.\n", encoding="utf-8")
    long = _repeated(script, 3)
    body = "## One\nALEX: Hi.\n"
    assert long.read_text(encoding="utf-8") == "---\ntitle: x\n---\n# Ep\n" + body * 3


@pytest.mark.slow
def test_edits_under_watch_are_timed_from_the_save_to_the_render(write_script, tmp_path) -> None:
    script = write_script("## A\nALEX: Hello there.\nMAYA: Hi.\n")
    output = tmp_path / "o" / "e.mp3"
    seconds = _watched_edits(script, output, tmp_path / "cache", edits=2)
    assert len(seconds) == 2 and all(0 < s < 60 for s in seconds)
    said = OutputSet(output).transcript.read_text(encoding="utf-8")
    assert "Really, 3 times." in said  # the last edit was rendered before it was timed
    assert sorted(p.name for p in script.parent.glob(".bench*")) == []
