"""Fact check: every figure a host says must match an entry of the script's fact sheet.

A fact sheet (``facts:`` in the front matter, e.g. ``script/facts.yaml``) lists each figure
with its value, unit, what it measures and its source. Figures are found in every turn's
display text whether written in digits ("46,225", "$3.3 trillion", "83%", "56x") or in words
("forty-six thousand", "two point six trillion", "eighty-three percent"); text2num turns
the words into digits. A figure matches an entry when the values are equal (or equal to one
of the entry's permitted roundings) and the units agree.

What counts as a figure: any number with a unit, a scale word (thousand ... trillion),
a decimal point, a currency or percent sign, or a value of ten or more. Small bare counts
("two hosts", "three innovations") are ordinary speech and are not checked; nor are
ordinals or numbers that are part of a name (CS-2, A100, G42).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from text_to_num import alpha2digit

from pipeline.errors import PipelineError
from pipeline.files import input_file
from pipeline.script import Script, Turn
from pipeline.units import FORMS
from pipeline.yamlfile import YamlDoc, read_yaml

# Spoken and written unit forms -> one canonical unit. Longest phrases are tried first.
UNIT_FORMS = FORMS  # the units a fact sheet may name, and the words that say them
_UNITS = sorted(
    ((form, unit) for unit, forms in UNIT_FORMS.items() for form in forms),
    key=lambda pair: -len(pair[0]),
)
_SCALES = {"thousand": 1e3, "million": 1e6, "billion": 1e9, "trillion": 1e12}
_FRACTIONS = {"half": Fraction(1, 2), "third": Fraction(1, 3), "quarter": Fraction(1, 4)}
_ATTRIBUTION = re.compile(
    r"according to|reported|reports|reportedly|says|said|claims|estimates|puts it", re.I
)
_NUMBER = re.compile(
    r"(?<![\w.-])(?<![A-Za-z]-)(?P<cur>\$)?(?P<num>\d+(?:\.\d+)?)(?P<sign>%)?"
    r"(?P<tail>(?:st|nd|rd|th)\b|[A-Za-z²]+)?"
)
_THOUSANDS = re.compile(r"(?<![\d.])(\d{1,3}(?:,\d{3})+)(?![\d])")
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[\"'A-Z0-9$])")
YEAR_RANGE = range(1900, 2101)
_SHIELD = "\u2060"  # a word joiner: text2num no longer sees the word
_SHIELDED = re.compile(r"\b(?:seconds?|dozens|hundreds|thousands|millions|billions|trillions)\b")
_MONTHS = "January|February|March|April|May|June|July|August|September|October|November|December"
_MONTH_AFTER = re.compile(rf"\s+(?:of\s+)?(?:{_MONTHS})\b")
_MONTH_BEFORE = re.compile(rf"\b(?:{_MONTHS})\s+$")
MAX_FIGURES_PER_SENTENCE = 2
SOURCE_KEYS = ("title", "path", "url")
FACT_KEYS = (
    "id",
    "value",
    "unit",
    "measures",
    "source",
    "quote",
    "rounded",
    "attribute",
    "on_air",
)


@dataclass(frozen=True)
class Source:
    """A place figures come from."""

    name: str
    """Short name entries use, e.g. ``brief``."""

    title: str
    """What it is, for people."""

    path: Path | None
    """A local copy whose text quotes are checked against (optional)."""

    url: str | None
    """Where the public can read it (optional)."""


@dataclass(frozen=True)
class Fact:
    """One checked figure."""

    id: str
    """Short stable name."""

    value: float
    """The figure itself, e.g. 46225 or 2.6e12."""

    unit: str | None
    """Canonical unit (a key of ``UNIT_FORMS``), or none for a bare count."""

    measures: str
    """What the figure measures, in words."""

    source: str
    """A source name from the sheet, or a public URL."""

    quotes: tuple[str, ...]
    """The words in the source that give the figure (checked against local copies)."""

    rounded: tuple[float, ...]
    """Rounded values the script may say instead, e.g. 46000 for 46225."""

    attribute: bool
    """The sentence saying it must attribute it ("according to", "Cerebras says")."""

    on_air: bool
    """False for an exact figure kept for the show notes only (the dialogue rounds it or
    leaves it out): ``check`` does not expect the script to say it."""

    line: int
    """Line of the entry in the fact sheet."""

    def matches(self, value: float) -> bool:
        """True if ``value`` is this figure or one of its permitted roundings."""
        return any(math.isclose(value, v, rel_tol=1e-9) for v in (self.value, *self.rounded))

    def shown(self) -> str:
        """The figure as show notes print it: "$1.43 billion", "87%", "56x", "40 GB"."""
        if self.unit == "USD":
            for scale, word in ((1e12, "trillion"), (1e9, "billion"), (1e6, "million")):
                if abs(self.value) >= scale:
                    return f"${self.value / scale:,.4g} {word}"
            return f"${_format(self.value)}"
        if self.unit in ("%", "x"):
            return f"{_format(self.value)}{self.unit}"
        if self.unit == "rack":
            return f"{Fraction(self.value).limit_denominator(12)} of a rack"
        if self.unit in (None, "year", "day"):
            return _format(self.value)
        for scale, word in ((1e12, "trillion"), (1e9, "billion")):
            if abs(self.value) >= scale:
                return f"{self.value / scale:,.4g} {word} {self.unit}"
        return f"{_format(self.value)} {self.unit}"


@dataclass(frozen=True)
class FactSheet:
    """A script's fact sheet."""

    path: Path
    """The YAML file."""

    sources: dict[str, Source]
    """Sources by name."""

    facts: list[Fact]
    """Every entry, in file order."""

    unverified: tuple[str, ...] = ()
    """Source names whose local copy was not found, so their quotes were not checked."""

    @staticmethod
    def load(path: Path) -> FactSheet:
        """Read and validate a fact sheet, checking quotes against local copies of sources."""
        doc = read_yaml(path, "fact sheet")
        if not isinstance(doc.data, dict) or set(doc.data) != {"sources", "facts"}:
            raise doc.error("a fact sheet has two fields: 'sources' and 'facts'")
        sources = _load_sources(doc, path)
        texts: dict[str, str] = {}
        unverified = []
        for name, source in sources.items():
            if source.path is not None and os.path.lexists(source.path):
                where = (path, doc.line_of("sources", name))
                local = input_file(source.path, f"local copy of source {name!r}", named_at=where)
                try:
                    texts[name] = _squash(local.read_text(encoding="utf-8"))
                except UnicodeDecodeError:
                    raise PipelineError(
                        f"the local copy {local} is not UTF-8 text",
                        path=path,
                        line=where[1],
                        hint="save the source's text as UTF-8",
                    ) from None
            elif source.path is not None:
                unverified.append(name)
        facts = [_load_fact(doc, index, sources, texts) for index in range(len(doc.data["facts"]))]
        ids = [fact.id for fact in facts]
        for fact in facts:
            if ids.count(fact.id) > 1:
                raise PipelineError(f"fact id {fact.id!r} is used twice", path=path, line=fact.line)
        return FactSheet(path, sources, facts, tuple(unverified))


