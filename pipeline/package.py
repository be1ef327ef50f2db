"""Stage 6, package: the mastered MP3 with its tags and chapters, and its companions.

The master stage has encoded the MP3 (``pipeline/mp3.py``); mutagen writes its ID3v2.4
tag from the ``Release``: title, podcast, episode number, date, description, cover art,
and a CTOC + CHAP chapter table in time order. Beside it go the timeline
(``pipeline/timeline.py``), Podcasting 2.0 chapters and transcripts, WebVTT and SRT
captions, show notes, and the set's manifest (what it holds and was made from); the
render adds the overview picture (``pipeline/overview.py``).

The files are staged and replaced as one set (``pipeline/outputs.py``), so a failed or
interrupted render leaves the previous complete set or the new one, never a mix.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mutagen import id3

from pipeline.assemble import Mix
from pipeline.clock import clock
from pipeline.facts import FactSheet
from pipeline.files import file_digest, input_file
from pipeline.loudness import Measurement
from pipeline.outputs import Loudness, MadeFrom, Manifest, Soundbite, SourceLink, Staging
from pipeline.production import Production
from pipeline.script import Script
from pipeline.timeline import TimedChapter, TimedCue, TimedHost, TimedTurn, Timeline
from pipeline.transcript import Cue, cues, to_json, to_srt, to_vtt
from pipeline.voices import Voice


@dataclass(frozen=True)
class ReleaseChapter:
    """A chapter as the tag and the chapter files give it."""

    title: str
    """Chapter title."""

    start_ms: int
    """Start, in milliseconds."""

    end_ms: int
    """End (the next chapter's start, or the episode's end), in milliseconds."""


@dataclass(frozen=True)
class Release:
    """What the MP3's tag says."""

    title: str
    """Episode title (TIT2)."""

    podcast: str
    """Show name, as album and artist (TALB, TPE1, TPE2)."""

    episode: int
    """Episode number (TRCK)."""

    date: str | None
    """Release date, YYYY-MM-DD (TDRC)."""

    description: str
    """Description (COMM)."""

    disclosure: str
    """How it was made: synthetic voices (in the COMM after the description)."""

    cover: Path | None
    """Cover art embedded as the front cover (APIC)."""

    chapters: tuple[ReleaseChapter, ...]
    """The chapters in time order (CTOC + CHAP)."""

    @staticmethod
    def of(script: Script, mix: Mix, voices: dict[str, Voice]) -> Release:
        """The release a script and its mix make, spoken by ``voices``."""
        meta = script.meta
        starts = [round(mix.seconds(c.start) * 1000) for c in mix.chapters]
        ends = [*starts[1:], round(mix.duration * 1000)]
        return Release(
            title=meta.title,
            podcast=meta.podcast,
            episode=meta.episode,
            date=meta.date.isoformat() if meta.date else None,
            description=meta.description,
            disclosure=disclosure(script, voices),
            cover=meta.cover,
            chapters=tuple(
                ReleaseChapter(c.title, start, end)
                for c, start, end in zip(mix.chapters, starts, ends, strict=True)
            ),
        )


def disclosure(script: Script, voices: dict[str, Voice]) -> str:
    """What listeners are told about how the episode was made: every host is a synthetic
    voice (the engines are all text-to-speech), then the script's own ``disclosure``."""
    hosts = script.meta.hosts
    made = "; ".join(
        f"{hosts[speaker].name}: {voices[speaker].description or voices[speaker].engine}"
        for speaker in hosts
        if speaker in voices
    )
    who = synthetic_voices([host.name for host in hosts.values()])
    text = f"AI disclosure: {who}, made by text-to-speech, not real people ({made})."
    return f"{text} {script.meta.disclosure}".strip()


def synthetic_voices(names: Sequence[str]) -> str:
    """``Alex and Maya are synthetic voices``: the disclosure's opening, which the
    audiogram also carries."""
    who = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return f"{who} {'is a synthetic voice' if len(names) == 1 else 'are synthetic voices'}"


SOUNDBITE_S = (15.0, 45.0)  # the length of a soundbite the render picks


def soundbites(mix: Mix) -> tuple[Soundbite, ...]:
    """The soundbites the script marks; else the first run of whole turns at the start of
    a chapter that lasts ``SOUNDBITE_S`` (the opening of a chapter usually states its
    point), from the first chapter on."""

    def chapter_at(sample: int) -> str:
        return next(c.title for c in reversed(mix.chapters) if c.start <= sample)

    if mix.soundbites:
        return tuple(
            Soundbite(
                round(mix.seconds(b.start), 3),
                round(mix.seconds(b.end - b.start), 3),
                chapter_at(b.start),
                chosen=True,
            )
            for b in mix.soundbites
        )
    shortest, longest = SOUNDBITE_S
    for chapter, after in zip(mix.chapters, [*mix.chapters[1:], None], strict=True):
        turns = [
            p
            for p in mix.placements
            if p.start >= chapter.start and (after is None or p.start < after.start)
        ]
        end = None
        for placement in turns:
            if mix.seconds(placement.end - turns[0].start) > longest:
                break
            end = placement.end
        if end is not None and mix.seconds(end - turns[0].start) >= shortest:
            start = turns[0].start
            return (
                Soundbite(
                    round(mix.seconds(start), 3),
                    round(mix.seconds(end - start), 3),
                    chapter.title,
                    chosen=False,
                ),
            )
    return ()


