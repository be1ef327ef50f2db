"""QA by independent listeners: what does a listener actually hear?

Every turn of the rendered MP3 is cut out (its place comes from the timeline), resampled
to 16 kHz and decoded by pocketsphinx with the US English model its PyPI wheel ships. What
it heard is compared with what should be heard (the turn's display text in plain words,
lexicon terms in their ``words`` form) as a word error rate (jiwer); one-word lexicon
terms its dictionary lacks ("cerebras") are added to it with the lexicon's pronunciation,
so a term said right can be heard right. The report gives the
WER per turn and per host, the worst turns with what was heard, each lexicon term as
heard and the terms misheard in more than half their uses, each host's speaking rate and
median pitch (Praat), and each host's speech quality (DNSMOS, ``pipeline/quality.py``)
as the engine said it and as it is in the finished MP3, for the turns long enough to score
and clear of music and the other voice. It is a relative, regression measure: a
recogniser with a general vocabulary misses names and acronyms even when they are said
well, so compare runs, not absolute numbers. It never fails the build on its own.
"""

from __future__ import annotations

import json
import re
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import jiwer
import numpy as np
import soundfile
import soxr

from pipeline import workers as pool
from pipeline.errors import PipelineError
from pipeline.files import write_text
from pipeline.lexicon import Lexicon, ipa_to_arpabet, with_plural, with_possessive
from pipeline.production import prepare
from pipeline.quality import MEASURE_LUFS, dnsmos, pitches
from pipeline.speech import Mode, speak
from pipeline.synthesize import default_workers, synthesize
from pipeline.timeline import TimedTurn, Timeline

RECOGNISER_RATE = 16_000
RECOGNISER_PAD_S = 0.25
WORST = 10
ASSESS_TIMEOUT_S = 300.0  # one turn recognised and scored: seconds, unless something is stuck
QUALITY_MIN_S = 4.0  # DNSMOS hears 9 s at a time; shorter clips are looped to fill it
MISHEARD_CER = 0.25  # the share of its letters a term may differ by and still count as heard
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

    pitch_hz: float | None = None
    """Median pitch of its voiced frames (None: none voiced)."""

    mos_raw: float | None = None
    """DNSMOS overall of the turn as the engine said it (None: not scored)."""

    mos_finished: float | None = None
    """DNSMOS overall of the turn in the finished MP3 (None: not scored)."""


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

    median_pitch_hz: float | None
    """Median pitch over the voiced frames of all its turns."""

    quality_turns: int
    """Turns scored by DNSMOS."""

    mos_raw: float | None
    """Mean DNSMOS of those turns as the engine said them."""

    mos_finished: float | None
    """Mean DNSMOS of the same turns in the finished MP3."""

    worst_mos_drop: float | None
    """The largest drop of one turn from raw to finished."""


@dataclass(frozen=True)
class Misheard:
    """A lexicon term the recogniser got wrong in more than half its uses."""

    term: str
    """The term as the lexicon has it."""

    uses: int
    """Times it is said."""

    misheard: int
    """Times it was heard as something else."""

    heard: list[str]
    """What was heard instead, one per mishearing."""


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

    misheard: list[Misheard]
    """Terms misheard in more than half their uses."""


def plain(text: str) -> str:
    """Lower-case words only: how references and hypotheses are compared."""
    text = text.lower().replace("-", " ")
    text = re.sub(r"[^a-z0-9' ]+", " ", text)
    return " ".join(word.strip("'") for word in text.split() if word.strip("'"))


def _start_worker(vocabulary: dict[str, str]) -> None:
    global _decoder
    from pocketsphinx import Decoder  # the wheel ships the en-us model

    _decoder = Decoder(samprate=RECOGNISER_RATE, loglevel="FATAL")
    for word, phones in vocabulary.items():
        if _decoder.lookup_word(word) is None:
            _decoder.add_word(word, phones, True)


def vocabulary(lexicon: Lexicon) -> dict[str, str]:
    """The lexicon's one-word terms (and their plurals and possessives) with the phones
    of their IPA: taught to the recogniser where its dictionary lacks them, so a term said
    as the lexicon says can be heard as itself."""
    words = {}
    for entry in lexicon.entries.values():
        forms = [entry, with_possessive(entry)] + ([with_plural(entry)] if entry.plural else [])
        for form in forms:
            phones = ipa_to_arpabet(form.ipa)
            token = plain(form.words)
            if phones and " " not in token:
                words[token] = phones
    return words


def _recognise(samples: np.ndarray) -> str:
    # Silence either side, as a listener hears a turn: the decoder starts its noise and
    # cepstral-mean estimates there, and does not mistake the first word for a breath.
    pad = np.zeros(round(RECOGNISER_PAD_S * RECOGNISER_RATE), dtype=np.float32)
    samples = np.concatenate([pad, samples, pad])
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2").tobytes()
    _decoder.start_utt()
    _decoder.process_raw(pcm, full_utt=True)
    _decoder.end_utt()
    hypothesis = _decoder.hyp()
    return hypothesis.hypstr if hypothesis is not None else ""