def _load_sources(doc: YamlDoc, path: Path) -> dict[str, Source]:
    raw = doc.data["sources"]
    if not isinstance(raw, dict):
        raise doc.error("'sources' maps a short name to a title and a path or url", "sources")
    sources = {}
    for name, entry in raw.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("title"), str):
            raise doc.error(f"source {name!r} needs a 'title'", "sources", str(name))
        doc.check_keys(entry, SOURCE_KEYS, "sources", str(name), of=f"source {name!r}")
        local = entry.get("path")
        url = entry.get("url")
        if local is None and url is None:
            raise doc.error(f"source {name!r} needs a 'path' or a 'url'", "sources", str(name))
        sources[str(name)] = Source(
            name=str(name),
            title=entry["title"],
            path=(path.parent / local) if local else None,
            url=url,
        )
    return sources


def _load_fact(doc: YamlDoc, index: int, sources: dict[str, Source], texts: dict[str, str]) -> Fact:
    entry = doc.data["facts"][index]
    line = doc.line_of("facts", str(index))

    def fail(message: str, hint: str | None = None) -> PipelineError:
        return PipelineError(message, path=doc.path, line=line, hint=hint)

    if not isinstance(entry, dict):
        raise fail("a fact is a mapping with id, value, unit, measures, source")
    doc.check_keys(entry, FACT_KEYS, "facts", str(index), what="fact field")
    for key in ("id", "measures", "source"):
        if not isinstance(entry.get(key), str) or not entry[key].strip():
            raise fail(f"the fact needs a non-empty {key!r}")
    value = _number(entry.get("value"))
    if value is None:
        raise fail("the fact's 'value' must be a number, e.g. 46225, 2.6e12 or 1/3")
    unit = entry.get("unit")
    if unit is not None and unit not in UNIT_FORMS:
        raise fail(f"unknown unit {unit!r}", hint=f"units: {', '.join(UNIT_FORMS)}")
    rounded = entry.get("rounded", [])
    rounded_values = [_number(v) for v in (rounded if isinstance(rounded, list) else [rounded])]
    if any(v is None for v in rounded_values):
        raise fail("'rounded' must be a list of numbers")
    source = entry["source"].strip()
    quote = entry.get("quote")
    if source not in sources and not source.startswith(("https://", "http://")):
        raise fail(
            f"source {source!r} is not in 'sources' and is not a URL",
            hint=f"sources: {', '.join(sources)}; or name a public document by its URL",
        )
    quotes = quote if isinstance(quote, list) else [quote] if quote is not None else []
    if not all(isinstance(q, str) and q.strip() for q in quotes):
        raise fail("'quote' must be the source's words, or a list of them")
    if source in texts:
        if not quotes:
            raise fail(f"a fact from {source!r} needs a 'quote' of the words that give it")
        for missing in (q for q in quotes if _squash(q) not in texts[source]):
            raise fail(
                f"the quote {missing!r} is not in {sources[source].path}",
                hint="copy the words exactly as the source has them",
            )
    return Fact(
        id=entry["id"].strip(),
        value=value,
        unit=unit,
        measures=entry["measures"].strip(),
        source=source,
        quotes=tuple(quotes),
        rounded=tuple(v for v in rounded_values if v is not None),
        attribute=bool(entry.get("attribute", False)),
        on_air=bool(entry.get("on_air", True)),
        line=line,
    )


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(Fraction(value.strip())) if "/" in value else float(value)
        except (ValueError, ZeroDivisionError):
            return None
    return None


