"""Publishing: the feed read by real podcast clients, the site served by nginx and driven in
Chromium, and delivery to a real sshd and a real S3-compatible server on loopback."""

from __future__ import annotations

import html
import json
import os
import shutil
import urllib.request
from pathlib import Path

import feedparser
import podcastparser
import pytest
from conftest import FIXTURES, REPO
from servers import free_port, s3rver, sshd

from pipeline.cli import main
from pipeline.errors import PipelineError
from pipeline.publish import publish
from pipeline.serve import serving
from pipeline.show import Show, Target
from pipeline.targets import LocalRemote

TRICKY = 'Bits & <Bytes>: "quoted", café — naïve €5'


@pytest.fixture(scope="module")
def build(tmp_path_factory) -> Path:
    """The fixture script, rendered once."""
    folder = tmp_path_factory.mktemp("build")
    assert (
        main(["render", str(FIXTURES / "two_hosts.md"), "-o", str(folder / "episode.mp3"), "-q"])
        == 0
    )
    return folder


def make_show(folder: Path, base_url: str = "https://podcast.example.org/test") -> Show:
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "podcast.yaml"
    config.write_text(
        f"title: Test Show\ndescription: {json.dumps('A show about ' + TRICKY)}\n"
        f"base_url: {base_url}\nlanguage: en-us\nauthor: Test Author\n"
        "owner: {name: Owner, email: owner@example.org}\ncategory: Technology\n"
        f"explicit: false\ntype: episodic\ncover: {REPO / 'assets' / 'cover.jpg'}\n"
        f"site: {folder / 'site'}\ntarget: {{kind: local, path: {folder / 'published'}}}\n",
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
    path = FIXTURES.parent / f".episode-{number}-{os.getpid()}.md"  # beside the fixture
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def scripts():
    made: list[Path] = []

    def make(folder: Path, number: int, title: str) -> Path:
        made.append(episode_script(folder, number, title))
        return made[-1]

    yield make
    for path in made:
        path.unlink(missing_ok=True)


def site_files(site: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(site)): p.read_bytes()
        for p in site.rglob("*")
        if p.is_file() and p.name != ".manifest.json"
    }


def test_feed_is_read_by_podcastparser_and_feedparser(build, tmp_path, scripts) -> None:
    show = make_show(tmp_path)
    report = publish(show, scripts(tmp_path, 7, TRICKY), build)
    feed = (show.site / "feed.xml").read_bytes()
    timeline = json.loads((build / "episode.timeline.json").read_text(encoding="utf-8"))
    mp3_bytes = (build / "episode.mp3").stat().st_size

    parsed = podcastparser.parse(f"{show.base_url}/feed.xml", __import__("io").BytesIO(feed))
    assert parsed["title"] == "Test Show" and parsed["explicit"] is False
    assert parsed["description"] == "A show about " + TRICKY
    (episode,) = parsed["episodes"]
    assert episode["title"] == TRICKY  # escaped in the XML, intact when read
    # The description is HTML to apps: the text, escaped, reads back intact.
    assert html.unescape(episode["description_html"]) == "Notes: " + TRICKY
    (enclosure,) = episode["enclosures"]
    assert enclosure["file_size"] == mp3_bytes and enclosure["mime_type"] == "audio/mpeg"
    assert enclosure["url"] == f"{show.base_url}/episodes/7/test-show-007.mp3"
    assert episode["total_time"] == round(timeline["duration"])
    assert episode["chapters_json_url"] == f"{show.base_url}/episodes/7/chapters.json"
    assert episode["transcript_url"].startswith(f"{show.base_url}/episodes/7/transcript.")
    assert episode["guid"].startswith("urn:uuid:")

    parsed = feedparser.parse(feed)
    assert not parsed.bozo, parsed.get("bozo_exception")
    entry = parsed.entries[0]
    assert entry.title == TRICKY
    assert html.unescape(entry.summary) == "Notes: " + TRICKY
    assert entry.enclosures[0]["length"] == str(mp3_bytes)
    assert entry.itunes_duration == f"0:00:{round(timeline['duration']):02d}"
    assert entry.podcast_chapters["url"].endswith("/episodes/7/chapters.json")
    # Apple's spec says true/false; feedparser knows only yes/clean and gives None (not
    # explicit) for "false", podcastparser reads False.
    assert not parsed.feed.itunes_explicit
    assert parsed.feed.tags[0]["term"] == "Technology"
    assert parsed.feed.author_detail["email"] == "owner@example.org"
    assert report.episodes == 1


