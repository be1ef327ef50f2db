"""The podcast feed: RSS 2.0 with the Apple Podcasts and Podcasting 2.0 namespaces.

Built with lxml, so every title and description is escaped by the library. The
Podcasting 2.0 elements that gPodder's podcastparser reads (``podcast:chapters``,
``podcast:transcript``, ``podcast:locked``) are written under the namespace's address and
once more under its old GitHub address, the only one that parser knows; apps ignore a
namespace they do not know, so each reads one copy. An item's description and
``content:encoded`` carry the show notes as HTML (built by ``pipeline/site.py`` with
autoescaping); plain-text fields that apps may render as HTML (summaries, the channel
description) are HTML-escaped before lxml escapes them for XML, so markup in a title never
reaches an app as markup.

The show's identity follows the namespace: ``podcast:guid`` is the UUIDv5 of the feed URL
without its scheme, ``podcast:medium`` is ``podcast``. The hosts are synthetic voices, so
no ``podcast:person`` presents them as people; the AI disclosure is in every item's notes.
"""

from __future__ import annotations

import datetime
import email.utils
import html
import re
import urllib.parse
import uuid
from collections.abc import Callable
from typing import Any

from lxml import etree

from pipeline.catalogue import TRANSCRIPT_KINDS, EpisodeEntry, Rendition
from pipeline.clock import clock
from pipeline.outputs import Soundbite
from pipeline.show import Show

ITUNES = "http://www.itunes.com/dtds/podcast-1.0.dtd"
PODCAST = "https://podcastindex.org/namespace/1.0"
PODCAST_LEGACY = "https://github.com/Podcastindex-org/podcast-namespace/blob/main/docs/1.0.md"
ATOM = "http://www.w3.org/2005/Atom"
CONTENT = "http://purl.org/rss/1.0/modules/content/"
NSMAP = {
    "itunes": ITUNES,
    "podcast": PODCAST,
    "podcastgh": PODCAST_LEGACY,
    "atom": ATOM,
    "content": CONTENT,
}
GUID_NAMESPACE = uuid.UUID("ead4c236-bf58-58c6-a2c6-a6b28d128cb6")  # the namespace's own
TRANSCRIPT_TYPES = {"vtt": "text/vtt", "srt": "application/x-subrip", "json": "application/json"}


def url(show: Show, path: str) -> str:
    """The public URL of a file at ``path`` in the site."""
    return f"{show.base_url}/{path}"


def media_url(show: Show, path: str) -> str:
    """The URL a feed gives for an episode's audio: through the show's analytics prefix
    (which takes the URL without its scheme), if it has one."""
    address = url(show, path)
    if show.analytics_prefix is None:
        return address
    return show.analytics_prefix + address.split("://", 1)[1]


def podcast_guid(feed_url: str) -> str:
    """``podcast:guid``: the UUIDv5 of the feed URL without its scheme and trailing
    slashes, in the namespace's own UUID."""
    parts = urllib.parse.urlsplit(feed_url)
    bare = re.sub(r"/+$", "", "".join([parts.netloc, parts.path, parts.query, parts.fragment]))
    return str(uuid.uuid5(GUID_NAMESPACE, bare))


def _sub(parent: etree._Element, tag: str, content: str | None = None, /, **attrs: str) -> Any:
    element = etree.SubElement(parent, tag, attrs)
    if content is not None:
        element.text = content
    return element


def _as_html(text: str) -> str:
    """Plain text for a field apps may render as HTML: markup shows as written. Quotes
    need no escaping in element text."""
    return html.escape(text, quote=False)


def episodes_from_feed(raw: bytes, show: Show) -> list[EpisodeEntry]:
    """The catalogue entries of a feed this pipeline wrote (``feed_xml``'s inverse), for a
    target whose catalogue was lost; raises ``ValueError`` for an item it cannot read."""
    try:
        root = etree.fromstring(
            raw, parser=etree.XMLParser(resolve_entities=False, no_network=True)
        )
    except etree.XMLSyntaxError as exc:
        raise ValueError(f"it is not valid XML ({exc})") from None
    base = f"{show.base_url}/"
    prefixed = media_url(show, "")

    def local(address: str | None, what: str) -> str:
        for start in (base, prefixed):
            if address and address.startswith(start):
                return address[len(start) :]
        raise ValueError(f"its {what} {address!r} is not under {base}")

    entries = []
    for number, item in enumerate(root.iterfind("channel/item"), start=1):
        try:
            entries.append(_entry_of(item, local))
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"item {number} is not one this pipeline wrote ({exc})") from None
    return entries


