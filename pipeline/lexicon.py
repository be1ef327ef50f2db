"""The pronunciation lexicon: how to say the words engines get wrong, once for every engine.

``voices/lexicon.yaml`` (the script's ``lexicon:``) maps a term to how it is said::

    Cerebras:
      ipa: səɹˈɛbɹəs        # for engines that take phonemes (Piper's [[ ... ]])
      respell: suh rebb russ  # for engines that read text (Festival, Coqui)
      words: cerebras         # what a listener hears, in plain words (QA's reference)
      kokoro: səɹˈɛbɹəs     # optional: Kokoro's (misaki) phonemes, else converted from ipa

A voice file may name its own ``lexicon:`` whose entries override the show's for that
voice. Terms match as whole words, case as written unless ``case: any``; an all-capitals
term also matches its plural ("GPUs"), said with a final z.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, replace
from enum import Enum
from pathlib import Path

from pipeline.errors import PipelineError
from pipeline.yamlfile import read_yaml

ENTRY_KEYS = ("ipa", "respell", "words", "kokoro", "case")
_RESPELL = re.compile(r"^[A-Za-z' -]+$")
# espeak-ng's IPA to Kokoro's alphabet (misaki, US English), as misaki's own espeak fallback
# maps it, for IPA written without tie bars: diphthongs and affricates are one symbol each,
# r-coloured vowels are spelled out, the flap is T, and length marks go.
_KOKORO = {
    "eɪ": "A",
    "aɪ": "I",
    "aʊ": "W",
    "ɔɪ": "Y",
    "oʊ": "O",
    "əʊ": "O",
    "dʒ": "ʤ",
    "tʃ": "ʧ",
    "ɜːɹ": "ɜɹ",
    "ɜː": "ɜɹ",
    "ɝɹ": "ɜɹ",
    "ɝ": "ɜɹ",
    "ɚɹ": "əɹ",  # espeak writes "memory" mˈɛmɚɹi: one r
    "ɚ": "əɹ",
    "ɪə": "iə",
    "ɾ": "T",
    "ʔ": "t",
    "ɐ": "ə",
    "ɫ": "l",
    "ɬ": "l",
    "r": "ɹ",
    "g": "ɡ",
    "e": "A",
    "o": "ɔ",
    "x": "k",
    "ç": "k",
    "ː": "",
    "ʲ": "",
    "\u0303": "",
}


def _longest_first(table: dict[str, str]) -> re.Pattern[str]:
    """A regex matching any key of ``table``, the longest where several would ("eɪ", not "e")."""
    return re.compile("|".join(re.escape(k) for k in sorted(table, key=len, reverse=True)))


_KOKORO_RE = _longest_first(_KOKORO)
_SYLLABIC = re.compile("(\\S)\u0329")


def ipa_to_kokoro(ipa: str) -> str:
    """espeak-ng IPA in Kokoro's phoneme alphabet: "ˌeɪtʃbˌiːˈɛm" -> "ˌAʧbˌiˈɛm"."""
    kokoro = _KOKORO_RE.sub(lambda m: _KOKORO[m.group(0)], ipa)
    return _SYLLABIC.sub("ᵊ\\1", kokoro)  # a syllabic consonant: a small schwa before it


# espeak-ng's IPA to the ARPAbet phones of CMU's dictionary (pocketsphinx's US model),
# stress dropped: how QA tells the recogniser the terms its dictionary lacks.
_ARPABET = {
    "eɪ": "EY",
    "aɪ": "AY",
    "aʊ": "AW",
    "ɔɪ": "OY",
    "oʊ": "OW",
    "əʊ": "OW",
    "dʒ": "JH",
    "tʃ": "CH",
    "ɜːɹ": "ER",
    "ɜː": "ER",
    "ɝɹ": "ER",
    "ɝ": "ER",
    "ɚɹ": "ER",
    "ɚ": "ER",
    "əɹ": "ER",
    "iː": "IY",
    "i": "IY",
    "ɪ": "IH",
    "ᵻ": "IH",
    "ɛ": "EH",
    "e": "EY",
    "æ": "AE",
    "ɑː": "AA",
    "ɑ": "AA",
    "ɒ": "AA",
    "ɔː": "AO",
    "ɔ": "AO",
    "o": "OW",
    "ʊ": "UH",
    "uː": "UW",
    "u": "UW",
    "ʌ": "AH",
    "ə": "AH",
    "ɐ": "AH",
    "b": "B",
    "d": "D",
    "f": "F",
    "ɡ": "G",
    "g": "G",
    "h": "HH",
    "j": "Y",
    "k": "K",
    "l": "L",
    "m": "M",
    "n": "N",
    "ŋ": "NG",
    "p": "P",
    "ɹ": "R",
    "r": "R",
    "s": "S",
    "ʃ": "SH",
    "t": "T",
    "ɾ": "T",
    "ʔ": "T",
    "θ": "TH",
    "ð": "DH",
    "v": "V",
    "w": "W",
    "z": "Z",
    "ʒ": "ZH",
    "x": "K",
}
_ARPABET_RE = _longest_first(_ARPABET)