def _assess(
    clip: np.ndarray,
    quality: bool,
    raw: np.ndarray | None,
    *,
    progress: Callable[[], None] | None = None,
) -> tuple[str, np.ndarray, float | None, float | None]:
    """In a worker: what was heard, the pitch track, and DNSMOS finished and raw."""
    finished = dnsmos(clip, RECOGNISER_RATE) if quality and len(clip) else None
    original = dnsmos(raw, RECOGNISER_RATE) if quality and raw is not None and len(raw) else None
    return _recognise(clip), pitches(clip, RECOGNISER_RATE), finished, original


def quality_turns(timeline: Timeline) -> list[int]:
    """The turns DNSMOS scores: at least ``QUALITY_MIN_S`` long, with no music and no
    other voice under them, so the score is the voice's alone."""
    turns = timeline.turns
    busy = [(m.start, m.end) for m in timeline.music]
    chosen = []
    for index, turn in enumerate(turns):
        others = busy + [(t.start, t.end) for t in turns if t is not turn]
        clear = all(end <= turn.start or start >= turn.end for start, end in others)
        if clear and turn.end - turn.start >= QUALITY_MIN_S:
            chosen.append(index)
    return chosen


def listen(
    mp3: Path,
    timeline: Timeline,
    lexicon: Lexicon,
    raw: dict[int, np.ndarray] | None = None,
    workers: int = 2,
) -> QAReport:
    """Recognise every turn of ``mp3`` and score it; ``raw`` holds turns (by index, at
    ``RECOGNISER_RATE``) as the engines said them, for the quality comparison."""
    try:
        audio, rate = soundfile.read(mp3, dtype="float32", always_2d=True)
    except (OSError, RuntimeError) as exc:
        raise PipelineError(f"cannot read {mp3}: {exc}", hint="run 'make episode' first") from exc
    mono = audio.mean(axis=1)
    turns = timeline.turns
    raw = raw or {}
    scored = set(quality_turns(timeline)) & set(raw)
    clips = [
        soxr.resample(mono[round(t.start * rate) : round(t.end * rate)], rate, RECOGNISER_RATE)
        for t in turns
    ]
    # Worker processes that a kill or Ctrl-C of this one never leaves behind.
    group = pool.Group(_start_worker, (vocabulary(lexicon),), workers, ASSESS_TIMEOUT_S)
    jobs = [
        pool.Job(index, 0, _assess, (clip, index in scored, raw.get(index)), ASSESS_TIMEOUT_S)
        for index, clip in enumerate(clips)
    ]
    try:
        finished = dict(pool.run([group], jobs))
    except pool.JobFailed as exc:
        raise PipelineError(
            f"QA failed on the turn at line {turns[exc.key].line}: {exc.message}"
        ) from None
    results = [finished[index] for index in range(len(turns))]
    scores, terms = [], []
    pattern = lexicon.pattern()
    tracks: dict[str, list[np.ndarray]] = {}
    for turn, (hypothesis, track, finished, original) in zip(turns, results, strict=True):
        expected = plain(speak(turn.text, lexicon, Mode.WORDS))
        hyp = plain(hypothesis)
        if not turn.overlap:  # an overlapping turn has two voices at its start
            tracks.setdefault(turn.speaker, []).append(track)
        scores.append(
            TurnScore(
                line=turn.line,
                speaker=turn.speaker,
                start=round(turn.start, 2),
                expected=expected,
                heard=hyp,
                wer=round(jiwer.wer(expected, hyp) if expected else 0.0, 3),
                words=len(turn.text.split()),
                seconds=round(turn.end - turn.start, 2),
                pitch_hz=round(float(np.median(track)), 1) if len(track) else None,
                mos_raw=None if original is None else round(original, 3),
                mos_finished=None if finished is None else round(finished, 3),
            )
        )
        if pattern is not None and expected:
            terms += _terms_heard(turn, expected, hyp, lexicon, pattern)
    return QAReport(str(mp3), _summaries(scores, tracks), scores, terms, misheard(terms, lexicon))


def raw_turns(script_path: Path, timeline: Timeline) -> dict[int, np.ndarray]:
    """The turns QA scores for quality, spoken again by the voices the timeline names,
    unlevelled, at the recogniser's rate: what the engines said, before production."""
    overrides = {speaker: Path(host.voice) for speaker, host in timeline.hosts.items()}
    production = prepare(script_path, overrides)
    chosen = quality_turns(timeline)
    said = [production.utterances[index] for index in chosen]
    spoken = synthesize(
        said,
        production.engines,
        production.script.path,
        sample_rate=RECOGNISER_RATE,
        voices=production.voices,
        workers=default_workers(),
        measure=False,
    )
    return {index: turn.audio.samples for index, turn in zip(chosen, spoken, strict=True)}


def misheard(terms: list[TermHeard], lexicon: Lexicon) -> list[Misheard]:
    """The lexicon terms heard wrong in more than half their uses, worst first."""
    uses: dict[str, list[TermHeard]] = {}
    for heard in terms:
        written = heard.term[:-2] if heard.term.endswith("'s") else heard.term
        entry, _ = lexicon.lookup(written)
        uses.setdefault(entry.term, []).append(heard)
    found = []
    for term, said in uses.items():
        wrong = [h.heard or "(nothing)" for h in said if not heard_as(h.expected, h.heard)]
        if 2 * len(wrong) > len(said):
            found.append(Misheard(term, len(said), len(wrong), wrong))
    return sorted(found, key=lambda m: (-m.misheard / m.uses, -m.uses, m.term))