def _squash(text: str) -> str:
    return " ".join(text.split()).lower()


@dataclass(frozen=True)
class Figure:
    """A figure found in a turn."""

    value: float
    """Its value, scale words applied."""

    unit: str | None
    """Canonical unit, if one follows it."""

    text: str
    """How it reads once words are digits, for messages."""

    sentence: str
    """The sentence it stands in."""

    turn: Turn
    """The turn that says it."""


@dataclass
class FactReport:
    """What the fact check found."""

    figures: list[tuple[Figure, Fact]] = field(default_factory=list)
    """Every checked figure and the entry it matched."""

    unused: list[Fact] = field(default_factory=list)
    """Entries no figure matched."""


def find_figures(turn: Turn) -> list[Figure]:
    """Every figure in a turn's display text, in order."""
    figures = []
    for sentence in _SENTENCE.split(turn.text):
        figures += [
            Figure(value, unit, text, sentence, turn) for value, unit, text in _figures(sentence)
        ]
    return figures


def _figures(sentence: str) -> Iterable[tuple[float, str | None, str]]:
    text = _digits(sentence)
    for match in _NUMBER.finditer(text):
        tail = match.group("tail") or ""
        if tail.lower() in ("st", "nd", "rd", "th"):
            continue  # an ordinal
        value = float(match.group("num"))
        end = match.end()
        scale = None
        if not tail:
            scale = re.match(r"\s*(thousand|million|billion|trillion)\b", text[end:], re.I)
            if scale:
                value *= _SCALES[scale.group(1).lower()]
                end += scale.end()
        unit, length = _unit_at(tail + text[end:]) if tail else _unit_at(text[end:])
        if tail and unit is None:
            continue  # part of a name, e.g. "4N"
        end += max(length - len(tail), 0)
        if match.group("sign"):
            unit = "%"
        if match.group("cur"):
            unit = "USD"
        near_month = _MONTH_AFTER.match(text[end:]) or _MONTH_BEFORE.search(text[: match.start()])
        if unit is None and near_month and value <= 31:
            unit = "day"
        decimal = "." in match.group("num")
        if not (unit or scale or decimal or value >= 10):
            continue  # a small bare count: ordinary speech
        if unit is None and value.is_integer() and int(value) in YEAR_RANGE and not scale:
            unit = "year"
        yield value, unit, text[match.start() : end].strip()


