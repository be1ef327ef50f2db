"""Stage 2, speech text: what each turn's engine is asked to say.

The script keeps display text (transcripts and show notes use it); this stage makes the
words an engine reads, in three steps:

1. Lexicon terms (``pipeline/lexicon.py``) are set aside, so "CS-2" or "A100" is not read
   as a number.
2. The rest is normalized for the ear: money ("$3.3 trillion" -> "three point three
   trillion dollars"), percentages, multiples ("56x" -> "fifty-six times"), units and rates
   ("20 PB/s" -> "twenty petabytes per second", "46,225 mm²"), years ("2024" -> "twenty
   twenty-four"), ordinals, decimals, ranges ("80-192 GB" -> "eighty to one hundred ninety-
   two gigabytes"), symbols ("9+3", "&", "/"), model numbers ("B200" -> "B two hundred"),
   Markdown and typographic punctuation. Number words come from num2words.
3. Each term comes back in the form its engine takes: ``[[ipa]]`` for Piper,
   ``[term](/phonemes/)`` in Kokoro's alphabet for hibari, the respelling for an engine that
   reads text (Festival, Coqui), or plain words for the QA reference.

A turn is spoken sentence by sentence (``sentences``), so the pauses between them are the
pipeline's (``pipeline/timing.py``), and each sentence's place in the mix is known.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from num2words import num2words

from pipeline.errors import PipelineError
from pipeline.lexicon import Lexicon, Mode, with_plural, with_possessive
from pipeline.script import Script, Turn
from pipeline.units import SPOKEN

__all__ = ["Mode", "Utterance", "normalize", "sentences", "speak", "utterances"]


@dataclass(frozen=True)
class Utterance:
    """A turn and the text its engine will speak, sentence by sentence."""

    turn: Turn
    """The turn as written."""

    sentences: tuple[str, ...]
    """Speech text for the engine, one entry per sentence of the turn's display text."""

    words: str
    """What a listener should hear, in plain words."""

    @property
    def text(self) -> str:
        """The whole turn's speech text."""
        return " ".join(self.sentences)


# A sentence ends at . ! ? or an ellipsis, before white space (closing quotes stay with it).
# Far above a spoken sentence (the episode's longest is 31 words); the cap keeps what an
# engine is handed at once within what its model was made for.
MAX_SENTENCE_WORDS = 60
MAX_SENTENCE_CHARS = 400
_SENTENCE_END = re.compile(r"(?<=[.!?\u2026])[\"\u201d\u2019')\]]*\s+")


def sentences(text: str) -> list[str]:
    """Display text cut into sentences: what an engine is given at once, and what a caption
    cue starts with."""
    parts, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        parts.append(text[start : match.end()].strip())
        start = match.end()
    parts.append(text[start:].strip())
    return [part for part in parts if part]