def test_every_feed_url_is_a_published_file(build, tmp_path, scripts) -> None:
    show = make_show(tmp_path)
    publish(show, scripts(tmp_path, 7, "One"), build)
    published = tmp_path / "published"
    parsed = feedparser.parse((published / "feed.xml").read_bytes())
    urls = [parsed.entries[0].enclosures[0]["href"], parsed.entries[0].podcast_chapters["url"]]
    urls += [parsed.feed.image["href"]]
    for link in urls:
        assert (published / link.removeprefix(show.base_url + "/")).is_file(), link
    assert site_files(published) == site_files(show.site)
    assert (published / "episodes/7/test-show-007.mp3").read_bytes() == (
        build / "episode.mp3"
    ).read_bytes()


def test_pages_escape_what_they_show(build, tmp_path, scripts) -> None:
    show = make_show(tmp_path)
    publish(show, scripts(tmp_path, 7, TRICKY), build)
    page = (show.site / "episodes/7/index.html").read_text(encoding="utf-8")
    assert "Bits &amp; &lt;Bytes&gt;: &#34;quoted&#34;, café — naïve €5" in page
    assert "<Bytes>" not in page
    index = (show.site / "index.html").read_text(encoding="utf-8")
    assert 'href="episodes/7/index.html"' in index and "&lt;Bytes&gt;" in index


def test_republish_skips_unchanged_files_and_keeps_earlier_episodes(
    build, tmp_path, scripts
) -> None:
    show = make_show(tmp_path)
    first = publish(show, scripts(tmp_path, 7, "Seven"), build)
    assert first.skipped == [] and first.uploaded[-1] == "feed.xml"
    again = publish(show, scripts(tmp_path, 7, "Seven"), build)
    assert again.uploaded == [] and len(again.skipped) == len(first.uploaded)
    # A new episode: the catalogue on the target keeps the first, even from a fresh site.
    shutil.rmtree(show.site)
    later = publish(show, scripts(tmp_path, 8, "Eight"), build)
    assert later.episodes == 2 and "cover.jpg" in later.skipped
    feed = feedparser.parse((tmp_path / "published" / "feed.xml").read_bytes())
    assert [e.title for e in feed.entries] == ["Eight", "Seven"]
    guids = [e.id for e in feed.entries]
    assert len(set(guids)) == 2
    # The guid of an episode never changes, even when it is published again with a new title.
    publish(show, scripts(tmp_path, 7, "Seven, revised"), build)
    feed = feedparser.parse((tmp_path / "published" / "feed.xml").read_bytes())
    assert {e.title: e.id for e in feed.entries}["Seven, revised"] == guids[1]


def test_an_interrupted_publish_never_exposes_a_missing_or_partial_file(
    build, tmp_path, scripts, monkeypatch
) -> None:
    show = make_show(tmp_path)
    published = tmp_path / "published"
    publish(show, scripts(tmp_path, 7, "Seven"), build)
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
    with pytest.raises(ConnectionError):
        publish(show, scripts(tmp_path, 8, "Eight"), build)
    feed = feedparser.parse((published / "feed.xml").read_bytes())
    assert [e.title for e in feed.entries] == ["Seven"]  # still the old, complete feed
    for entry in feed.entries:
        path = published / entry.enclosures[0]["href"].removeprefix(show.base_url + "/")
        assert path.stat().st_size == int(entry.enclosures[0]["length"])
    monkeypatch.setattr(LocalRemote, "put", real_put)
    for part in published.rglob("*.part"):
        part.unlink()  # what a stray temporary looks like; the next run ignores it
    done = publish(show, scripts(tmp_path, 8, "Eight"), build)
    assert done.uploaded[-1] == "feed.xml"
    feed = feedparser.parse((published / "feed.xml").read_bytes())
    assert [e.title for e in feed.entries] == ["Eight", "Seven"]
    for entry in feed.entries:
        path = published / entry.enclosures[0]["href"].removeprefix(show.base_url + "/")
        assert path.read_bytes() == (build / "episode.mp3").read_bytes()


