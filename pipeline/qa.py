"""QA by an independent recogniser: what does a listener actually hear?

Every turn of the rendered MP3 is cut out (its place comes from the timeline), resampled
to 16 kHz and decoded by pocketsphinx with the US English model its PyPI wheel ships. What
it heard is compared with what should be heard (the turn's display text in plain words,
lexicon terms in their ``words`` form) as a word error rate (jiwer). The report gives the
WER per turn and per host, the worst turns with what was heard, each lexicon term as
heard, and each host's speaking rate. It is a relative, regression measure: a recogniser
with a general vocabulary misses names and acronyms even when they are said well, so
compare runs, not absolute numbers. It never fails the build on its own.
"""

from __future__ import annotations

import json
import multiprocessing
import re
import statistics
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import jiwer
import numpy as np
import soundfile
import soxr

from pipeline.errors import PipelineError
from pipeline.lexicon import Lexicon
from pipeline.package import write_text
from pipeline.speech import Mode, speak

RECOGNISER_RATE = 16_000
WORST = 10
_decoder: Any = None  # one pocketsphinx decoder per worker process


@dataclass(frozen=True)
class TurnScore:
    """One turn as heard."""

    line: int
    """Script line of the turn."""

    speaker: str
    """Speaker id."""

    start: float
    """Seconds into the episode."""

    expected: str
    """What should be heard, normalized."""

    heard: str
    """What the recogniser heard."""

    wer: float
    """Word error rate of ``heard`` against ``expected``."""

    words: int
    """Words in the turn as written."""

    seconds: float
    """Length of the turn's speech."""


@dataclass(frozen=True)
class TermHeard:
    """One use of a lexicon term and what the recogniser made of it."""

    term: str
    """The term as written."""

    line: int
    """Script line of the turn that says it."""

    expected: str
    """Its plain words."""

    heard: str
    """The words the recogniser heard in its place."""


@dataclass(frozen=True)
class HostSummary:
    """One host's numbers."""

    turns: int
    """Turns scored."""

    median_wer: float
    """Median of the turns' word error rates."""

    mean_wer: float
    """Mean of the turns' word error rates."""

    words_per_minute: float
    """Words as written over minutes of speech."""


@dataclass(frozen=True)
class QAReport:
    """Everything QA measured."""

    audio: str
    """The MP3 that was listened to."""

    hosts: dict[str, HostSummary]
    """Per host."""

    turns: list[TurnScore]
    """Per turn, in order."""

    terms: list[TermHeard]
    """Each lexicon term used, as heard."""


def plain(text: str) -> str:
    """Lower-case words only: how references and hypotheses are compared."""
    text = text.lower().replace("-", " ")
    text = re.sub(r"[^a-z0-9' ]+", " ", text)
    return " ".join(word.strip("'") for word in text.split() if word.strip("'"))


def _start_worker() -> None:
    global _decoder
    from pocketsphinx import Decoder  # the wheel ships the en-us model

    _decoder = Decoder(samprate=RECOGNISER_RATE, loglevel="FATAL")


def _recognise(samples: np.ndarray) -> str:
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2").tobytes()
    _decoder.start_utt()
    _decoder.process_raw(pcm, full_utt=True)
    _decoder.end_utt()
    hypothesis = _decoder.hyp()
    return hypothesis.hypstr if hypothesis is not None else ""


def listen(mp3: Path, timeline: dict[str, Any], lexicon: Lexicon, workers: int = 2) -> QAReport:
    """Recognise every turn of ``mp3`` and score it."""
    try:
        audio, rate = soundfile.read(mp3, dtype="float32", always_2d=True)
    except (OSError, RuntimeError) as exc:
        raise PipelineError(f"cannot read {mp3}: {exc}", hint="run 'make episode' first") from exc
    mono = audio.mean(axis=1)
    turns = timeline["turns"]
    clips = [
        soxr.resample(
            mono[round(t["start"] * rate) : round(t["end"] * rate)], rate, RECOGNISER_RATE
        )
        for t in turns
    ]
    # "spawn": a fresh interpreter per worker, safe whatever threads this process runs.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        max_workers=workers, initializer=_start_worker, mp_context=context
    ) as pool:
        heard = list(pool.map(_recognise, clips, chunksize=4))
    scores, terms = [], []
    pattern = lexicon.pattern()
    for turn, hypothesis in zip(turns, heard, strict=True):
        expected = plain(speak(turn["text"], lexicon, Mode.WORDS))
        hyp = plain(hypothesis)
        scores.append(
            TurnScore(
                line=turn["line"],
                speaker=turn["speaker"],
                start=round(turn["start"], 2),
                expected=expected,
                heard=hyp,
                wer=round(jiwer.wer(expected, hyp) if expected else 0.0, 3),
                words=len(turn["text"].split()),
                seconds=round(turn["end"] - turn["start"], 2),
            )
        )
        if pattern is not None and expected:
            terms += _terms_heard(turn, expected, hyp, lexicon, pattern)
    return QAReport(str(mp3), _summaries(scores), scores, terms)


