"""Publishing: the feed read by real podcast clients, the site served by nginx and driven in
Chromium, and delivery to a real sshd and a real S3-compatible server on loopback."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path

import feedparser
import lxml.html
import numpy as np
import podcastparser
import pytest
from conftest import FIXTURES, REPO
from lxml import etree
from PIL import Image
from servers import free_port, s3rver, sshd

from pipeline.catalogue import EpisodeEntry
from pipeline.cli import main
from pipeline.errors import PipelineError
from pipeline.feed import episodes_from_feed, podcast_guid
from pipeline.publish import publish
from pipeline.render import render
from pipeline.serve import serving
from pipeline.show import LocalTarget, S3Target, SftpTarget, Show, parse_target, target_settings
from pipeline.targets import LocalRemote

# Every test renders the fixture episode or starts a server: the slow tier.
pytestmark = pytest.mark.slow

TRICKY = 'Bits & <Bytes>: "quoted", café — naïve €5'
LONG_URL = (  # the fixture fact sheet's public source
    "https://example.org/a/very/long/path/that/would/push/a/phone/page/sideways/unless/it/"
    "wraps?query=and&more=parameters"
)


@pytest.fixture(scope="module")
def render_cache(tmp_path_factory) -> Path:
    """One turn cache for the module: each script variant renders in seconds."""
    cache = tmp_path_factory.mktemp("cache")
    out = tmp_path_factory.mktemp("warm") / "episode.mp3"
    render(FIXTURES / "two_hosts.md", out, cache=cache)
    return cache


def make_show(
    folder: Path, base_url: str = "https://podcast.example.org/test", extra: str = ""
) -> Show:
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "podcast.yaml"
    config.write_text(
        f"title: Test Show\ndescription: {json.dumps('A show about ' + TRICKY)}\n"
        f"base_url: {base_url}\nlanguage: en-us\nauthor: Test Author\n"
        "owner: {name: Owner, email: owner@example.org}\ncategory: Technology\n"
        f"explicit: false\ntype: episodic\ncover: {REPO / 'assets' / 'cover.jpg'}\n"
        f"site: {folder / 'site'}\ntarget: {{kind: local, path: {folder / 'published'}}}\n" + extra,
        encoding="utf-8",
    )
    return Show.load(config)


def episode_script(folder: Path, number: int, title: str) -> Path:
    text = (FIXTURES / "two_hosts.md").read_text(encoding="utf-8")
    text = text.replace("episode: 7", f"episode: {number}")
    text = text.replace("title: Fixture episode", f"title: {json.dumps(title)}")
    text = text.replace(
        "description: Two hosts, two chapters, every kind of gap.",
        f"description: {json.dumps('Notes: ' + TRICKY)}",
    )
    # Beside the fixture (its relative paths hold), named for this test alone.
    path = FIXTURES / f".episode-{number}-{os.getpid()}-{uuid.uuid4().hex[:8]}.md"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def episode(tmp_path, render_cache):
    """``episode(number, title)``: the fixture script as that episode, and its render."""
    made: dict[tuple[int, str], tuple[Path, Path]] = {}

    def make(number: int, title: str) -> tuple[Path, Path]:
        if (number, title) not in made:
            script = episode_script(tmp_path, number, title)
            out = tmp_path / f"build-{len(made)}" / f"ep{number}.mp3"  # any name publishes
            render(script, out, cache=render_cache)
            made[number, title] = script, out
        return made[number, title]

    yield make
    for script, _ in made.values():
        script.unlink(missing_ok=True)


def site_files(site: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(site)): p.read_bytes()
        for p in site.rglob("*")
        if p.is_file() and p.name != ".manifest.json"
    }


def test_feed_is_read_by_podcastparser_and_feedparser(episode, tmp_path) -> None:
    show = make_show(tmp_path)
    _, mp3 = episode(7, TRICKY)
    report = publish(show, *episode(7, TRICKY))
    feed = (show.site / "feed.xml").read_bytes()
    timeline = json.loads(mp3.with_suffix(".timeline.json").read_text(encoding="utf-8"))
    mp3_bytes = mp3.stat().st_size

    parsed = podcastparser.parse(f"{show.base_url}/feed.xml", __import__("io").BytesIO(feed))
    assert parsed["title"] == "Test Show" and parsed["explicit"] is False
    assert html.unescape(parsed["description"]) == "A show about " + TRICKY
    (episode,) = parsed["episodes"]
    assert episode["title"] == TRICKY  # escaped in the XML, intact when read
    # Descriptions and summaries are HTML to apps: the text, escaped, reads back intact.
    assert html.unescape(episode["description"]) == "Notes: " + TRICKY
    (enclosure,) = episode["enclosures"]
    assert enclosure["file_size"] == mp3_bytes and enclosure["mime_type"] == "audio/mpeg"
    assert enclosure["url"] == f"{show.base_url}/episodes/7/test-show-007.mp3"
    assert episode["total_time"] == round(timeline["duration"])
    assert episode["chapters_json_url"] == f"{show.base_url}/episodes/7/chapters.json"
    assert episode["transcript_url"].startswith(f"{show.base_url}/episodes/7/transcript.")
    assert episode["guid"].startswith("urn:uuid:")

    # The show notes: HTML in content:encoded, with the disclosure and the chapter times.
    notes = episode["description_html"]
    assert "AI disclosure: Alex Example and Maya Example are synthetic voices" in notes
    assert "The script was written by the test suite." in notes
    assert "0:00 First things" in notes
    assert parsed["import_prohibited"] is True  # podcast:locked, under the old address

    parsed = feedparser.parse(feed)
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.feed.podcast_guid == str(
        uuid.uuid5(
            uuid.UUID("ead4c236-bf58-58c6-a2c6-a6b28d128cb6"), "podcast.example.org/test/feed.xml"
        )
    )
    assert parsed.feed.podcast_medium == "podcast"
    assert parsed.feed.podcast_locked == {"owner": "owner@example.org"}
    entry = parsed.entries[0]
    assert entry.title == TRICKY
    assert entry.content[0]["type"] == "text/html"
    assert entry.content[0]["value"].startswith("<p>Notes: " + html.escape(TRICKY, quote=False))
    assert entry.itunes_season == "2"
    assert entry.enclosures[0]["length"] == str(mp3_bytes)
    assert entry.itunes_duration == f"0:00:{round(timeline['duration']):02d}"
    assert entry.podcast_chapters["url"].endswith("/episodes/7/chapters.json")
    # Apple's spec says true/false; feedparser knows only yes/clean and gives None (not
    # explicit) for "false", podcastparser reads False.
    assert not parsed.feed.itunes_explicit
    assert parsed.feed.tags[0]["term"] == "Technology"
    assert parsed.feed.author_detail["email"] == "owner@example.org"
    assert report.episodes == 1


P20 = "{https://podcastindex.org/namespace/1.0}"
ITUNES = "{http://www.itunes.com/dtds/podcast-1.0.dtd}"


def test_the_feed_meets_the_release_standards(episode, tmp_path) -> None:
    """Podcasting 2.0 identity, both renditions, season, artwork and the soundbite; no
    synthetic voice presented as a person; enclosures through the analytics prefix."""
    show = make_show(tmp_path, extra="analytics_prefix: https://op3.dev/e/\nlicense: CC-BY-4.0\n")
    script, mp3 = episode(7, "Seven")
    publish(show, script, mp3)
    published = tmp_path / "published"
    root = etree.fromstring((published / "feed.xml").read_bytes())
    channel = root.find("channel")
    # The namespace's own example: podnews.net/rss is 9b024349-ccf0-5f69-a609-6b82873eab3c.
    assert podcast_guid("https://podnews.net/rss") == "9b024349-ccf0-5f69-a609-6b82873eab3c"
    assert channel.findtext(f"{P20}guid") == podcast_guid(show.feed_url)
    assert channel.findtext(f"{P20}medium") == "podcast"
    assert channel.findtext(f"{P20}license") == "CC-BY-4.0"
    locked = channel.find(f"{P20}locked")
    assert (locked.text, locked.get("owner")) == ("yes", "owner@example.org")
    assert root.find(f".//{P20}person") is None  # synthetic voices are not people
    item = channel.find("item")
    base = "podcast.example.org/test/"
    enclosure = item.find("enclosure")
    assert enclosure.get("url") == f"https://op3.dev/e/{base}episodes/7/test-show-007.mp3"
    alternates = item.findall(f"{P20}alternateEnclosure")
    assert [a.get("type") for a in alternates] == ["audio/mpeg", "audio/ogg"]
    assert [a.get("default") for a in alternates] == ["true", None]
    opus = mp3.with_suffix(".opus")
    for alternate, local in zip(alternates, (mp3, opus), strict=True):
        assert int(alternate.get("length")) == local.stat().st_size
        uri = alternate.find(f"{P20}source").get("uri")
        assert uri.startswith(f"https://op3.dev/e/{base}")
        assert (published / uri.removeprefix(f"https://op3.dev/e/{base}")).read_bytes() == (
            local.read_bytes()
        )
    assert alternates[0].get("bitrate") == "128000" and alternates[1].get("codecs") == "opus"
    assert item.findtext(f"{ITUNES}season") == "2"
    artwork = item.find(f"{ITUNES}image").get("href")
    assert (published / artwork.removeprefix(show.base_url + "/")).read_bytes() == (
        REPO / "assets" / "cover.jpg"
    ).read_bytes()
    (bite,) = item.findall(f"{P20}soundbite")
    timeline = json.loads(mp3.with_suffix(".timeline.json").read_text(encoding="utf-8"))
    maya = next(t for t in timeline["turns"] if t["text"].startswith("Here is the second"))
    assert float(bite.get("startTime")) == pytest.approx(maya["start"], abs=0.001)
    assert float(bite.get("duration")) == pytest.approx(maya["end"] - maya["start"], abs=0.001)
    assert bite.text == "Second thoughts"
    # The notes are HTML whose text is the description as written, then the disclosure.
    notes = lxml.html.fragments_fromstring(item.findtext("description"))
    assert notes[0].text_content() == "Notes: " + TRICKY
    assert notes[1].text_content().startswith("AI disclosure: Alex Example and Maya Example")
    # Every public source as a link; one known only by a local path is never published.
    links = [a.get("href") for fragment in notes for a in fragment.iter("a")]
    assert links == [LONG_URL]
    assert "brief" not in item.findtext("description")
    assert "brief" not in mp3.with_suffix(".shownotes.md").read_text(encoding="utf-8")
    # A feed whose catalogue is lost reads back to the same entries, prefix and all.
    (entry,) = [
        EpisodeEntry.from_json(e) for e in json.loads((published / "episodes.json").read_text())
    ]
    (back,) = episodes_from_feed((published / "feed.xml").read_bytes(), show)
    assert back.renditions == entry.renditions and back.artwork == entry.artwork
    assert back.soundbites[0].start == entry.soundbites[0].start


def test_every_feed_url_is_a_published_file(episode, tmp_path) -> None:
    show = make_show(tmp_path)
    publish(show, *episode(7, "One"))
    published = tmp_path / "published"
    parsed = feedparser.parse((published / "feed.xml").read_bytes())
    urls = [parsed.entries[0].enclosures[0]["href"], parsed.entries[0].podcast_chapters["url"]]
    urls += [parsed.feed.image["href"]]
    for link in urls:
        assert (published / link.removeprefix(show.base_url + "/")).is_file(), link
    assert site_files(published) == site_files(show.site)
    mp3 = episode(7, "One")[1]
    assert (published / "episodes/7/test-show-007.mp3").read_bytes() == mp3.read_bytes()


def test_pages_escape_what_they_show(episode, tmp_path) -> None:
    show = make_show(tmp_path)
    publish(show, *episode(7, TRICKY))
    page = (show.site / "episodes/7/index.html").read_text(encoding="utf-8")
    assert "Bits &amp; &lt;Bytes&gt;: &#34;quoted&#34;, café — naïve €5" in page
    assert "<Bytes>" not in page and "&amp;#" not in page  # escaped once, never twice
    index = (show.site / "index.html").read_text(encoding="utf-8")
    assert 'href="episodes/7/index.html"' in index and "&lt;Bytes&gt;" in index


def test_republish_skips_unchanged_files_and_keeps_earlier_episodes(episode, tmp_path) -> None:
    show = make_show(tmp_path)
    first = publish(show, *episode(7, "Seven"))
    assert first.skipped == [] and first.uploaded[-1] == "feed.xml"
    again = publish(show, *episode(7, "Seven"))
    assert again.uploaded == [] and len(again.skipped) == len(first.uploaded)
    # A new episode: the catalogue on the target keeps the first, even from a fresh site.
    shutil.rmtree(show.site)
    later = publish(show, *episode(8, "Eight"))
    assert later.episodes == 2 and "cover.jpg" in later.skipped
    feed = feedparser.parse((tmp_path / "published" / "feed.xml").read_bytes())
    assert [e.title for e in feed.entries] == ["Eight", "Seven"]
    guids = [e.id for e in feed.entries]
    assert len(set(guids)) == 2
    # The guid of an episode never changes, even when it is published again with a new title.
    publish(show, *episode(7, "Seven, revised"))
    feed = feedparser.parse((tmp_path / "published" / "feed.xml").read_bytes())
    assert {e.title: e.id for e in feed.entries}["Seven, revised"] == guids[1]


def test_an_interrupted_publish_never_exposes_a_missing_or_partial_file(
    episode, tmp_path, monkeypatch
) -> None:
    show = make_show(tmp_path)
    published = tmp_path / "published"
    publish(show, *episode(7, "Seven"))
    real_put = LocalRemote.put
    calls = {"n": 0}

    def failing_put(self, local, name, content_type, cache_control):
        calls["n"] += 1
        if calls["n"] == 3:  # a partial copy, then the connection drops
            (self.root / name).parent.mkdir(parents=True, exist_ok=True)
            (self.root / f".{Path(name).name}.dead.part").write_bytes(local.read_bytes()[:10])
            raise ConnectionError("interrupted")
        return real_put(self, local, name, content_type, cache_control)

    monkeypatch.setattr(LocalRemote, "put", failing_put)
    with pytest.raises(PipelineError, match=r"cannot deliver .* interrupted"):
        publish(show, *episode(8, "Eight"))
    feed = feedparser.parse((published / "feed.xml").read_bytes())
    assert [e.title for e in feed.entries] == ["Seven"]  # still the old, complete feed
    for entry in feed.entries:
        path = published / entry.enclosures[0]["href"].removeprefix(show.base_url + "/")
        assert path.stat().st_size == int(entry.enclosures[0]["length"])
    monkeypatch.setattr(LocalRemote, "put", real_put)
    for part in published.rglob("*.part"):
        part.unlink()  # what a stray temporary looks like; the next run ignores it
    done = publish(show, *episode(8, "Eight"))
    assert done.uploaded[-1] == "feed.xml"
    feed = feedparser.parse((published / "feed.xml").read_bytes())
    assert [e.title for e in feed.entries] == ["Eight", "Seven"]
    for entry, number in zip(feed.entries, (8, 7), strict=True):
        path = published / entry.enclosures[0]["href"].removeprefix(show.base_url + "/")
        mp3 = episode(number, {7: "Seven", 8: "Eight"}[number])[1]
        assert path.read_bytes() == mp3.read_bytes()


@pytest.mark.servers
def test_publish_over_sftp_to_a_real_sshd(episode, tmp_path, monkeypatch) -> None:
    show = make_show(tmp_path)
    with sshd(tmp_path / "ssh") as server:
        monkeypatch.setenv("SSH_AUTH_SOCK", server["SSH_AUTH_SOCK"])
        remote = tmp_path / "remote" / "www"
        target = SftpTarget(
            host=server["host"],
            port=int(server["port"]),
            user=server["user"],
            path=str(remote),
            known_hosts=server["known_hosts"],
        )
        report = publish(show, *episode(7, "Over SFTP"), target)
        assert report.uploaded[-1] == "feed.xml"
        assert site_files(remote) == site_files(show.site)  # every byte, read back from disk
        # An upload killed an hour ago left a temporary; one in progress is fresh.
        stale = remote / "episodes" / "7" / ".test-show-007.mp3.4242-0123abcd.part"
        fresh = remote / ".feed.xml.4243-0123abcd.part"
        for path in (stale, fresh):
            path.write_bytes(b"part of a file")
        os.utime(stale, (time.time() - 7200, time.time() - 7200))
        assert publish(show, *episode(7, "Over SFTP"), target).uploaded == []
        assert not stale.exists() and fresh.exists()
        fresh.unlink()
        # An unknown host key is refused, never trusted silently.
        Path(server["known_hosts"]).write_text("", "utf-8")
        with pytest.raises(PipelineError, match="host key must be in"):
            publish(show, *episode(7, "Over SFTP"), target)


@pytest.mark.servers
def test_publish_to_a_real_s3_server(episode, tmp_path, monkeypatch) -> None:
    import boto3

    show = make_show(tmp_path)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "S3RVER")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "S3RVER")
    with s3rver(tmp_path / "s3", "podcast") as endpoint:
        target = S3Target(endpoint=endpoint, bucket="podcast", prefix="show")
        report = publish(show, *episode(7, "Over S3"), target)
        assert report.uploaded[-1] == "feed.xml"
        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        for name, data in site_files(show.site).items():
            got = client.get_object(Bucket="podcast", Key=f"show/{name}")
            assert got["Body"].read() == data, name
        mp3 = client.head_object(Bucket="podcast", Key="show/episodes/7/test-show-007.mp3")
        assert mp3["ContentType"] == "audio/mpeg"
        assert mp3["CacheControl"] == "public, max-age=86400"
        feed = client.head_object(Bucket="podcast", Key="show/feed.xml")
        assert feed["ContentType"].startswith("application/rss+xml")
        chapters = client.head_object(Bucket="podcast", Key="show/episodes/7/chapters.json")
        assert chapters["ContentType"] == "application/json+chapters"
        opus = client.head_object(Bucket="podcast", Key="show/episodes/7/test-show-007.opus")
        assert opus["ContentType"] == "audio/ogg"
        (rule,) = client.get_bucket_cors(Bucket="podcast")["CORSRules"]
        assert rule["AllowedOrigins"] == ["*"] and set(rule["AllowedMethods"]) == {"GET", "HEAD"}
        assert publish(show, *episode(7, "Over S3"), target).uploaded == []


def test_s3_needs_credentials_from_the_environment(episode, tmp_path, monkeypatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    show = make_show(tmp_path)
    target = S3Target(endpoint="http://127.0.0.1:9", bucket="b")
    with pytest.raises(PipelineError, match="no S3 credentials in the environment"):
        publish(show, *episode(7, "x"), target)


@pytest.mark.servers
@pytest.mark.browser
def test_served_site_feed_range_requests_and_the_episode_page(episode, tmp_path) -> None:
    from playwright.sync_api import sync_playwright

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    show = make_show(tmp_path, base_url=base)
    _, mp3 = episode(7, "Served")
    publish(show, *episode(7, "Served"))
    timeline = json.loads(mp3.with_suffix(".timeline.json").read_text(encoding="utf-8"))
    with serving(show.site, port) as url:
        with urllib.request.urlopen(url + "feed.xml") as response:
            parsed = podcastparser.parse(url + "feed.xml", response)
        enclosure = parsed["episodes"][0]["enclosures"][0]
        # Web players elsewhere may fetch the media and chapters (CORS), each as its type.
        sent = {
            "episodes/7/test-show-007.mp3": "audio/mpeg",
            "episodes/7/test-show-007.opus": "audio/ogg",
            "episodes/7/chapters.json": "application/json+chapters",
        }
        for path, kind in sent.items():
            with urllib.request.urlopen(url + path) as response:
                assert response.headers["Content-Type"].split(";")[0] == kind, path
                assert response.headers["Access-Control-Allow-Origin"] == "*", path
        request = urllib.request.Request(enclosure["url"], headers={"Range": "bytes=100-1123"})
        with urllib.request.urlopen(request) as response:
            assert response.status == 206
            assert response.headers["Content-Range"].startswith("bytes 100-1123/")
            assert response.read() == mp3.read_bytes()[100:1124]
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=shutil.which("chromium") or "/usr/bin/chromium",
                args=[
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--no-first-run",
                ],
            )
            page = browser.new_page(viewport={"width": 390, "height": 844})  # a phone
            page.goto(url + "episodes/7/index.html")
            page.wait_for_function("document.getElementById('player').readyState >= 1")
            # The Opus rendition is what Chromium plays, and it plays the whole episode.
            assert page.evaluate("document.getElementById('player').currentSrc").endswith(
                "/episodes/7/test-show-007.opus"
            )
            duration = page.evaluate("document.getElementById('player').duration")
            assert duration == pytest.approx(timeline["duration"], abs=0.2)
            chapter = timeline["chapters"][1]
            # A screen reader hears what the button does, not "0:13Second thoughts".
            name = f"Play from 13 seconds: {chapter['title']}"
            page.get_by_role("button", name=name, exact=True).click()
            page.wait_for_function(
                f"document.getElementById('player').currentTime > {chapter['start'] + 0.5}"
            )
            cues = page.locator(".cue").count()
            assert cues == len(
                json.loads(mp3.with_suffix(".transcript.json").read_text())["segments"]
            )
            # 390 px wide with no sideways scroll, though a source's URL is long.
            assert page.evaluate("document.documentElement.scrollWidth") <= 390
            assert page.locator(f'a[href="{LONG_URL}"]').count() == 1
            # Every piece of text meets WCAG AA contrast (4.5:1) on the page background.
            pairs = page.evaluate(
                """[...document.querySelectorAll('body *')]
                   .filter(e => [...e.childNodes].some(
                       n => n.nodeType === 3 && n.textContent.trim()))
                   .map(e => {
                     let b = e;  // the nearest background that is painted
                     while (b && getComputedStyle(b).backgroundColor === 'rgba(0, 0, 0, 0)')
                       b = b.parentElement;
                     return [getComputedStyle(e).color,
                             getComputedStyle(b || document.body).backgroundColor,
                             e.tagName + '.' + e.className];
                   })"""
            )
            ratios = {what: contrast(colour, back) for colour, back, what in pairs}
            assert min(ratios.values()) >= 4.5, ratios
            # A favicon and an Open Graph card whose picture is served.
            icon = page.evaluate("document.querySelector('link[rel=icon]').href")
            card = page.evaluate("document.querySelector('meta[property=\"og:image\"]').content")
            for address, kind in ((icon, "image/png"), (card, "image/jpeg")):
                with urllib.request.urlopen(address) as response:
                    assert response.headers["Content-Type"] == kind
            page.screenshot(path=str(tmp_path / "phone.png"), full_page=True)
            browser.close()


def contrast(foreground: str, background: str) -> float:
    """WCAG contrast ratio of two CSS ``rgb(...)`` colours."""

    def luminance(colour: str) -> float:
        channels = [int(c) / 255 for c in re.findall(r"\d+", colour)[:3]]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    light, dark = sorted((luminance(foreground), luminance(background)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_descriptions_and_summaries_reach_apps_as_text_not_markup(episode, tmp_path) -> None:
    show = make_show(tmp_path)
    publish(show, *episode(7, TRICKY))
    root = etree.fromstring((show.site / "feed.xml").read_bytes())
    itunes = "{http://www.itunes.com/dtds/podcast-1.0.dtd}"
    channel = "A show about " + TRICKY
    item = "Notes: " + TRICKY
    escaped = {
        "channel/description": channel,
        f"channel/{itunes}summary": channel,
        f"channel/item/{itunes}summary": item,
    }
    for where, text in escaped.items():
        # HTML-escaped once (quotes need none in text), then XML-escaped by lxml.
        assert root.findtext(where) == html.escape(text, quote=False), where
    # The item's description and content:encoded are the show notes, HTML written with
    # autoescaping: rendered, their first paragraph is the description as written.
    content = "{http://purl.org/rss/1.0/modules/content/}encoded"
    for where in ("channel/item/description", f"channel/item/{content}"):
        (first, *_) = lxml.html.fragments_fromstring(root.findtext(where))
        assert first.tag == "p" and first.text_content() == item, where
        assert "<Bytes>" not in root.findtext(where)
    assert root.findtext("channel/item/title") == TRICKY  # a title is plain text to apps


def test_a_target_with_a_feed_but_no_catalogue_keeps_its_episodes(
    episode, tmp_path, capsys
) -> None:
    show = make_show(tmp_path)
    published = tmp_path / "published"
    publish(show, *episode(7, TRICKY))
    before = json.loads((published / "episodes.json").read_text(encoding="utf-8"))
    (published / "episodes.json").unlink()
    script, mp3 = episode(8, "Eight")
    args = ["publish", "--show", str(show.path), "--script", str(script), "--episode", str(mp3)]
    assert main(args) == 0
    said = capsys.readouterr().out
    assert "read back from its feed" in said and "kept episode(s) already published: 7" in said
    after = json.loads((published / "episodes.json").read_text(encoding="utf-8"))
    assert [entry["episode"] for entry in after] == [7, 8]
    kept = after[0]
    for key in ("guid", "title", "description", "date", "bytes", "mp3", "chapters", "page"):
        assert kept[key] == before[0][key], key
    assert kept["transcripts"] == before[0]["transcripts"]
    assert kept["duration"] == round(before[0]["duration"])
    feed = feedparser.parse((published / "feed.xml").read_bytes())
    assert [e.title for e in feed.entries] == ["Eight", TRICKY]


def test_an_episode_is_removed_only_when_asked(episode, tmp_path) -> None:
    show = make_show(tmp_path)
    publish(show, *episode(7, "Seven"))
    assert publish(show, *episode(8, "Eight")).kept == [7]
    with pytest.raises(PipelineError, match="--remove 5: the target has no episode 5"):
        publish(show, *episode(8, "Eight"), remove=[5])
    report = publish(show, *episode(8, "Eight"), remove=[7])
    assert report.removed == [7] and report.kept == [] and report.episodes == 1
    feed = feedparser.parse((tmp_path / "published" / "feed.xml").read_bytes())
    assert [e.title for e in feed.entries] == ["Eight"]


@pytest.mark.parametrize(
    ("catalogue", "problem"),
    [
        ("[{}]", "entry 1 has no 'episode'"),
        ("null", "is not a list of episodes"),
        ('[{"episode": "7"}]', "entry 1 has a 'episode' of the wrong kind (str)"),
    ],
)
def test_a_damaged_catalogue_on_the_target_is_an_error_not_a_loss(
    catalogue, problem, episode, tmp_path
) -> None:
    show = make_show(tmp_path)
    published = tmp_path / "published"
    publish(show, *episode(7, "Seven"))
    feed = (published / "feed.xml").read_bytes()
    (published / "episodes.json").write_text(catalogue, encoding="utf-8")
    with pytest.raises(PipelineError, match=re.escape(problem)):
        publish(show, *episode(8, "Eight"))
    assert (published / "feed.xml").read_bytes() == feed


def test_publish_refuses_a_build_that_is_not_from_its_script(episode, tmp_path) -> None:
    show = make_show(tmp_path)
    seven, seven_mp3 = episode(7, "Seven")
    eight, eight_mp3 = episode(8, "Eight")
    # Episode 8's script with episode 7's audio: refused, nothing published.
    with pytest.raises(PipelineError) as caught:
        publish(show, eight, seven_mp3)
    assert f"{seven_mp3} is episode 7 ('Seven'" in str(caught.value)
    assert not (tmp_path / "published").exists()
    # The script edited after its render: refused too.
    seven.write_text(seven.read_text(encoding="utf-8") + "\nALEX: One more thing.\n")
    with pytest.raises(PipelineError, match=r"not what .* says now"):
        publish(show, seven, seven_mp3)
    # A set mixed by hand (another render's MP3 beside this timeline): refused.
    shutil.copyfile(seven_mp3, eight_mp3)
    with pytest.raises(PipelineError, match="is not the MP3 its manifest was made with"):
        publish(show, eight, eight_mp3)


def test_publish_sweeps_what_dead_publishes_left(episode, tmp_path) -> None:
    show = make_show(tmp_path)
    publish(show, *episode(7, "Seven"))
    dead = subprocess.Popen(["true"])
    dead.wait()
    published = tmp_path / "published"
    stale = [
        published / f".feed.xml.{dead.pid}-0123abcd.part",
        published / "episodes" / "8" / f".test-show-008.mp3.{dead.pid}-89abcdef.part",
        show.site / f".index.html.{dead.pid}-01234567.part",
    ]
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"half a file")
    publish(show, *episode(8, "Eight"))
    assert not any(path.exists() for path in stale)


def test_s3_errors_are_one_clear_message(episode, tmp_path, monkeypatch) -> None:
    show = make_show(tmp_path)
    script, mp3 = episode(7, "x")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "key")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    refused = S3Target(endpoint=f"http://127.0.0.1:{free_port()}", bucket="b")
    with pytest.raises(PipelineError, match="AWS_SECRET_ACCESS_KEY is not set"):
        publish(show, script, mp3, refused)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    with pytest.raises(
        PipelineError, match=r"cannot read b/episodes.json on S3: Could not connect"
    ):
        publish(show, script, mp3, refused)


def test_target_settings_are_checked_typed_and_overridable(tmp_path) -> None:
    show = make_show(tmp_path)
    assert show.target == LocalTarget(tmp_path / "published")
    text = show.path.read_text(encoding="utf-8")
    bad = {
        "target:\n  kind: sftp\n  host: h\n  path: /www\n": "a sftp target needs 'user'",
        "target:\n  kind: sftp\n  host: h\n  user: u\n  path: /w\n  port: ssh\n": "port number",
        "target:\n  kind: s3\n  bucket: b\n  host: h\n": "unknown s3 setting 'host'",
    }
    lines = text.count("\n")
    for block, message in bad.items():
        show.path.write_text(text.split("target:")[0] + block, encoding="utf-8")
        with pytest.raises(PipelineError, match=message) as caught:
            Show.load(show.path)
        assert caught.value.line in range(lines, lines + 6)  # at the target, not line 1
    sftp = SftpTarget(host="h", user="u", path="/www", port=2222)
    s3 = S3Target(bucket="b", endpoint="http://127.0.0.1:9000", prefix="show")
    for target in (show.target, sftp, s3):  # what `--target` starts from is the same target
        assert parse_target(None, target_settings(target)) == target
    assert parse_target(None, target_settings(sftp) | {"port": 22}).port == 22


def test_promo_makes_a_captioned_square_audiogram_that_the_page_links(episode, tmp_path) -> None:
    script, mp3 = episode(7, "Seven")
    assert main(["promo", str(script), "-i", str(mp3)]) == 0
    video = mp3.with_name("ep7-audiogram.mp4")
    probe = json.loads(
        subprocess.run(
            ["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", str(video)],
            capture_output=True,
            check=True,
        ).stdout
    )
    streams = {s["codec_type"]: s for s in probe["streams"]}
    assert streams["video"]["codec_name"] == "h264" and streams["audio"]["codec_name"] == "aac"
    assert (streams["video"]["width"], streams["video"]["height"]) == (1080, 1080)
    timeline = json.loads(mp3.with_suffix(".timeline.json").read_text(encoding="utf-8"))
    maya = next(t for t in timeline["turns"] if t["text"].startswith("Here is the second"))
    assert float(probe["format"]["duration"]) == pytest.approx(maya["end"] - maya["start"], abs=0.1)
    # One frame against the artwork: the disclosure at the top, then the artwork, the
    # waveform across the middle and the burnt-in caption in the lower third.
    grab = ["ffmpeg", "-v", "error", "-ss", "1.0", "-i", str(video), "-frames:v", "1"]
    raw = subprocess.run(
        [*grab, "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        capture_output=True,
        check=True,
    ).stdout
    frame = np.frombuffer(raw, dtype=np.uint8).reshape(1080, 1080, 3).astype(float)
    art = Image.open(REPO / "assets" / "cover.jpg").convert("RGB").resize((1080, 1080))
    art = np.asarray(art, dtype=float)

    def differs(rows: slice) -> float:
        return float(np.abs(frame[rows] - art[rows]).mean())

    assert differs(slice(40, 80)) > 12  # "Alex Example and Maya Example are synthetic..."
    assert differs(slice(120, 400)) < 6
    assert differs(slice(480, 640)) > 6  # the waveform
    assert differs(slice(700, 830)) > 12  # the caption box
    # Published, the page links the clip and the clip goes with it.
    show = make_show(tmp_path)
    publish(show, script, mp3)
    page = (show.site / "episodes/7/index.html").read_text(encoding="utf-8")
    assert 'href="../../episodes/7/clip.mp4"' in page
    assert (tmp_path / "published/episodes/7/clip.mp4").read_bytes() == video.read_bytes()


def test_publish_warns_before_delivering_what_apple_would_reject(episode, tmp_path) -> None:
    show = make_show(tmp_path, base_url="http://podcast.example.org/test")
    feed = tmp_path / "published" / "feed.xml"
    heard: list[tuple[str, bool]] = []
    publish(show, *episode(7, "Seven"), warn=lambda m: heard.append((m, feed.exists())))
    messages = [message for message, _ in heard]
    assert any("placeholder domain" in m for m in messages)
    assert any("is not https" in m for m in messages)
    assert any("owner email owner@example.org is a placeholder" in m for m in messages)
    assert not any(delivered for _, delivered in heard)  # before anything was delivered
    # A real domain, https and a real owner: nothing to say. No owner at all: said.
    text = show.path.read_text(encoding="utf-8")
    text = text.replace(
        "http://podcast.example.org/test", "https://podcasts.life-is-artificial.net"
    )
    show.path.write_text(text.replace("owner@example.org", "owner@life-is-artificial.net"))
    assert Show.load(show.path).warnings() == []
    lines = show.path.read_text(encoding="utf-8").splitlines()
    show.path.write_text("\n".join(line for line in lines if not line.startswith("owner:")))
    assert Show.load(show.path).warnings() == [
        f"{show.path}: no owner name and email: Apple Podcasts needs them to verify the show"
    ]