def tag_mp3(path: Path, release: Release) -> None:
    """Write the release's ID3v2.4 tag into the MP3 at ``path``, chapters in time order."""
    tags = id3.ID3()
    text = {
        "TIT2": release.title,
        "TALB": release.podcast,
        "TPE1": release.podcast,
        "TPE2": release.podcast,
        "TRCK": str(release.episode),
        "TCON": "Podcast",
    }
    if release.date:
        text["TDRC"] = release.date
    for frame_id, value in text.items():
        tags.add(getattr(id3, frame_id)(encoding=id3.Encoding.UTF8, text=value))
    comment = f"{release.description}\n\n{release.disclosure}"
    tags.add(id3.COMM(encoding=id3.Encoding.UTF8, lang="eng", desc="", text=comment))
    if release.cover is not None:
        cover = input_file(release.cover, "cover art").read_bytes()  # checked, not followed
        mime = "image/png" if cover.startswith(b"\x89PNG") else "image/jpeg"
        tags.add(
            id3.APIC(
                encoding=id3.Encoding.UTF8,
                mime=mime,
                type=id3.PictureType.COVER_FRONT,
                desc="Cover",
                data=cover,
            )
        )
    ids = _chapter_ids(release)
    tags.add(
        id3.CTOC(
            element_id="toc",
            flags=id3.CTOCFlags.TOP_LEVEL | id3.CTOCFlags.ORDERED,
            child_element_ids=ids,
            sub_frames=[id3.TIT2(encoding=id3.Encoding.UTF8, text="Chapters")],
        )
    )
    for element_id, chapter in zip(ids, release.chapters, strict=True):
        tags.add(
            id3.CHAP(
                element_id=element_id,
                start_time=chapter.start_ms,
                end_time=chapter.end_ms,
                start_offset=0xFFFFFFFF,
                end_offset=0xFFFFFFFF,
                sub_frames=[id3.TIT2(encoding=id3.Encoding.UTF8, text=chapter.title)],
            )
        )
    tags.save(path, v2_version=4)


def _chapter_ids(release: Release) -> list[str]:
    """Chapter element ids that make mutagen write the CHAP frames in time order.

    mutagen orders frames of a kind by their size, then by id. Padding every id so that
    id plus title has the same length gives every CHAP frame the same size, and the
    zero-padded number then puts them in order (ffprobe lists chapters in file order).
    """
    titles = [len(chapter.title.encode("utf-8")) for chapter in release.chapters]
    return [f"ch{index:03d}" + "_" * (max(titles) - size) for index, size in enumerate(titles)]


def timeline(script: Script, mix: Mix, voice_files: dict[str, Path]) -> Timeline:
    """Where every turn, chapter and music cue lands, in seconds: for producers and tools.
    ``voice_files`` are the voice files the hosts were rendered with."""
    hosts = script.meta.hosts
    rate = mix.sample_rate
    return Timeline(
        podcast=script.meta.podcast,
        episode=script.meta.episode,
        title=script.meta.title,
        duration=mix.length / rate,
        sample_rate=rate,
        hosts={
            speaker: TimedHost(host.name, str(voice_files.get(speaker, host.voice)))
            for speaker, host in hosts.items()
        },
        chapters=tuple(TimedChapter(c.title, c.start / rate, c.line) for c in mix.chapters),
        turns=tuple(
            TimedTurn(
                speaker=p.turn.speaker,
                name=hosts[p.turn.speaker].name,
                start=p.start / rate,
                end=p.end / rate,
                gain_db=round(p.gain_db, 2),
                overlap=p.overlapped,
                sentences=tuple((a / rate, b / rate) for a, b in p.sentences),
                line=p.turn.line,
                text=p.turn.text,
                speech=p.speech_text,
                words=p.words,
            )
            for p in mix.placements
        ),
        music=tuple(TimedCue(m.name, m.at / rate, m.end / rate, m.line) for m in mix.music),
    )


def chapters_json(release: Release) -> dict[str, Any]:
    """Podcasting 2.0 JSON chapters."""
    return {
        "version": "1.2.0",
        "chapters": [
            {
                "startTime": round(chapter.start_ms / 1000, 3),
                "endTime": round(chapter.end_ms / 1000, 3),
                "title": chapter.title,
            }
            for chapter in release.chapters
        ],
    }