def test_publish_over_sftp_to_a_real_sshd(build, tmp_path, scripts, monkeypatch) -> None:
    show = make_show(tmp_path)
    with sshd(tmp_path / "ssh") as server:
        monkeypatch.setenv("SSH_AUTH_SOCK", server["SSH_AUTH_SOCK"])
        remote = tmp_path / "remote" / "www"
        target = Target(
            "sftp",
            {
                "host": server["host"],
                "port": int(server["port"]),
                "user": server["user"],
                "path": str(remote),
                "known_hosts": server["known_hosts"],
            },
        )
        report = publish(show, scripts(tmp_path, 7, "Over SFTP"), build, target)
        assert report.uploaded[-1] == "feed.xml"
        assert site_files(remote) == site_files(show.site)  # every byte, read back from disk
        assert publish(show, scripts(tmp_path, 7, "Over SFTP"), build, target).uploaded == []
        # An unknown host key is refused, never trusted silently.
        Path(server["known_hosts"]).write_text("", "utf-8")
        with pytest.raises(PipelineError, match="host key must be in"):
            publish(show, scripts(tmp_path, 7, "Over SFTP"), build, target)


def test_publish_to_a_real_s3_server(build, tmp_path, scripts, monkeypatch) -> None:
    import boto3

    show = make_show(tmp_path)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "S3RVER")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "S3RVER")
    with s3rver(tmp_path / "s3", "podcast") as endpoint:
        target = Target("s3", {"endpoint": endpoint, "bucket": "podcast", "prefix": "show"})
        report = publish(show, scripts(tmp_path, 7, "Over S3"), build, target)
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
        assert publish(show, scripts(tmp_path, 7, "Over S3"), build, target).uploaded == []


def test_s3_needs_credentials_from_the_environment(build, tmp_path, scripts, monkeypatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    show = make_show(tmp_path)
    target = Target("s3", {"endpoint": "http://127.0.0.1:9", "bucket": "b"})
    with pytest.raises(PipelineError, match="no S3 credentials in the environment"):
        publish(show, scripts(tmp_path, 7, "x"), build, target)


def test_served_site_feed_range_requests_and_the_episode_page(build, tmp_path, scripts) -> None:
    from playwright.sync_api import sync_playwright

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    show = make_show(tmp_path, base_url=base)
    publish(show, scripts(tmp_path, 7, "Served"), build)
    timeline = json.loads((build / "episode.timeline.json").read_text(encoding="utf-8"))
    with serving(show.site, port) as url:
        with urllib.request.urlopen(url + "feed.xml") as response:
            parsed = podcastparser.parse(url + "feed.xml", response)
        enclosure = parsed["episodes"][0]["enclosures"][0]
        request = urllib.request.Request(enclosure["url"], headers={"Range": "bytes=100-1123"})
        with urllib.request.urlopen(request) as response:
            assert response.status == 206
            assert response.headers["Content-Range"].startswith("bytes 100-1123/")
            assert response.read() == (build / "episode.mp3").read_bytes()[100:1124]
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
            page = browser.new_page()
            page.goto(url + "episodes/7/index.html")
            page.wait_for_function("document.getElementById('player').readyState >= 1")
            duration = page.evaluate("document.getElementById('player').duration")
            assert duration == pytest.approx(timeline["duration"], abs=0.2)
            chapter = timeline["chapters"][1]
            page.get_by_role("button", name=chapter["title"]).click()
            page.wait_for_function(
                f"Math.abs(document.getElementById('player').currentTime - {chapter['start']})"
                " < 0.5"
            )
            cues = page.locator(".cue").count()
            assert cues == len(json.loads((build / "transcript.json").read_text())["segments"])
            browser.close()
