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

import functools
import json
import posixpath
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mutagen.mp3

from pipeline.catalogue import TRANSCRIPT_KINDS, EpisodeEntry, Rendition
from pipeline.cover import ICONS, icons
from pipeline.errors import PipelineError
from pipeline.feed import episodes_from_feed, feed_xml
from pipeline.files import copy_file, file_digest, sweep_tree, write_bytes, write_text
from pipeline.opus import OPUS_TYPE
from pipeline.outputs import Manifest, OutputSet
from pipeline.promo import audiogram_path, promo_for
from pipeline.show import Show, Target, target_kind
from pipeline.site import CSS, PLAYER_JS, episode_html, index_html, notes_html
from pipeline.targets import Remote, open_target

CATALOGUE = "episodes.json"
MANIFEST = ".manifest.json"
FEED = "feed.xml"
TYPES = {
    ".mp3": "audio/mpeg",
    ".opus": OPUS_TYPE,
    ".mp4": "video/mp4",
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
CHAPTERS_TYPE = "application/json+chapters"  # what the namespace asks chapters be sent as
MEDIA = (".mp3", ".opus", ".mp4", ".jpg", ".png")
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
    warn: Callable[[str], None] | None = None,
) -> PublishReport:
    """Build the site for the episode rendered at ``episode`` (its MP3; its manifest names
    the rest of its output set) from ``script_path``, and deliver it to ``target``.
    Episodes already published are kept, except those numbered in ``remove``. What a
    directory would reject in the show's settings goes to ``warn`` before delivery."""
    outputs = OutputSet(episode)
    built = _built_from(outputs, script_path)
    _check_release(built, show, episode, script_path)
    built_file = functools.partial(built.file, episode.parent)
    files = _site_files(show, outputs, built, warn or (lambda _: None))
    site = show.site
    sweep_tree(site)
    report = PublishReport(site)
    target = target or show.target
    try:
        with open_target(target) as remote:
            for folder_name in {posixpath.dirname(n) for n in [*files, FEED]}:
                remote.sweep(folder_name)
            catalogue, report.rebuilt = _catalogue(remote, show)
            remote.allow_cors()
            manifest = _read_json(remote, MANIFEST, {})
            if not isinstance(manifest, dict):
                manifest = {}  # only bookkeeping: files are compared afresh
            chapters = json.loads(built_file("chapters").read_text(encoding="utf-8"))
            entry = _entry(show, built, built_file, files, chapters, catalogue)
            episodes = _episodes(catalogue, entry, remove, report)
            for name, source in files.items():
                _copy(source, site / name)
            pages = _pages(show, built_file, entry, chapters, episodes)
            for page, text in pages.items():
                write_text(site / page, text)
            for icon, data in icons(show.cover).items():
                write_bytes(site / icon, data)
            write_text(site / FEED, feed_xml(show, episodes).decode("utf-8"))
            for path in [*files, *ICONS, *pages, FEED]:  # the feed goes last
                _deliver(remote, site / path, path, manifest, report)
            # Bookkeeping for skipping unchanged files next time; not part of the site.
            write_text(site / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
            remote.put(site / MANIFEST, MANIFEST, "application/json", "no-store")
    except OSError as exc:  # a connection or a folder on the target that fails us
        raise PipelineError(
            f"publishing to the {target_kind(target)} target failed: {exc}",
            hint="check the target's settings and that you may write there; publish again "
            "to finish (files already there are skipped)",
        ) from None
    report.episodes = len(episodes)
    return report


def _site_files(
    show: Show, outputs: OutputSet, built: Manifest, say: Callable[[str], None]
) -> dict[str, Path]:
    """The episode's files by site path, in upload order (media first); what a directory
    would reject, and a stale audiogram, go to ``say`` first."""
    built_file = functools.partial(built.file, outputs.mp3.parent)
    folder = f"episodes/{built.episode}"
    name = f"{folder}/{slug(show.title)}-{built.episode:03d}"
    files = {
        f"{name}.mp3": built_file("mp3"),
        f"{name}.opus": built_file("opus"),
        "cover.jpg": show.cover,
        f"{folder}/chapters.json": built_file("chapters"),
        f"{folder}/transcript.vtt": built_file("vtt"),
        f"{folder}/transcript.srt": built_file("srt"),
        f"{folder}/transcript.json": built_file("transcript"),
    }
    if built.artwork is not None:
        files[f"{folder}/artwork{Path(built.artwork.path).suffix}"] = _artwork(built)
    audiogram = promo_for(outputs, built)
    if audiogram is not None:
        files[f"{folder}/clip.mp4"] = audiogram
    elif audiogram_path(outputs).is_file():
        say(
            f"{audiogram_path(outputs)} was cut from an earlier render: not published "
            "('make promo' cuts it again)"
        )
    for message in show.warnings():
        say(message)
    return files


def _check_release(built: Manifest, show: Show, episode: Path, script_path: Path) -> None:
    """Refuse an episode of another show, or one with no release date."""
    if built.podcast != show.title:
        raise PipelineError(
            f"{episode} is an episode of {built.podcast!r} but {show.path} is {show.title!r}",
            path=script_path,
            hint="make the script's 'podcast' match the show title, and render it again",
        )
    if built.date is None:
        raise PipelineError(
            "the script has no release 'date'",
            path=script_path,
            hint="add 'date: YYYY-MM-DD' to the front matter, and render it again",
        )


def _entry(
    show: Show,
    built: Manifest,
    built_file: Callable[[str], Path],
    files: dict[str, Path],
    chapters: dict[str, Any],
    catalogue: list[EpisodeEntry],
) -> EpisodeEntry:
    """The catalogue entry of the episode being published (its guid kept if it was
    published before); ``files`` are its site paths, ``chapters`` its JSON chapters."""
    folder = f"episodes/{built.episode}"
    before = next((e for e in catalogue if e.episode == built.episode), None)
    guid = uuid.uuid5(uuid.NAMESPACE_URL, f"{show.base_url}/{folder}")
    by_suffix = {posixpath.splitext(path)[1]: path for path in files}
    opus = built_file("opus").stat().st_size
    return EpisodeEntry(
        episode=built.episode,
        guid=before.guid if before else f"urn:uuid:{guid}",
        title=built.title,
        description=built.description,
        date=str(built.date),
        duration=round(built.duration, 3),
        bytes=built.mp3.bytes,
        mp3=by_suffix[".mp3"],
        chapters=f"{folder}/chapters.json",
        transcripts={kind: f"{folder}/transcript.{kind}" for kind in TRANSCRIPT_KINDS},
        page=f"{folder}/index.html",
        hosts=built.hosts,
        notes=notes_html(built.description, built.disclosure, chapters, built.sources),
        disclosure=built.disclosure,
        renditions=(
            Rendition(
                path=by_suffix[".mp3"],
                type="audio/mpeg",
                bytes=built.mp3.bytes,
                bitrate=mutagen.mp3.MP3(built_file("mp3")).info.bitrate,
                codecs="mp3",
                title="MP3",
            ),
            Rendition(
                path=by_suffix[".opus"],
                type=OPUS_TYPE,
                bytes=opus,
                bitrate=round(opus * 8 / built.duration),
                codecs="opus",
                title="Opus",
            ),
        ),
        season=built.season,
        artwork=next((p for p in files if posixpath.basename(p).startswith("artwork.")), None),
        soundbites=built.soundbites,
        audiogram=by_suffix.get(".mp4"),
    )


def _artwork(built: Manifest) -> Path:
    """The episode's artwork, as it was when the episode was rendered."""
    assert built.artwork is not None
    path = Path(built.artwork.path)
    if not path.is_file() or file_digest(path) != built.artwork.sha256:
        raise PipelineError(
            f"the episode's artwork {path} has changed since the episode was rendered",
            hint="render the episode again ('make episode'), then publish",
        )
    return path


def _episodes(
    catalogue: list[EpisodeEntry],
    entry: EpisodeEntry,
    remove: Sequence[int],
    report: PublishReport,
) -> list[EpisodeEntry]:
    """The feed's episodes in order: those published before, less the ones ``remove``
    names, with ``entry`` added or replacing its earlier self."""
    earlier = {e.episode: e for e in catalogue}
    for number in remove:
        if number not in earlier:
            raise PipelineError(
                f"--remove {number}: the target has no episode {number}",
                hint="published episodes: " + (", ".join(map(str, sorted(earlier))) or "none"),
            )
        del earlier[number]
        report.removed.append(number)
    earlier.pop(entry.episode, None)
    report.kept = sorted(earlier)
    return sorted([*earlier.values(), entry], key=lambda e: e.episode)


def _pages(
    show: Show,
    built_file: Callable[[str], Path],
    entry: EpisodeEntry,
    chapters: dict[str, Any],
    episodes: list[EpisodeEntry],
) -> dict[str, str]:
    """The site's pages and catalogue by site path (the feed is written apart, last)."""
    transcript = json.loads(built_file("transcript").read_text(encoding="utf-8"))
    catalogue = [e.to_json() for e in episodes]
    return {
        entry.page: episode_html(show, entry, chapters, transcript),
        "index.html": index_html(show, episodes),
        "site.css": CSS,
        "player.js": PLAYER_JS,
        CATALOGUE: json.dumps(catalogue, indent=2, ensure_ascii=False) + "\n",
    }


def _built_from(outputs: OutputSet, script_path: Path) -> Manifest:
    """The manifest of the output set at ``outputs``, once it is shown to be one complete
    set made from exactly the script at ``script_path`` as it is now."""
    outputs.recover()  # finish a render that a kill interrupted mid-commit
    if not outputs.manifest.is_file():
        raise PipelineError(
            f"{outputs.manifest} is missing",
            hint=f"render the episode first ('make episode'), then publish {outputs.mp3}",
        )
    built = Manifest.load(outputs.manifest)
    folder = outputs.mp3.parent
    missing = [role for role in built.files if not built.file(folder, role).is_file()]
    if missing:
        raise PipelineError(
            f"{built.file(folder, missing[0])} is missing",
            hint=f"render the episode first ('make episode'), then publish {outputs.mp3}",
        )
    try:
        script_digest = file_digest(script_path)
    except OSError as exc:
        raise PipelineError(f"cannot read the script: {exc.strerror}", path=script_path) from None
    if script_digest != built.script.sha256:
        raise PipelineError(
            f"{outputs.mp3} is episode {built.episode} ({built.title!r}, from "
            f"{built.script.path}), not what {script_path} says now",
            path=script_path,
            hint="render this script first ('make episode'), or name its build with --episode",
        )
    mp3 = built.file(folder, "mp3")
    if mp3.stat().st_size != built.mp3.bytes or file_digest(mp3) != built.mp3.sha256:
        raise PipelineError(
            f"{mp3} is not the MP3 its manifest was made with",
            hint="render the episode again: the files beside it belong to another render",
        )
    return built


def _catalogue(remote: Remote, show: Show) -> tuple[list[EpisodeEntry], bool]:
    """The episodes already published: the target's catalogue, or, if it has a feed but
    no catalogue, the episodes read back from the feed (never silently none); and whether
    it was read from the feed."""
    missing = object()
    catalogue = _read_json(remote, CATALOGUE, missing)
    if catalogue is missing:
        raw = remote.read(FEED)
        if raw is None:
            return [], False  # a new show
        try:
            return episodes_from_feed(raw, show), True
        except ValueError as exc:
            raise PipelineError(
                f"the target has a {FEED} but no {CATALOGUE}, and the feed cannot be read "
                f"back: {exc}",
                hint=f"restore {CATALOGUE} on the target (a backup, or the site folder "
                f"{show.site}); publishing now would drop the episodes in the feed",
            ) from exc
    if not isinstance(catalogue, list):
        raise PipelineError(
            f"the target's {CATALOGUE} is not a list of episodes",
            hint=f"repair or restore {CATALOGUE} on the target",
        )
    entries = []
    for number, record in enumerate(catalogue, start=1):
        try:
            entries.append(EpisodeEntry.from_json(record))
        except ValueError as problem:
            raise PipelineError(
                f"the target's {CATALOGUE}: entry {number} {problem}",
                hint=f"repair or restore {CATALOGUE} on the target; publishing now would lose it",
            ) from None
    return entries, False


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
    if posixpath.basename(name) == "chapters.json":
        content_type = CHAPTERS_TYPE
    cache = MEDIA_CACHE if local.suffix in MEDIA else PAGE_CACHE
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