def _terms_heard(
    turn: dict[str, Any], expected: str, hyp: str, lexicon: Lexicon, pattern: re.Pattern[str]
) -> list[TermHeard]:
    """Each term in the turn, and the recognised words aligned with its words."""
    ref_words = expected.split()
    hyp_words = hyp.split()
    alignment = jiwer.process_words(expected, hyp or "<silence>").alignments[0]
    found = []
    cursor = 0
    for match in pattern.finditer(turn["text"]):
        term_words = plain(speak(match.group(0), lexicon, Mode.WORDS)).split()
        at = _find(ref_words, term_words, cursor)
        if at is None:
            continue
        cursor = at + len(term_words)
        span = [c for c in alignment if c.ref_start_idx < cursor and c.ref_end_idx > at]
        heard_words: list[str] = []
        for chunk in span:
            if chunk.type in ("equal", "substitute"):
                lo = chunk.hyp_start_idx + max(0, at - chunk.ref_start_idx)
                hi = chunk.hyp_end_idx - max(0, chunk.ref_end_idx - cursor)
                heard_words += hyp_words[lo:hi]
        found.append(
            TermHeard(match.group(0), turn["line"], " ".join(term_words), " ".join(heard_words))
        )
    return found


def _find(words: list[str], part: list[str], start: int) -> int | None:
    for index in range(start, len(words) - len(part) + 1):
        if words[index : index + len(part)] == part:
            return index
    return None


def _summaries(scores: list[TurnScore]) -> dict[str, HostSummary]:
    hosts: dict[str, list[TurnScore]] = {}
    for score in scores:
        hosts.setdefault(score.speaker, []).append(score)
    return {
        speaker: HostSummary(
            turns=len(own),
            median_wer=round(statistics.median(s.wer for s in own), 3),
            mean_wer=round(statistics.fmean(s.wer for s in own), 3),
            words_per_minute=round(
                sum(s.words for s in own) / (sum(s.seconds for s in own) / 60), 1
            ),
        )
        for speaker, own in hosts.items()
    }


def to_markdown(report: QAReport, names: dict[str, str]) -> str:
    """The report for people."""
    lines = [
        "# QA: what a speech recogniser heard",
        "",
        f"Audio: `{report.audio}`. Recogniser: pocketsphinx (US English model). "
        "Word error rate (WER) against the script in plain words; lower is better. "
        "A relative measure: compare runs, not absolute numbers.",
        "",
        "## Hosts",
        "",
        "| host | turns | median WER | mean WER | words a minute |",
        "|---|---|---|---|---|",
    ]
    for speaker, summary in report.hosts.items():
        lines.append(
            f"| {names.get(speaker, speaker)} | {summary.turns} | "
            f"{summary.median_wer:.2f} | {summary.mean_wer:.2f} | "
            f"{summary.words_per_minute:.0f} |"
        )
    lines += ["", f"## The {WORST} worst turns", ""]
    for score in sorted(report.turns, key=lambda s: -s.wer)[:WORST]:
        lines += [
            f"- line {score.line}, {names.get(score.speaker, score.speaker)}, WER {score.wer:.2f}",
            f"  - expected: {score.expected}",
            f"  - heard: {score.heard or '(nothing)'}",
        ]
    lines += [
        "",
        "## Lexicon terms as heard",
        "",
        "| term | line | expected | heard |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {t.term} | {t.line} | {t.expected} | {t.heard or '(nothing)'} |" for t in report.terms
    ]
    return "\n".join(lines) + "\n"


def write_reports(report: QAReport, folder: Path, names: dict[str, str]) -> tuple[Path, Path]:
    """``qa.json`` and ``qa.md`` in ``folder``, written atomically."""
    data = asdict(report)
    json_path = write_text(folder / "qa.json", json.dumps(data, indent=2) + "\n")
    md_path = write_text(folder / "qa.md", to_markdown(report, names))
    return json_path, md_path
