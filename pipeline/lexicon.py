"""The pronunciation lexicon: how to say the words engines get wrong, once for every engine.

``voices/lexicon.yaml`` (the script's ``lexicon:``) maps a term to how it is said::

    Cerebras:
      ipa: səɹˈɛbɹəs        # for engines that take phonemes (Piper's [[ ... ]])
      respell: suh rebb russ  # for engines that read text (Festival, Coqui)
      words: cerebras         # what a listener hears, in plain words (QA's reference)

A voice file may name its own ``lexicon:`` whose entries override the show's for that
voice. Terms match as whole words, case as written unless ``case: any``; an all-capitals
term also matches its plural ("GPUs"), said with a final z.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path

from pipeline.errors import PipelineError
from pipeline.yamlfile import read_yaml

ENTRY_KEYS = ("ipa", "respell", "words", "case")
_RESPELL = re.compile(r"^[A-Za-z' -]+$")


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
            for key in value:
                if key not in ENTRY_KEYS:
                    raise fail(
                        f"unknown field {key!r} for {term!r}",
                        f"fields: {', '.join(ENTRY_KEYS)}",
                        doc.line_of(term, str(key)),
                    )
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
            entries[term] = Entry(
                term,
                " ".join(value["ipa"].split()),
                respell,
                " ".join(words.lower().split()),
                case == "any",
                path,
                line,
            )
        return Lexicon(entries)

    def overridden_by(self, other: Lexicon) -> Lexicon:
        """This lexicon with ``other``'s entries replacing or adding to its own."""
        return Lexicon({**self.entries, **other.entries})

    def pattern(self) -> re.Pattern[str] | None:
        """One regex matching any term as a whole word (longest first), or None if empty."""
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


def with_plural(entry: Entry) -> Entry:
    """The entry said in the plural: a final z."""
    return replace(entry, ipa=entry.ipa + "z", respell=entry.respell + "z", words=entry.words + "s")


def with_possessive(entry: Entry) -> Entry:
    """The entry with "'s": "iz" after a hissing sound, "z" after anything else."""
    hiss = entry.ipa.endswith(("s", "z", "ʃ", "ʒ"))
    return replace(
        entry,
        ipa=entry.ipa + ("ɪz" if hiss else "z"),
        respell=entry.respell + ("iz" if hiss else "z"),
        words=entry.words + "'s",
    )