def _entry_of(item: etree._Element, local: Callable[[str | None, str], str]) -> EpisodeEntry:
    """One item of a feed this pipeline wrote, as its catalogue entry; ``local`` turns a
    URL back into a site path."""
    enclosure = item.find("enclosure")
    chapters = item.find(_q(PODCAST, "chapters"))
    transcripts = {
        kind: local(element.get("url"), "transcript")
        for kind, mime in TRANSCRIPT_TYPES.items()
        for element in item.iterfind(_q(PODCAST, "transcript"))
        if element.get("type") == mime
    }
    hours, minutes, seconds = item.findtext(_q(ITUNES, "duration"), "").split(":")
    published = email.utils.parsedate_to_datetime(item.findtext("pubDate", ""))
    return EpisodeEntry(
        episode=int(item.findtext(_q(ITUNES, "episode"), "")),
        guid=item.findtext("guid") or "",
        title=item.findtext("title") or "",
        description=html.unescape(item.findtext(_q(ITUNES, "summary")) or ""),
        date=published.date().isoformat(),
        duration=int(hours) * 3600 + int(minutes) * 60 + int(seconds),
        bytes=int(enclosure.get("length", "")),  # type: ignore[union-attr]
        mp3=local(enclosure.get("url"), "enclosure"),  # type: ignore[union-attr]
        chapters=local(chapters.get("url"), "chapters"),  # type: ignore[union-attr]
        transcripts={kind: transcripts[kind] for kind in TRANSCRIPT_KINDS},
        page=local(item.findtext("link"), "link"),
        hosts=tuple(p.text or "" for p in item.iterfind(_q(PODCAST, "person"))),
        notes=item.findtext(_q(CONTENT, "encoded")) or "",
        renditions=tuple(
            Rendition(
                path=local(alt.find(_q(PODCAST, "source")).get("uri"), "rendition"),  # type: ignore[union-attr]
                type=alt.get("type", ""),
                bytes=int(alt.get("length", "")),
                bitrate=int(alt.get("bitrate", "")),
                codecs=alt.get("codecs", ""),
                title=alt.get("title", ""),
            )
            for alt in item.iterfind(_q(PODCAST, "alternateEnclosure"))
        ),
        season=int(item.findtext(_q(ITUNES, "season"), "0")) or None,
        artwork=_artwork(item, local),
        soundbites=tuple(
            Soundbite(
                float(bite.get("startTime", "")),
                float(bite.get("duration", "")),
                bite.text or "",
                chosen=True,
            )
            for bite in item.iterfind(_q(PODCAST, "soundbite"))
        ),
    )


def _artwork(item: etree._Element, local: Callable[[str | None, str], str]) -> str | None:
    image = item.find(_q(ITUNES, "image"))
    return local(image.get("href"), "artwork") if image is not None else None


def _q(namespace: str, name: str) -> str:
    return f"{{{namespace}}}{name}"


def pub_date(day: str) -> str:
    """RFC 2822 date for a release day (published at 06:00 UTC)."""
    moment = datetime.datetime.combine(
        datetime.date.fromisoformat(day), datetime.time(6, 0), tzinfo=datetime.UTC
    )
    return email.utils.format_datetime(moment)