def _digits(sentence: str) -> str:
    """The sentence with number words as digits (text2num) and thousands commas dropped."""
    # Shield words text2num would misread: "second" is a unit of time here, not an
    # ordinal, and "hundreds" or "thousands" are vague amounts, not figures.
    text = _SHIELDED.sub(lambda m: m.group(0)[0] + _SHIELD + m.group(0)[1:], sentence)
    text = re.sub(
        r"(?<!and )\b(a|one)[- ](half|third|quarter)\b",
        lambda m: repr(float(_FRACTIONS[m.group(2).lower()])),
        text,
        flags=re.I,
    )
    text = alpha2digit(text, "en", threshold=0).replace(_SHIELD, "")
    text = _THOUSANDS.sub(lambda m: m.group(1).replace(",", ""), text)
    # text2num leaves "1.43 1000000000" for "one point four three billion": join them.
    text = re.sub(
        r"(\d+(?:\.\d+)?) (1000(?:000){0,3})\b",
        lambda m: _format_plain(float(m.group(1)) * int(m.group(2))),
        text,
    )
    return re.sub(r"(\d+) and a half\b", lambda m: f"{m.group(1)}.5", text)


def _format_plain(value: float) -> str:
    return str(int(value)) if value.is_integer() else repr(value)


def _unit_at(rest: str) -> tuple[str | None, int]:
    """The unit that ``rest`` starts with, and how many characters of ``rest`` it takes."""
    stripped = rest.lstrip(" -")
    skipped = len(rest) - len(stripped)
    probe = stripped.lower()
    for form, unit in _UNITS:
        if probe.startswith(form) and not probe[len(form) : len(form) + 1].isalnum():
            return unit, skipped + len(form)
    return None, 0


def check_facts(script: Script, sheet: FactSheet) -> FactReport:
    """Match every figure in ``script`` to ``sheet``; raise listing every problem."""
    report = FactReport()
    problems: list[str] = []
    used: set[str] = set()
    counted: dict[tuple[int, str], int] = {}
    for turn in script.turns():
        for figure in find_figures(turn):
            where = f"{script.path}:{turn.line}"
            key = (turn.line, figure.sentence)
            counted[key] = counted.get(key, 0) + 1
            if counted[key] == MAX_FIGURES_PER_SENTENCE + 1:
                problems.append(
                    f"{where}: more than {MAX_FIGURES_PER_SENTENCE} figures in one sentence "
                    f"({figure.sentence!r}): split it so a listener can follow"
                )
            fact = _match(figure, sheet.facts)
            if fact is None:
                problems.append(f"{where}: {_describe(figure)}: {_why(figure, sheet.facts)}")
                continue
            if fact.attribute and not _ATTRIBUTION.search(figure.sentence):
                problems.append(
                    f"{where}: {_describe(figure)} ({fact.id}) must be attributed in its "
                    f"sentence, e.g. 'according to press reports' or 'Cerebras says'"
                )
            used.add(fact.id)
            report.figures.append((figure, fact))
    if problems:
        raise FactCheckError(problems, sheet.path)
    report.unused = [fact for fact in sheet.facts if fact.id not in used and fact.on_air]
    return report


def _match(figure: Figure, facts: list[Fact]) -> Fact | None:
    """The entry for ``figure``: same value, and the same unit before a missing one."""
    candidates = [fact for fact in facts if fact.matches(figure.value)]
    for agrees in (
        lambda fact: fact.unit == figure.unit,
        lambda fact: figure.unit is None or fact.unit is None,
    ):
        for fact in candidates:
            if agrees(fact):
                return fact
    return None


def _describe(figure: Figure) -> str:
    return f"{_format(figure.value)}{' ' + figure.unit if figure.unit else ''} ({figure.text!r})"


def _why(figure: Figure, facts: list[Fact]) -> str:
    same_unit = [fact for fact in facts if figure.unit is not None and fact.unit == figure.unit]
    if same_unit:
        nearest = min(
            same_unit,
            key=lambda f: abs(
                math.log10(abs(f.value) + 1e-12) - math.log10(abs(figure.value) + 1e-12)
            ),
        )
        return (
            f"does not match the fact sheet: nearest is {nearest.id} = "
            f"{_format(nearest.value)} {nearest.unit} ({nearest.measures}); correct the figure, "
            "or add a sourced entry"
        )
    return "no entry in the fact sheet: add one with its source, or cut the figure"


def _format(value: float) -> str:
    return f"{value:,.0f}" if value.is_integer() else f"{value:,.6g}"


class FactCheckError(PipelineError):
    """Figures that the fact sheet does not support: every one, each at its line."""

    def __init__(self, problems: list[str], sheet: Path) -> None:
        super().__init__(
            f"{len(problems)} figure problem(s) against {sheet}",
            hint="every figure a host says needs a sourced entry in the fact sheet",
        )
        self.problems = problems

    def __str__(self) -> str:
        return "\n".join([*self.problems, super().__str__()])