_LINK = re.compile(r"\[([^\[\]]+)\]\([^)]*\)")
_EMPHASIS = re.compile(r"(\*{1,3}|_{1,3}|`+)(?=\S)(.+?)(?<=\S)\1")
_PLAIN = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u2026": "...",
        "\u00a0": " ",
        "\u00d7": "x",
        "\u2212": "-",
    }
)
_SPACE = re.compile(r"\s+")
# A lexicon term's place while the text is normalized: a private-use character (no pass
# touches one) for each term, counting up from U+E100.
_SLOT_BASE = 0xE100
_SLOT_RE = re.compile("[\ue100-\uf8ff]")
NUMBER = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+"
_SCALES = {
    "k": "thousand",
    "m": "million",
    "b": "billion",
    "bn": "billion",
    "t": "trillion",
    "thousand": "thousand",
    "million": "million",
    "billion": "billion",
    "trillion": "trillion",
}
# Unit abbreviations after a number: (singular, plural). Longest first when matching.
UNITS = SPOKEN  # written unit symbols and how a voice reads them
_UNIT_RE = "|".join(re.escape(u) for u in sorted(UNITS, key=len, reverse=True))
_WORD_RATE = re.compile(
    r"(?<=\S)/sec\b|(?<=bytes|flops)/s\b|(?<=bits)/s\b|(?<=[\ue100-\uf8ff])/s\b"
)
_SCALED = re.compile(rf"(?<![\w.$])({NUMBER})([KMBT])(?![\w])")
_RANGE = re.compile(rf"(?<![\w.])(\$?)({NUMBER})\s*[-\u2013]\s*\$?({NUMBER})(?![\w.])")
_PLUS = re.compile(rf"(?<![\w.])({NUMBER})\s*\+\s*({NUMBER})(?![\w.])")
_MONEY = re.compile(
    rf"\$({NUMBER})(?:\s*(thousand|million|billion|trillion)\b|(bn|[kKmMbBtT])(?![\w]))?"
)
_PERCENT = re.compile(rf"({NUMBER})\s*%")
_TIMES = re.compile(rf"({NUMBER})\s*x(?![\w])")
_UNIT = re.compile(rf"(?<![\w.])({NUMBER})(?:\s*|-)({_UNIT_RE})(?![\w²])")
_ORDINAL = re.compile(r"(?<![\w.])(\d+)(st|nd|rd|th)\b")
_YEAR = re.compile(r"(?<![\w.,$])(1[1-9]\d\d|20\d\d)(s?)(?![\w%]|[.,]\d)")
_MODEL = re.compile(r"(?<![\w-])([A-Z]{1,3})-?(\d+)(?![\w.])")
_NUMBER_RE = re.compile(rf"(?<![\w])({NUMBER})(?![\w])")


def number_words(value: str) -> str:
    """A number as it is said in American English: "46,225" -> "forty-six thousand two
    hundred twenty-five", "2.6" -> "two point six"."""
    plain = value.replace(",", "")
    if plain.startswith("."):
        plain = "0" + plain
    words = num2words(float(plain) if "." in plain else int(plain))
    return words.replace(",", "").replace(" and ", " ")


def _year(match: re.Match[str]) -> str:
    year = int(match.group(1))
    words = num2words(year, to="year").replace(" and ", " ")
    if match.group(2):  # "1990s" -> "nineteen nineties"
        words = words[:-1] + "ies" if words.endswith("y") else words + "s"
    return words


def _money(match: re.Match[str]) -> str:
    amount = number_words(match.group(1))
    scale = match.group(2) or match.group(3)
    scale_word = f" {_SCALES[scale.lower()]}" if scale else ""
    unit = "dollar" if amount == "one" and not scale else "dollars"
    return f"{amount}{scale_word} {unit}"


def _unit(match: re.Match[str]) -> str:
    singular, plural = UNITS[match.group(2)]
    number = match.group(1)
    return f"{number_words(number)} {singular if number == '1' else plural}"


def _range(match: re.Match[str]) -> str:
    low, high = match.group(2), match.group(3)
    both_years = all(re.fullmatch(r"1[1-9]\d\d|20\d\d", n) for n in (low, high))
    if both_years:
        return f"{low} to {high}"  # the year rule reads each
    return f"{match.group(1)}{low} to {match.group(1)}{high}"


def _model(match: re.Match[str]) -> str:
    return f"{' '.join(match.group(1))} {number_words(match.group(2))}"


