"""Stage 7, publish: the rendered episode as a podcast site, delivered to the show's host.

The site (``podcast.yaml``'s ``site:``, ``build/site``) holds the feed, an index page,
the cover, and per episode its MP3, chapters, transcripts and page under
``episodes/<n>/``. The catalogue of every published episode, ``episodes.json``, is read
back from the target first, so the feed keeps the earlier episodes whatever this machine
has. Delivery sends media first, then pages and the catalogue, the feed last: each file
under a temporary name then renamed, its size checked after, unchanged files skipped (a
manifest of SHA-256 sums sits on the target). An interrupted publish leaves the old feed,
which points only at complete files; running it again finishes the job.
"""

from __future__ import annotations

import json
import posixpath
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.errors import PipelineError
from pipeline.facts import FactSheet
from pipeline.feed import episodes_from_feed, feed_xml
from pipeline.files import copy_file, file_digest, read_json_record, sweep_tree, write_text
from pipeline.outputs import OutputSet
from pipeline.script import Script, parse_script
from pipeline.show import Show, Target
from pipeline.site import CSS, PLAYER_JS, episode_html, index_html
from pipeline.targets import Remote, open_target

CATALOGUE = "episodes.json"
MANIFEST = ".manifest.json"
FEED = "feed.xml"
TYPES = {
    ".mp3": "audio/mpeg",
    ".jpg": "image/jpeg",
    ".png": "image/png",
    ".json": "application/json",
    ".vtt": "text/vtt",
    ".srt": "application/x-subrip",
    ".html": "text/html; charset=utf-8",
    ".xml": "application/rss+xml; charset=utf-8",
    ".css": "text/css",
    ".js": "text/javascript",
}
MEDIA_CACHE = "public, max-age=86400"
PAGE_CACHE = "public, max-age=300"  # feed, pages, catalogue: apps see a new episode soon


@dataclass
class PublishReport:
    """What a publish did."""

    site: Path
    """The local site folder."""

    uploaded: list[str] = field(default_factory=list)
    """Files sent, in order."""

    skipped: list[str] = field(default_factory=list)
    """Files already there, unchanged."""

    episodes: int = 0
    """Episodes in the feed."""

    kept: list[int] = field(default_factory=list)
    """Episodes already published that stay in the feed."""

    removed: list[int] = field(default_factory=list)
    """Episodes taken out of the feed, as asked (their files stay on the target)."""

    rebuilt: bool = False
    """Whether the catalogue was missing and read back from the target's feed."""