def ipa_to_arpabet(ipa: str) -> str | None:
    """espeak-ng IPA as CMU dictionary phones ("səɹˈɛbɹəs" -> "S ER EH B R AH S"); None if
    it has a symbol with no ARPAbet phone."""
    plain = re.sub("[ˈˌ \u0329]", "", ipa)
    phones = _ARPABET_RE.findall(plain)
    return " ".join(_ARPABET[p] for p in phones) if "".join(phones) == plain else None


class Mode(Enum):
    """How lexicon terms are given to an engine."""

    PHONEMES = "phonemes"
    """``[[ipa]]`` blocks in espeak-ng's IPA (Piper)."""

    KOKORO = "kokoro"
    """``[term](/phonemes/)`` links in Kokoro's (misaki) alphabet (hibari)."""

    RESPELL = "respell"
    """Respellings (Festival, Coqui)."""

    WORDS = "words"
    """Plain words: what a listener should hear (the QA reference)."""


@dataclass(frozen=True)
class Entry:
    """How to say one term."""

    term: str
    """The term as written in scripts, e.g. ``SRAM``."""

    ipa: str
    """Phonemes in espeak-ng's IPA, for engines that take them."""

    respell: str
    """A spelling that text-reading engines say right, e.g. ``ess ram``."""

    words: str
    """What the listener should hear, in plain lower-case words."""

    any_case: bool
    """Match whatever the case."""

    path: Path
    """The lexicon file the entry comes from."""

    line: int
    """Its line there."""

    kokoro_given: str | None = None
    """Phonemes in Kokoro's alphabet as written in the entry; None: converted from ``ipa``."""

    @property
    def kokoro(self) -> str:
        """Phonemes in Kokoro's (misaki) alphabet, for hibari."""
        return self.kokoro_given or ipa_to_kokoro(self.ipa)

    def phonemes(self, mode: Mode) -> str | None:
        """The phonemes ``mode`` gives an engine (None for modes that give text)."""
        return {Mode.PHONEMES: self.ipa, Mode.KOKORO: self.kokoro}.get(mode)

    def form(self, mode: Mode) -> str:
        """The term as an engine taking ``mode`` is given it."""
        if mode is Mode.PHONEMES:
            return f"[[{self.ipa}]]"
        if mode is Mode.KOKORO:
            return f"[{self.term}](/{self.kokoro}/)"
        return self.respell if mode is Mode.RESPELL else self.words

    def source(self, mode: Mode) -> str:
        """Where ``mode``'s phonemes come from, for error messages."""
        if mode is Mode.KOKORO and not self.kokoro_given:
            return f"the phonemes converted from the IPA of {self.term!r}"
        return f"the {'kokoro' if mode is Mode.KOKORO else 'IPA'} phonemes of {self.term!r}"

    @property
    def plural(self) -> bool:
        """Whether "<term>s" matches too (all-capitals terms such as GPU)."""
        letters = [c for c in self.term if c.isalpha()]
        return bool(letters) and all(c.isupper() for c in letters)