def heard_as(expected: str, heard: str) -> bool:
    """Whether ``heard`` is ``expected`` as spelled by a recogniser: the same letters but
    for spaces and apostrophes ("a i" as "ai"), or nearly ("g p u's" as "g p use")."""
    want, got = (re.sub(r"[^a-z0-9]", "", plain(words)) for words in (expected, heard))
    return want == got or (bool(want) and jiwer.cer(want, got or "-") <= MISHEARD_CER)


def _terms_heard(
    turn: TimedTurn, expected: str, hyp: str, lexicon: Lexicon, pattern: re.Pattern[str]
) -> list[TermHeard]:
    """Each term in the turn, and the recognised words aligned with its words."""
    ref_words = expected.split()
    hyp_words = hyp.split()
    alignment = jiwer.process_words(expected, hyp or "<silence>").alignments[0]
    found = []
    cursor = 0
    for match in pattern.finditer(turn.text):
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
            TermHeard(match.group(0), turn.line, " ".join(term_words), " ".join(heard_words))
        )
    return found


def _find(words: list[str], part: list[str], start: int) -> int | None:
    for index in range(start, len(words) - len(part) + 1):
        if words[index : index + len(part)] == part:
            return index
    return None


def _summaries(
    scores: list[TurnScore], tracks: dict[str, list[np.ndarray]]
) -> dict[str, HostSummary]:
    hosts: dict[str, list[TurnScore]] = {}
    for score in scores:
        hosts.setdefault(score.speaker, []).append(score)
    summaries = {}
    for speaker, own in hosts.items():
        rated = [s for s in own if s.mos_raw is not None and s.mos_finished is not None]
        drops = [round(s.mos_raw - s.mos_finished, 3) for s in rated]  # type: ignore[operator]
        voiced = np.concatenate(tracks.get(speaker) or [np.zeros(0)])
        summaries[speaker] = HostSummary(
            turns=len(own),
            median_wer=round(statistics.median(s.wer for s in own), 3),
            mean_wer=round(statistics.fmean(s.wer for s in own), 3),
            words_per_minute=round(
                sum(s.words for s in own) / (sum(s.seconds for s in own) / 60), 1
            ),
            median_pitch_hz=round(float(np.median(voiced)), 1) if len(voiced) else None,
            quality_turns=len(rated),
            mos_raw=_mean([s.mos_raw for s in rated]),
            mos_finished=_mean([s.mos_finished for s in rated]),
            worst_mos_drop=max(drops, default=None),
        )
    return summaries


def _mean(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.fmean(present), 3) if present else None


def to_markdown(report: QAReport, names: dict[str, str]) -> str:
    """The report for people."""

    def number(value: float | None, digits: int = 2) -> str:
        return "-" if value is None else f"{value:.{digits}f}"

    lines = [
        "# QA: what a listener hears",
        "",
        f"Audio: `{report.audio}`. Recogniser: pocketsphinx (US English model). "
        "Word error rate (WER) against the script in plain words; lower is better. "
        "A relative measure: compare runs, not absolute numbers. Pitch: Praat's median over "
        "voiced frames. Quality: DNSMOS P.835 overall (1-5, higher is better), each clip "
        f"measured at {MEASURE_LUFS:g} LUFS, for turns of {QUALITY_MIN_S:g} s or more with "
        "no music or other voice under them: raw as the engine said it, finished as it is "
        "in the MP3.",
        "",
        "## Hosts",
        "",
        "| host | turns | median WER | mean WER | words a minute | median pitch (Hz) "
        "| quality turns | DNSMOS raw | DNSMOS finished | largest drop |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for speaker, summary in report.hosts.items():
        lines.append(
            f"| {names.get(speaker, speaker)} | {summary.turns} | "
            f"{summary.median_wer:.2f} | {summary.mean_wer:.2f} | "
            f"{summary.words_per_minute:.0f} | {number(summary.median_pitch_hz, 0)} | "
            f"{summary.quality_turns} | {number(summary.mos_raw)} | "
            f"{number(summary.mos_finished)} | {number(summary.worst_mos_drop)} |"
        )
    lines += ["", f"## The {WORST} worst turns", ""]
    for score in sorted(report.turns, key=lambda s: -s.wer)[:WORST]:
        lines += [
            f"- line {score.line}, {names.get(score.speaker, score.speaker)}, WER {score.wer:.2f}",
            f"  - expected: {score.expected}",
            f"  - heard: {score.heard or '(nothing)'}",
        ]
    lines += ["", "## Lexicon terms misheard in more than half their uses", ""]
    if not report.misheard:
        lines.append("None.")
    for term in report.misheard:
        heard = "; ".join(dict.fromkeys(term.heard))
        lines.append(f"- {term.term}: {term.misheard} of {term.uses} misheard (heard: {heard})")
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