def feed_xml(show: Show, episodes: list[EpisodeEntry]) -> bytes:
    """The feed for ``show`` with ``episodes`` (catalogue entries), newest first."""
    rss = etree.Element("rss", {"version": "2.0"}, nsmap=NSMAP)
    channel = _sub(rss, "channel")
    _sub(channel, "title", show.title)
    _sub(channel, "link", f"{show.base_url}/")
    _sub(channel, "description", _as_html(show.description))
    _sub(channel, "language", show.language)
    _sub(channel, "generator", "Life is Artificial pipeline")
    _sub(
        channel,
        _q(ATOM, "link"),
        href=url(show, "feed.xml"),
        rel="self",
        type="application/rss+xml",
    )
    newest = sorted(episodes, key=lambda e: e.episode, reverse=True)
    if newest:
        _sub(channel, "lastBuildDate", pub_date(max(e.date for e in newest)))
    _sub(channel, _q(ITUNES, "image"), href=url(show, "cover.jpg"))
    image = _sub(channel, "image")
    _sub(image, "url", url(show, "cover.jpg"))
    _sub(image, "title", show.title)
    _sub(image, "link", f"{show.base_url}/")
    _sub(channel, _q(ITUNES, "category"), text=show.category)
    _sub(channel, _q(ITUNES, "explicit"), "true" if show.explicit else "false")
    _sub(channel, _q(ITUNES, "author"), show.author)
    if show.owner_name and show.owner_email:
        owner = _sub(channel, _q(ITUNES, "owner"))
        _sub(owner, _q(ITUNES, "name"), show.owner_name)
        _sub(owner, _q(ITUNES, "email"), show.owner_email)
    _sub(channel, _q(ITUNES, "type"), show.type)
    _sub(channel, _q(ITUNES, "summary"), _as_html(show.description))
    _sub(channel, _q(PODCAST, "guid"), podcast_guid(show.feed_url))
    _sub(channel, _q(PODCAST, "medium"), "podcast")
    for namespace in (PODCAST, PODCAST_LEGACY):
        lock = {"owner": show.owner_email} if show.owner_email else {}
        _sub(channel, _q(namespace, "locked"), "yes" if show.locked else "no", **lock)
    if show.license:
        where = {"url": show.license_url} if show.license_url else {}
        _sub(channel, _q(PODCAST, "license"), show.license, **where)
    for entry in newest:
        _item(channel, show, entry)
    return etree.tostring(rss, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _item(channel: etree._Element, show: Show, entry: EpisodeEntry) -> None:
    item = _sub(channel, "item")
    _sub(item, "title", entry.title)
    _sub(item, "description", entry.notes or _as_html(entry.description))
    if entry.notes:
        _sub(item, _q(CONTENT, "encoded"), entry.notes)
    _sub(item, "link", url(show, entry.page))
    _sub(item, "guid", entry.guid, isPermaLink="false")
    _sub(item, "pubDate", pub_date(entry.date))
    enclosure = media_url(show, entry.mp3)
    _sub(item, "enclosure", url=enclosure, length=str(entry.bytes), type="audio/mpeg")
    _sub(item, _q(ITUNES, "title"), entry.title)
    _sub(item, _q(ITUNES, "summary"), _as_html(entry.description))
    _sub(item, _q(ITUNES, "duration"), clock(entry.duration, hours=True, rounded=True))
    if entry.season is not None:
        _sub(item, _q(ITUNES, "season"), str(entry.season))
    _sub(item, _q(ITUNES, "episode"), str(entry.episode))
    _sub(item, _q(ITUNES, "episodeType"), "full")
    _sub(item, _q(ITUNES, "explicit"), "true" if show.explicit else "false")
    if entry.artwork:
        _sub(item, _q(ITUNES, "image"), href=url(show, entry.artwork))
    for namespace in (PODCAST, PODCAST_LEGACY):
        _sub(
            item,
            _q(namespace, "chapters"),
            url=url(show, entry.chapters),
            type="application/json+chapters",
        )
        for kind in TRANSCRIPT_KINDS:
            attrs = {"url": url(show, entry.transcripts[kind]), "type": TRANSCRIPT_TYPES[kind]}
            if kind == "vtt":
                attrs["rel"] = "captions"
            _sub(item, _q(namespace, "transcript"), **attrs)
    for bite in entry.soundbites:
        _sub(
            item,
            _q(PODCAST, "soundbite"),
            bite.title,
            startTime=f"{bite.start:.3f}",
            duration=f"{bite.duration:.3f}",
        )
    for rendition in entry.renditions:
        attrs = {
            "type": rendition.type,
            "length": str(rendition.bytes),
            "bitrate": str(rendition.bitrate),
            "codecs": rendition.codecs,
            "title": rendition.title,
        }
        if rendition.path == entry.mp3:
            attrs["default"] = "true"  # the enclosure's own file
        alternate = _sub(item, _q(PODCAST, "alternateEnclosure"), **attrs)
        _sub(alternate, _q(PODCAST, "source"), uri=media_url(show, rendition.path))