@dataclass(frozen=True)
class Lexicon:
    """Terms and how to say them."""

    entries: dict[str, Entry]
    """Entries by term."""

    @staticmethod
    def empty() -> Lexicon:
        """A lexicon with no entries."""
        return Lexicon({})

    @staticmethod
    def load(path: Path) -> Lexicon:
        """Read and check a lexicon file."""
        doc = read_yaml(path, "lexicon")
        if doc.data is None:
            return Lexicon.empty()
        if not isinstance(doc.data, dict):
            raise doc.error("a lexicon maps each term to its ipa, respell and words")
        entries = {}
        for term, value in doc.data.items():
            term = str(term)
            line = doc.line_of(term)

            def fail(message: str, hint: str | None = None, at: int = line) -> PipelineError:
                return PipelineError(message, path=path, line=at, hint=hint)

            if not isinstance(value, dict):
                raise fail(
                    f"{term!r} needs ipa and respell",
                    "e.g. 'SRAM: {ipa: ˈɛsɹˌæm, respell: ess ram}'",
                )
            doc.check_keys(value, ENTRY_KEYS, term, of=repr(term))
            for key in ("ipa", "respell"):
                if not isinstance(value.get(key), str) or not value[key].strip():
                    raise fail(f"{term!r} needs a non-empty {key!r}", at=doc.line_of(term, key))
            respell = " ".join(value["respell"].split())
            if not _RESPELL.match(respell):
                raise fail(
                    f"respelling {respell!r} of {term!r} must be letters and spaces",
                    "engines read digits and symbols their own way",
                    doc.line_of(term, "respell"),
                )
            case = value.get("case", "exact")
            if case not in ("exact", "any"):
                raise fail("'case' is 'exact' or 'any'", at=doc.line_of(term, "case"))
            words = value.get("words", respell.lower())
            if not isinstance(words, str) or not words.strip():
                raise fail(f"'words' of {term!r} must be text", at=doc.line_of(term, "words"))
            kokoro = value.get("kokoro")
            if kokoro is not None and (not isinstance(kokoro, str) or not kokoro.strip()):
                raise fail(
                    f"'kokoro' of {term!r} must be phonemes",
                    "e.g. 'kokoro: səɹˈɛbɹəs' (misaki's alphabet)",
                    doc.line_of(term, "kokoro"),
                )
            entries[term] = Entry(
                term,
                " ".join(value["ipa"].split()),
                respell,
                " ".join(words.lower().split()),
                case == "any",
                path,
                line,
                " ".join(kokoro.split()) if kokoro else None,
            )
        return Lexicon(entries)

    def overridden_by(self, other: Lexicon) -> Lexicon:
        """This lexicon with ``other``'s entries replacing or adding to its own."""
        return Lexicon({**self.entries, **other.entries})

    def pattern(self) -> re.Pattern[str] | None:
        """One regex matching any term as a whole word (longest first), or None if empty."""
        return self._pattern

    @functools.cached_property
    def _pattern(self) -> re.Pattern[str] | None:  # made once: every sentence asks for it
        if not self.entries:
            return None
        alternatives = []
        for entry in sorted(self.entries.values(), key=lambda e: -len(e.term)):
            body = re.escape(entry.term)
            if entry.any_case:
                body = f"(?i:{body})"
            plural = "(?:s(?![\\w-]))?" if entry.plural else ""
            alternatives.append(f"{body}{plural}")
        terms = "|".join(alternatives)
        return re.compile(rf"(?<![\w-])(?:{terms})(?:'s)?(?![\w-])")

    def lookup(self, written: str) -> tuple[Entry, bool]:
        """The entry for a matched term, and whether it was the plural."""
        for candidate, plural in ((written, False), (written[:-1], True)):
            if candidate in self.entries:
                return self.entries[candidate], plural
            for entry in self.entries.values():
                if entry.any_case and entry.term.lower() == candidate.lower():
                    return entry, plural
        raise KeyError(written)


def _ending(entry: Entry, ipa: str, respell: str, words: str) -> Entry:
    # A spelled-out term ends in a letter: "g p u" + "s" is said "g p u's".
    if words == "s" and len(entry.words.split()[-1]) == 1:
        words = "'s"
    return replace(
        entry,
        ipa=entry.ipa + ipa,
        respell=entry.respell + respell,
        words=entry.words + words,
        kokoro_given=entry.kokoro_given + ipa if entry.kokoro_given else None,
    )


def with_plural(entry: Entry) -> Entry:
    """The entry said in the plural: a final z."""
    return _ending(entry, "z", "z", "s")


def with_possessive(entry: Entry) -> Entry:
    """The entry with "'s": "iz" after a hissing sound, "z" after anything else."""
    hiss = entry.ipa.endswith(("s", "z", "ʃ", "ʒ"))
    return _ending(entry, "ɪz" if hiss else "z", "iz" if hiss else "z", "'s")
