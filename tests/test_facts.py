"""The fact check: figures in spoken turns must match a sourced fact sheet."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from conftest import FRONT_MATTER, REPO

from pipeline.cli import main
from pipeline.errors import PipelineError
from pipeline.facts import FactCheckError, FactSheet, check_facts, find_figures
from pipeline.script import Turn, parse_script

BRIEF = "The WSE-2 covers 46,225 square millimetres and has 850,000 cores. Revenue grew 83%."
SHEET = """\
sources:
  brief:
    title: A brief
    path: brief.txt
facts:
  - id: area
    value: 46225
    unit: mm2
    rounded: [46000]
    measures: chip area
    source: brief
    quote: 46,225 square millimetres
  - id: cores
    value: 850000
    unit: cores
    measures: cores
    source: brief
    quote: 850,000 cores
  - id: share
    value: 83
    unit: "%"
    measures: revenue share
    source: brief
    quote: grew 83%
    attribute: true
  - id: year
    value: 2023
    unit: year
    measures: the year
    source: https://example.org/annual-report-2023
"""


@pytest.fixture
def sheet_dir(tmp_path: Path) -> Path:
    (tmp_path / "brief.txt").write_text(BRIEF, encoding="utf-8")
    (tmp_path / "facts.yaml").write_text(SHEET, encoding="utf-8")
    return tmp_path


def script_with(sheet_dir: Path, body: str) -> Path:
    front = FRONT_MATTER.replace("hosts:", "facts: facts.yaml\nhosts:", 1)
    path = sheet_dir / "ep.md"
    path.write_text(front + "## Chapter\n" + textwrap.dedent(body), encoding="utf-8")
    return path


BODY_LINE = FRONT_MATTER.count("\n") + 3  # the first turn, after the facts line and heading


def check(path: Path):
    script = parse_script(path)
    assert script.meta.facts is not None
    return check_facts(script, FactSheet.load(script.meta.facts))


def test_digit_and_word_forms_match_the_same_entry(sheet_dir) -> None:
    path = script_with(
        sheet_dir,
        "ALEX: It covers 46,225 mm² with eight hundred fifty thousand cores.\n"
        "MAYA: Forty-six thousand two hundred and twenty-five square millimetres, then.\n"
        "ALEX: About forty-six thousand square millimetres, yes. 850,000 cores in 2023.\n",
    )
    report = check(path)
    assert [fact.id for _, fact in report.figures] == [
        "area",
        "cores",
        "area",
        "area",
        "cores",
        "year",
    ]
    assert [f.id for f in report.unused] == ["share"]


def test_unsourced_figure_fails_with_file_and_line(sheet_dir) -> None:
    path = script_with(sheet_dir, "ALEX: Fine.\nMAYA: It uses twenty-three kilowatts.\n")
    with pytest.raises(FactCheckError) as err:
        check(path)
    (problem,) = err.value.problems
    assert problem.startswith(f"{path}:{BODY_LINE + 1}: 23 kW")
    assert "no entry in the fact sheet" in problem


def test_wrong_figure_fails_and_names_the_entry(sheet_dir) -> None:
    # The brief's own typo: 46,255 instead of 46,225.
    path = script_with(sheet_dir, "ALEX: It covers 46,255 square millimetres.\n")
    with pytest.raises(FactCheckError) as err:
        check(path)
    (problem,) = err.value.problems
    assert problem.startswith(f"{path}:{BODY_LINE}: 46,255 mm2")
    assert "does not match the fact sheet: nearest is area = 46,225 mm2" in problem


def test_rounding_only_as_the_entry_permits(sheet_dir) -> None:
    path = script_with(sheet_dir, "ALEX: About forty-seven thousand square millimetres.\n")
    with pytest.raises(FactCheckError, match="nearest is area"):
        check(path)


def test_unit_must_agree(sheet_dir) -> None:
    path = script_with(sheet_dir, "ALEX: It has 850,000 transistors.\n")
    with pytest.raises(FactCheckError, match="850,000 transistors"):
        check(path)


def test_attribution_required_where_the_entry_says(sheet_dir) -> None:
    bare = script_with(sheet_dir, "MAYA: One customer was eighty-three percent of revenue.\n")
    with pytest.raises(FactCheckError, match=r"\(share\) must be attributed"):
        check(bare)
    attributed = script_with(
        sheet_dir, "MAYA: According to the filing, one customer was eighty-three percent.\n"
    )
    assert [fact.id for _, fact in check(attributed).figures] == ["share"]


def test_more_than_two_figures_in_a_sentence_fails(sheet_dir) -> None:
    path = script_with(
        sheet_dir, "ALEX: In 2023 it had 850,000 cores on 46,225 square millimetres. Fine.\n"
    )
    with pytest.raises(FactCheckError, match="more than 2 figures in one sentence"):
        check(path)


def test_every_problem_is_listed_at_once(sheet_dir, capsys) -> None:
    path = script_with(sheet_dir, "ALEX: Twelve links.\n\nMAYA: And 46,255 square millimetres.\n")
    assert main(["check", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"{path}:{BODY_LINE}: 12" in err and f"{path}:{BODY_LINE + 2}: 46,255" in err
    assert "2 figure problem(s)" in err


@pytest.mark.parametrize(
    "text, expected",
    [
        ("two point six trillion transistors", [(2.6e12, "transistors")]),
        ("$3.3 trillion", [(3.3e12, "USD")]),
        ("one point four three billion dollars", [(1.43e9, "USD")]),
        ("three hundred thirty-five million dollars", [(335e6, "USD")]),
        ("eighty-three percent and 87%", [(83, "%"), (87, "%")]),
        ("fifty-six times, or 56x", [(56, "x"), (56, "x")]),
        (
            "twenty petabytes per second, two hundred twenty petabits per second",
            [(20, "PB/s"), (220, "Pb/s")],
        ),
        ("about eight and a half inches", [(8.5, "in")]),
        ("about one third of a standard rack", [(1 / 3, "rack")]),
        ("in October 2024", [(2024, "year")]),
        ("on 14 May 2026", [(14, "day"), (2026, "year")]),
        ("two hosts, three innovations, the second generation, the first half", []),
        ("the CS-2, the A100, H100 and B200, G42, an S-1, TSMC 4N", []),
        ("hundreds or thousands of chips", []),
        ("twelve power supplies and twelve Ethernet links", [(12, "PSU"), (12, "links")]),
        ("seven nanometre", [(7, "nm")]),
    ],
)
def test_figures_found(text: str, expected: list) -> None:
    found = [(f.value, f.unit) for f in find_figures(Turn("ALEX", text, 1))]
    assert found == [(pytest.approx(v), u) for v, u in expected]


def test_fact_sheet_quote_must_be_in_the_source(sheet_dir) -> None:
    sheet = sheet_dir / "facts.yaml"
    sheet.write_text(SHEET.replace("quote: 850,000 cores", "quote: 860,000 cores"), "utf-8")
    with pytest.raises(PipelineError, match="the quote '860,000 cores' is not in") as err:
        FactSheet.load(sheet)
    assert err.value.line == 13  # the start of the entry


def test_fact_sheet_rejects_unknown_source_and_unit(sheet_dir) -> None:
    sheet = sheet_dir / "facts.yaml"
    sheet.write_text(SHEET.replace("source: https://", "source: "), "utf-8")
    with pytest.raises(
        PipelineError, match=r"'example\.org/annual-report-2023' is not in 'sources'"
    ):
        FactSheet.load(sheet)
    sheet.write_text(SHEET.replace("unit: mm2", "unit: acres"), "utf-8")
    with pytest.raises(PipelineError, match="unknown unit 'acres'"):
        FactSheet.load(sheet)


def test_missing_local_source_skips_quote_checks(sheet_dir) -> None:
    (sheet_dir / "brief.txt").unlink()
    sheet = FactSheet.load(sheet_dir / "facts.yaml")
    assert sheet.unverified == ("brief",)


def test_the_episode_passes_its_check(capsys) -> None:
    """The real script: every figure sourced, and the editorial limits of the brief."""
    assert main(["check", str(REPO / "script" / "episode.md")]) == 0
    out = capsys.readouterr().out
    words = int(out.split(" words, about")[0].split()[-1])
    assert 3000 <= words <= 4200
    chapters = int(out.split(" chapters:")[0].split()[-1])
    assert 6 <= chapters <= 9
    longest = int(out.split("longest turn: ")[1].split()[0])
    assert longest <= 120
    assert "figures checked: " in out and "fact sheet entries not said" not in out
    script = parse_script(REPO / "script" / "episode.md")
    assert len(script.meta.description.encode("utf-8")) < 4000


def test_the_second_draft_keeps_its_editorial_limits() -> None:
    """Issue 14's shape: Maya a second mind (42-50% of the words, at most four turns of four
    words or fewer), the synthetic voices said plainly once, conversation features in use,
    and every source public: a URL, never an internal path."""
    script = parse_script(REPO / "script" / "episode.md")
    turns = list(script.turns())
    words = {"ALEX": 0, "MAYA": 0}
    for turn in turns:
        words[turn.speaker] += len(turn.text.split())
    total = sum(words.values())
    assert 3200 <= total <= 4200
    assert 0.42 <= words["MAYA"] / total <= 0.50
    assert sum(len(turn.text.split()) <= 4 for turn in turns) <= 4
    assert sum("voices are synthetic" in turn.text for turn in turns) == 1
    assert any(turn.overlap is not None for turn in turns)
    items = [item for chapter in script.chapters for item in chapter.items]
    assert any(type(item).__name__ == "Pause" for item in items)
    sheet = FactSheet.load(REPO / "script" / "facts.yaml")
    for source in sheet.sources.values():
        assert source.url and source.url.startswith("https://"), source.name
        assert "shared/brief" not in source.title and "client" not in source.title.lower()
    for fact in sheet.facts:
        assert fact.source in sheet.sources or fact.source.startswith("https://"), fact.id
        assert fact.quotes, f"{fact.id} has no quoted words from its source"


def test_show_notes_print_each_exact_figure_readably() -> None:
    """The exact figures the dialogue rounds go to the show notes as people read them."""
    sheet = FactSheet.load(REPO / "script" / "facts.yaml")
    shown = {fact.id: fact.shown() for fact in sheet.facts}
    assert shown["valuation-2021"] == "$4 billion"
    assert shown["revenue-h1-2024"] == "$136.4 million"
    assert shown["cs2-rack-share"] == "1/3 of a rack"
    assert shown["ratio-bandwidth"] == "12,862x"
    assert shown["wse2-transistors"] == "2.6 trillion transistors"
    assert shown["wse2-memory-bandwidth"] == "20 PB/s"
    off_air = {fact.id for fact in sheet.facts if not fact.on_air}
    assert {"wse2-memory-bandwidth", "wse2-fabric"} <= off_air