# In order: each pass sees what the ones before it left.
PASSES: list[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]]] = [
    (_WORD_RATE, " per second"),
    (re.compile(r"\band/or\b"), "and or"),
    (_RANGE, _range),
    (_PLUS, r"\1 plus \2"),
    (_MONEY, _money),
    (_PERCENT, lambda m: f"{number_words(m.group(1))} percent"),
    (_TIMES, lambda m: f"{number_words(m.group(1))} times"),
    (_SCALED, lambda m: f"{number_words(m.group(1))} {_SCALES[m.group(2).lower()]}"),
    (_UNIT, _unit),
    (_ORDINAL, lambda m: num2words(int(m.group(1)), to="ordinal")),
    (_YEAR, _year),
    (
        re.compile(rf"(?<![\w.])({NUMBER}) s(?![\w])"),
        lambda m: f"{number_words(m.group(1))} seconds",
    ),
    (_MODEL, _model),
    (_NUMBER_RE, lambda m: number_words(m.group(1))),
    (re.compile(r"\s*&\s*"), " and "),
    (re.compile(r"(?<=\w)/(?=\w)"), " slash "),
    (re.compile(r"\u2013|\u2014| - "), ", "),
    (re.compile(r"~\s*"), "about "),
]


def normalize(text: str) -> str:
    """Display text as an engine should read it, lexicon terms aside (see ``speak``)."""
    text = _LINK.sub(r"\1", text)
    text = _EMPHASIS.sub(r"\2", text)
    text = text.translate(_PLAIN)
    for pattern, replacement in PASSES:
        text = pattern.sub(replacement, text)
    text = re.sub(r"\s+([,.;:!?])", r"\1", text)
    return _SPACE.sub(" ", text).strip()


def speak(text: str, lexicon: Lexicon, mode: Mode) -> str:
    """The speech text for ``text``: lexicon terms in ``mode``'s form, the rest normalized."""
    terms: list[str] = []
    pattern = lexicon.pattern()

    def hold(match: re.Match[str]) -> str:
        written = match.group(0)
        possessive = written.endswith("'s")
        entry, plural = lexicon.lookup(written[:-2] if possessive else written)
        entry = with_plural(entry) if plural else entry
        entry = with_possessive(entry) if possessive else entry
        terms.append(entry.form(mode))
        return chr(_SLOT_BASE + len(terms) - 1)

    held = pattern.sub(hold, text) if pattern else text
    spoken = normalize(held)
    return _SLOT_RE.sub(lambda m: terms[ord(m.group(0)) - _SLOT_BASE], spoken)


def utterances(
    script: Script, modes: dict[str, Mode] | None = None, lexicons: dict[str, Lexicon] | None = None
) -> list[Utterance]:
    """Every turn of ``script`` with the speech text its host's engine takes, in order.

    ``modes`` and ``lexicons`` are per speaker; without them, terms stay as written and the
    text is read as words.
    """
    modes = modes or {}
    lexicons = lexicons or {}
    said = []
    for turn in script.turns():
        lexicon = lexicons.get(turn.speaker, Lexicon.empty())
        mode = modes.get(turn.speaker, Mode.WORDS)
        parts = sentences(turn.text)
        _check_sayable(turn, parts, script.path)
        spoken = tuple(speak(sentence, lexicon, mode) for sentence in parts)
        said.append(Utterance(turn, spoken, speak(turn.text, lexicon, Mode.WORDS)))
    return said


def _check_sayable(turn: Turn, parts: list[str], path: Path) -> None:
    """Refuse, at check time, a turn no engine can speak: nothing but symbols, or a
    sentence longer than engines are made for (one took a 57 GB allocation)."""
    if not any(char.isalnum() for char in turn.text):
        raise PipelineError(
            f"{turn.speaker}'s turn has no words to say",
            path=path,
            line=turn.line,
            hint="write words: emoji and symbols alone are not spoken",
        )
    for sentence in parts:
        if len(sentence.split()) > MAX_SENTENCE_WORDS or len(sentence) > MAX_SENTENCE_CHARS:
            raise PipelineError(
                f"a sentence of {turn.speaker}'s turn is {len(sentence.split())} words and "
                f"{len(sentence)} characters long (at most {MAX_SENTENCE_WORDS} words and "
                f"{MAX_SENTENCE_CHARS} characters): {sentence[:60]}...",
                path=path,
                line=turn.line,
                hint="break it with full stops: engines speak one sentence at a time",
            )
