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
import re
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.cache import file_digest
from pipeline.errors import PipelineError
from pipeline.facts import FactSheet
from pipeline.feed import feed_xml
from pipeline.package import write_text
from pipeline.script import parse_script
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


def slug(text: str) -> str:
    """``Life is Artificial`` -> ``life-is-artificial``."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def publish(
    show: Show, script_path: Path, build: Path, target: Target | None = None
) -> PublishReport:
    """Build the site for the rendered episode in ``build`` and deliver it to ``target``."""
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
    inputs = _build_files(build)
    folder = f"episodes/{meta.episode}"
    files = {  # site path -> local source, in upload order: media first
        f"{folder}/{slug(show.title)}-{meta.episode:03d}.mp3": inputs["mp3"],
        "cover.jpg": show.cover,
        f"{folder}/chapters.json": inputs["chapters"],
        f"{folder}/transcript.vtt": inputs["vtt"],
        f"{folder}/transcript.srt": inputs["srt"],
        f"{folder}/transcript.json": inputs["transcript"],
    }
    mp3_name = next(iter(files))
    timeline = json.loads(inputs["timeline"].read_text(encoding="utf-8"))
    site = show.site
    report = PublishReport(site)
    with open_target(target or show.target) as remote:
        catalogue = _read_json(remote, CATALOGUE, [])
        manifest = _read_json(remote, MANIFEST, {})
        earlier = {e["episode"]: e for e in catalogue}
        entry = {
            "episode": meta.episode,
            "guid": earlier.get(meta.episode, {}).get("guid")
            or f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'{show.base_url}/{folder}')}",
            "title": meta.title,
            "description": meta.description,
            "date": meta.date.isoformat(),
            "duration": round(float(timeline["duration"]), 3),
            "bytes": inputs["mp3"].stat().st_size,
            "mp3": mp3_name,
            "chapters": f"{folder}/chapters.json",
            "transcripts": {kind: f"{folder}/transcript.{kind}" for kind in ("vtt", "srt", "json")},
            "page": f"{folder}/index.html",
            "hosts": [host.name for host in meta.hosts.values()],
        }
        episodes = sorted(
            [*(e for n, e in earlier.items() if n != meta.episode), entry],
            key=lambda e: e["episode"],
        )
        for name, source in files.items():
            _copy(source, site / name)
        sources = _sources(script.meta.facts)
        chapters = json.loads(inputs["chapters"].read_text(encoding="utf-8"))
        transcript = json.loads(inputs["transcript"].read_text(encoding="utf-8"))
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
    report.episodes = len(episodes)
    return report


def _build_files(build: Path) -> dict[str, Path]:
    files = {
        "mp3": build / "episode.mp3",
        "timeline": build / "episode.timeline.json",
        "chapters": build / "chapters.json",
        "vtt": build / "episode.vtt",
        "srt": build / "episode.srt",
        "transcript": build / "transcript.json",
    }
    for path in files.values():
        if not path.is_file():
            raise PipelineError(
                f"{path} is missing", hint="render the episode first ('make episode'), then publish"
            )
    return files


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
    destination.parent.mkdir(parents=True, exist_ok=True)
    tmp = destination.with_name(f".{destination.name}.part")
    shutil.copyfile(source, tmp)
    tmp.replace(destination)


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
    remote.put(local, name, content_type, cache)
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