def slug(text: str) -> str:
    """``Life is Artificial`` -> ``life-is-artificial``."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def publish(
    show: Show,
    script_path: Path,
    episode: Path,
    target: Target | None = None,
    remove: Sequence[int] = (),
) -> PublishReport:
    """Build the site for the episode rendered at ``episode`` (its MP3; the rest of its
    output set beside it) from ``script_path``, and deliver it to ``target``. Episodes
    already published are kept, except those numbered in ``remove``."""
    script = parse_script(script_path)
    meta = script.meta
    if meta.podcast != show.title:
        raise PipelineError(
            f"the script is for {meta.podcast!r} but {show.path} is {show.title!r}",
            path=script.path,
            line=2,
            hint="make the script's 'podcast' match the show title",
        )
    if meta.date is None:
        raise PipelineError(
            "the script has no release 'date'",
            path=script.path,
            hint="add 'date: YYYY-MM-DD' to the front matter",
        )
    outputs = OutputSet(episode)
    timeline = _built_from(outputs, script)
    folder = f"episodes/{meta.episode}"
    files = {  # site path -> local source, in upload order: media first
        f"{folder}/{slug(show.title)}-{meta.episode:03d}.mp3": outputs.mp3,
        "cover.jpg": show.cover,
        f"{folder}/chapters.json": outputs.chapters,
        f"{folder}/transcript.vtt": outputs.vtt,
        f"{folder}/transcript.srt": outputs.srt,
        f"{folder}/transcript.json": outputs.transcript,
    }
    mp3_name = next(iter(files))
    site = show.site
    sweep_tree(site)
    report = PublishReport(site)
    try:
        with open_target(target or show.target) as remote:
            for name in {posixpath.dirname(n) for n in [*files, FEED]}:
                remote.sweep(name)
            catalogue, report.rebuilt = _catalogue(remote, show)
            manifest = _read_json(remote, MANIFEST, {})
            if not isinstance(manifest, dict):
                manifest = {}  # only bookkeeping: files are compared afresh
            earlier = {e["episode"]: e for e in catalogue}
            for number in remove:
                if number not in earlier:
                    raise PipelineError(
                        f"--remove {number}: the target has no episode {number}",
                        hint="published episodes: "
                        + (", ".join(map(str, sorted(earlier))) or "none"),
                    )
                del earlier[number]
                report.removed.append(number)
            entry = {
                "episode": meta.episode,
                "guid": earlier.get(meta.episode, {}).get("guid")
                or f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'{show.base_url}/{folder}')}",
                "title": meta.title,
                "description": meta.description,
                "date": meta.date.isoformat(),
                "duration": round(float(timeline["duration"]), 3),
                "bytes": outputs.mp3.stat().st_size,
                "mp3": mp3_name,
                "chapters": f"{folder}/chapters.json",
                "transcripts": {
                    kind: f"{folder}/transcript.{kind}" for kind in ("vtt", "srt", "json")
                },
                "page": f"{folder}/index.html",
                "hosts": [host.name for host in meta.hosts.values()],
            }
            report.kept = sorted(n for n in earlier if n != meta.episode)
            episodes = sorted(
                [*(e for n, e in earlier.items() if n != meta.episode), entry],
                key=lambda e: e["episode"],
            )
            for name, source in files.items():
                _copy(source, site / name)
            sources = _sources(script.meta.facts)
            chapters = json.loads(outputs.chapters.read_text(encoding="utf-8"))
            transcript = json.loads(outputs.transcript.read_text(encoding="utf-8"))
            pages = {
                f"{folder}/index.html": episode_html(show, entry, chapters, transcript, sources),
                "index.html": index_html(show, episodes),
                "site.css": CSS,
                "player.js": PLAYER_JS,
                CATALOGUE: json.dumps(episodes, indent=2, ensure_ascii=False) + "\n",
            }
            for name, text in pages.items():
                write_text(site / name, text)
            with_feed = site / FEED
            write_text(with_feed, feed_xml(show, episodes).decode("utf-8"))
            order = [*files, *pages, FEED]  # the feed goes last
            for name in order:
                _deliver(remote, site / name, name, manifest, report)
            # Bookkeeping for skipping unchanged files next time; not part of the site.
            write_text(site / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
            remote.put(site / MANIFEST, MANIFEST, "application/json", "no-store")
    except OSError as exc:  # a connection or a folder on the target that fails us
        raise PipelineError(
            f"publishing to the {(target or show.target).kind} target failed: {exc}",
            hint="check the target's settings and that you may write there; publish again "
            "to finish (files already there are skipped)",
        ) from None
    report.episodes = len(episodes)
    return report


def _built_from(outputs: OutputSet, script: Script) -> dict[str, Any]:
    """The timeline of the output set at ``outputs``, once it is shown to be one complete
    set made from exactly this script."""
    outputs.recover()  # finish a render that a kill interrupted mid-commit
    missing = [path for path in outputs.files() if not path.is_file()]
    if missing:
        raise PipelineError(
            f"{missing[0]} is missing",
            hint=f"render the episode first ('make episode'), then publish {outputs.mp3}",
        )
    timeline = read_json_record(outputs.timeline, dict)
    made = timeline.get("script") if timeline else None
    mp3 = timeline.get("mp3") if timeline else None
    if not (isinstance(made, dict) and isinstance(mp3, dict)):
        raise PipelineError(
            f"{outputs.timeline} does not say what it was made from",
            hint="render the episode again ('make episode'), then publish",
        )
    rendered = f"{timeline.get('episode')} ({timeline.get('title')!r}, from {made.get('path')})"
    if timeline.get("episode") != script.meta.episode or made.get("sha256") != script.digest:
        raise PipelineError(
            f"{outputs.mp3} is episode {rendered}, not what {script.path} says now "
            f"(episode {script.meta.episode}, {script.meta.title!r})",
            path=script.path,
            hint="render this script first ('make episode'), or name its build with --episode",
        )
    if mp3.get("sha256") != file_digest(outputs.mp3):
        raise PipelineError(
            f"{outputs.mp3} is not the MP3 its timeline was made with",
            hint="render the episode again: the files beside it belong to another render",
        )
    return timeline


ENTRY_TYPES: dict[str, type | tuple[type, ...]] = {
    "episode": int,
    "guid": str,
    "title": str,
    "description": str,
    "date": str,
    "duration": (int, float),
    "bytes": int,
    "mp3": str,
    "chapters": str,
    "transcripts": dict,
    "page": str,
    "hosts": list,
}


def _catalogue(remote: Remote, show: Show) -> tuple[list[dict[str, Any]], bool]:
    """The episodes already published: the target's catalogue, or, if it has a feed but
    no catalogue, the episodes read back from the feed (never silently none); and whether
    it was read from the feed."""
    missing = object()
    catalogue = _read_json(remote, CATALOGUE, missing)
    where = CATALOGUE
    if catalogue is missing:
        raw = remote.read(FEED)
        if raw is None:
            return [], False  # a new show
        where = FEED
        try:
            catalogue = episodes_from_feed(raw, show)
        except ValueError as exc:
            raise PipelineError(
                f"the target has a {FEED} but no {CATALOGUE}, and the feed cannot be read "
                f"back: {exc}",
                hint=f"restore {CATALOGUE} on the target (a backup, or the site folder "
                f"{show.site}); publishing now would drop the episodes in the feed",
            ) from exc
    if not isinstance(catalogue, list):
        raise PipelineError(
            f"the target's {where} is not a list of episodes",
            hint=f"repair or restore {where} on the target",
        )
    for number, entry in enumerate(catalogue, start=1):
        problem = _entry_problem(entry)
        if problem:
            raise PipelineError(
                f"the target's {where}: entry {number} {problem}",
                hint=f"repair or restore {where} on the target; publishing now would lose it",
            )
    return catalogue, where == FEED


def _entry_problem(entry: Any) -> str | None:
    if not isinstance(entry, dict):
        return "is not an episode record"
    for key, kind in ENTRY_TYPES.items():
        value = entry.get(key)
        if value is None:
            return f"has no {key!r}"
        if isinstance(value, bool) or not isinstance(value, kind):
            return f"has a {key!r} of the wrong kind ({type(value).__name__})"
    transcripts = entry["transcripts"]
    if not all(isinstance(transcripts.get(kind), str) for kind in ("vtt", "srt", "json")):
        return "lacks a transcript path"
    return None


def _read_json(remote: Remote, name: str, default: Any) -> Any:
    raw = remote.read(name)
    if raw is None:
        return default
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise PipelineError(
            f"the target's {name} is not valid JSON: {exc}",
            hint=f"repair or remove {name} on the target",
        ) from exc


def _copy(source: Path, destination: Path) -> None:
    if (
        destination.is_file()
        and destination.stat().st_size == source.stat().st_size
        and (file_digest(destination) == file_digest(source))
    ):
        return
    copy_file(source, destination)


def _deliver(
    remote: Remote, local: Path, name: str, manifest: dict[str, str], report: PublishReport
) -> None:
    digest = file_digest(local)
    size = local.stat().st_size
    if manifest.get(name) == digest and remote.size(name) == size:
        report.skipped.append(name)
        return
    content_type = TYPES.get(local.suffix, "application/octet-stream")
    cache = MEDIA_CACHE if local.suffix in (".mp3", ".jpg", ".png") else PAGE_CACHE
    try:
        remote.put(local, name, content_type, cache)
    except OSError as exc:  # a local folder or SFTP server that refuses the file
        raise PipelineError(
            f"cannot deliver {name} to the target: {exc.strerror or exc}",
            hint="check the target's path and that you may write there; publish again to "
            "finish (files already there are skipped)",
        ) from None
    landed = remote.size(name)
    if landed != size:
        raise PipelineError(
            f"{name} arrived with {landed} bytes, not {size}",
            hint="publish again: files already there are skipped",
        )
    manifest[name] = digest
    report.uploaded.append(name)


def _sources(facts: Path | None) -> list[str]:
    if facts is None:
        return []
    sheet = FactSheet.load(facts)
    listed = [source.title for source in sheet.sources.values()]
    listed += sorted({fact.source for fact in sheet.facts if fact.source not in sheet.sources})
    return listed