def shownotes(
    script: Script,
    release: Release,
    voices: dict[str, str],
    music: str,
    sheet: FactSheet | None = None,
) -> str:
    """Show notes in Markdown: description, hosts, chapters with times, the fact sheet's
    sources and figures, credits."""
    meta = script.meta
    lines = [f"# {meta.podcast}, episode {meta.episode}: {meta.title}", ""]
    if release.date:
        lines += [f"Released {release.date}.", ""]
    lines += [meta.description, "", release.disclosure, "", "## Hosts", ""]
    lines += [f"- {host.name}: voice {voices[speaker]}" for speaker, host in meta.hosts.items()]
    lines += ["", "## Chapters", ""]
    lines += [f"- {clock(c.start_ms / 1000, pad=True)} {c.title}" for c in release.chapters]
    if sheet is not None:
        lines += [
            "",
            "## Sources",
            "",
            "Every figure in this episode is checked against these:",
            "",
        ]
        # Public sources only: one known by a local path alone (a brief) stays private.
        lines += [f"- {link.title}: <{link.url}>" for link in sources(sheet)]
        lines += ["", "## The figures", ""]
        lines += ["Every figure behind the episode, exact, with what it measures and where:", ""]
        for fact in sheet.facts:
            if fact.unit in ("year", "day"):
                continue  # dates speak for themselves
            source = sheet.sources.get(fact.source)
            where = f"[{source.title}]({source.url})" if source and source.url else fact.source
            if source and not source.url:
                where = source.title
            lines.append(f"- {fact.shown()}: {fact.measures}. Source: {where}")
    lines += ["", "## Credits", ""]
    if music:
        lines.append(f"- Music: {music}")
    lines.append("- Produced offline with the Life is Artificial pipeline (GPL-3.0-or-later).")
    return "\n".join(lines) + "\n"


def voice_credit(voice: Voice) -> str:
    """How show notes credit a voice."""
    credit = voice.description or f"{voice.engine} {voice.model or ''}".strip()
    return f"{credit}; license: {voice.license}" if voice.license else credit


def sources(sheet: FactSheet | None) -> tuple[SourceLink, ...]:
    """The fact sheet's public sources as show notes link them: those with a URL, then
    bare URLs; a source known only by a local path (a brief, a private copy) is left out."""
    if sheet is None:
        return ()
    listed = [SourceLink(s.title, s.url) for s in sheet.sources.values() if s.url]
    bare = sorted({fact.source for fact in sheet.facts if fact.source not in sheet.sources})
    return tuple(listed + [SourceLink(url, url) for url in bare])


def write_companions(
    production: Production,
    mix: Mix,
    release: Release,
    staging: Staging,
    mp3: Path,
    measured: Measurement,
) -> Manifest:
    """Stage every companion file of the set, the manifest last; ``mp3`` is the MP3 the
    set holds, as written and ``measured``."""
    script, outputs = production.script, staging.outputs
    voices = {speaker: voice_credit(v) for speaker, v in production.voices.items()}
    music = production.music.license if production.music else ""
    files = {speaker: voice.path for speaker, voice in production.voices.items()}
    transcript_cues: list[Cue] = cues(script, mix)
    texts = {
        outputs.timeline: _json(timeline(script, mix, files).to_json()),
        outputs.chapters: _json(chapters_json(release)),
        outputs.vtt: to_vtt(transcript_cues),
        outputs.srt: to_srt(transcript_cues),
        outputs.transcript: _json(to_json(transcript_cues)),
        outputs.shownotes: shownotes(script, release, voices, music, production.facts),
    }
    for final, text in texts.items():
        staging.path(final).write_text(text, encoding="utf-8")
    meta = script.meta
    manifest = Manifest(
        podcast=meta.podcast,
        episode=meta.episode,
        title=meta.title,
        description=meta.description,
        date=release.date,
        hosts=tuple(host.name for host in meta.hosts.values()),
        duration=mix.duration,
        script=MadeFrom(str(script.path), script.digest, script.size),
        mp3=MadeFrom(outputs.mp3.name, file_digest(mp3), mp3.stat().st_size),
        files={role: path.name for role, path in outputs.roles().items()},
        loudness=Loudness(measured.loudness_lufs, measured.true_peak_db, measured.loudness_range),
        disclosure=release.disclosure,
        sources=sources(production.facts),
        soundbites=soundbites(mix),
        season=meta.season,
        artwork=(
            MadeFrom(str(meta.artwork), file_digest(meta.artwork), meta.artwork.stat().st_size)
            if meta.artwork
            else None
        ),
    )
    staging.path(outputs.manifest).write_text(_json(manifest.to_json()), encoding="utf-8")
    return manifest


def _json(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
