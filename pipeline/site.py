"""The podcast's web pages: an index of episodes and a page per episode.

Plain HTML, CSS and a little JavaScript, no build step. Jinja2 writes the pages with
autoescaping on, so titles and descriptions come out escaped; the transcript travels to the
page as JSON through Jinja2's ``tojson``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jinja2
import markupsafe

from pipeline.catalogue import EpisodeEntry
from pipeline.clock import clock, spoken_clock
from pipeline.feed import url
from pipeline.outputs import SourceLink
from pipeline.show import Show

# Long words and URLs wrap, so a 390 px phone never scrolls sideways; every text colour
# meets WCAG AA (4.5:1) on the background: #5a5f6b on #fafafa is 6.1:1 (#777 was 4.3:1).
CSS = """\
body { font: 17px/1.5 system-ui, sans-serif; max-width: 46rem; margin: 2rem auto; padding: 0 1rem;
       color: #1b1f2a; background: #fafafa; overflow-wrap: anywhere; }
header { display: flex; gap: 1rem; align-items: center; }
header img { width: 7rem; height: 7rem; border-radius: .5rem; flex: none; }
img, video { max-width: 100%; height: auto; }
audio { width: 100%; margin: 1rem 0; }
a { color: #1f5fa8; }
.chapters button { background: none; border: 0; padding: .2rem 0; font: inherit; color: #1f5fa8;
                   cursor: pointer; text-align: left; vertical-align: top; }
.chapters time, .cue time { color: #5a5f6b; font-variant-numeric: tabular-nums;
                            margin-right: .6rem; }
.notes-chapters { display: none; }  /* the page has the chapters as buttons, above */
.disclosure { border-left: 3px solid #1f5fa8; padding-left: .8rem; color: #333a47; }
.transcript { max-height: 24rem; overflow-y: auto; border-top: 1px solid #ddd; }
.cue { margin: .4rem 0; padding: .1rem .4rem; border-radius: .3rem; }
.cue.now { background: #fff1c9; }
.speaker { font-weight: 600; margin-right: .4rem; }
a.subscribe { display: inline-block; padding: .3rem .8rem; border-radius: .4rem;
              background: #1f5fa8; color: white; text-decoration: none; }
"""

PLAYER_JS = """\
// Chapters seek the player; the transcript follows it.
const player = document.getElementById("player");
for (const button of document.querySelectorAll("[data-seek]")) {
  button.addEventListener("click", () => {
    player.currentTime = Number(button.dataset.seek);
    player.play().catch(() => {});
  });
}
const cues = [...document.querySelectorAll(".cue")];
let current = null;
player.addEventListener("timeupdate", () => {
  const t = player.currentTime;
  const cue = cues.find((c) => t >= Number(c.dataset.start) && t < Number(c.dataset.end));
  if (cue !== current) {
    if (current) current.classList.remove("now");
    if (cue) { cue.classList.add("now"); cue.scrollIntoView({block: "nearest"}); }
    current = cue || null;
  }
});
"""

_PAGE = """\
<!doctype html>
<html lang="{{ show.language }}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{% block title %}{% endblock %}</title>
<meta name="description" content="{{ summary }}">
<meta property="og:type" content="website">
<meta property="og:site_name" content="{{ show.title }}">
<meta property="og:title" content="{{ self.title() }}">
<meta property="og:description" content="{{ summary }}">
<meta property="og:image" content="{{ image }}">
<meta property="og:url" content="{{ page_url }}">
<meta name="twitter:card" content="summary">
<link rel="icon" type="image/png" sizes="64x64" href="{{ root }}favicon.png">
<link rel="apple-touch-icon" href="{{ root }}apple-touch-icon.png">
<link rel="alternate" type="application/rss+xml" title="{{ show.title }}" href="{{ feed }}">
<link rel="stylesheet" href="{{ root }}site.css">
</head>
<body>
<header>
<a href="{{ root }}index.html"><img src="{{ root }}cover.jpg" alt="{{ show.title }} cover art"></a>
<div><h1>{{ show.title }}</h1>
<a class="subscribe" href="{{ feed }}">Subscribe (RSS)</a></div>
</header>
{% block body %}{% endblock %}
</body>
</html>
"""

_INDEX = """\
{% extends "page" %}
{% block title %}{{ show.title }}{% endblock %}
{% block body %}
<p>{{ show.description }}</p>
<h2>Episodes</h2>
<ol reversed>
{% for episode in episodes %}
<li><a href="{{ episode.page }}">Episode {{ episode.episode }}: {{ episode.title }}</a>
<small>({{ episode.date }}, {{ episode.minutes }} min)</small></li>
{% endfor %}
</ol>
{% endblock %}
"""

_EPISODE = """\
{% extends "page" %}
{% block title %}{{ episode.title }} | {{ show.title }}{% endblock %}
{% block body %}
<article>
<h2>Episode {{ episode.episode }}: {{ episode.title }}</h2>
<p><time datetime="{{ episode.date }}">{{ episode.date }}</time> &middot; {{ episode.minutes }} min
{% if episode.hosts %}&middot; with {{ episode.hosts | join(" and ") }}
(synthetic voices){% endif %}</p>
<audio id="player" controls preload="metadata">
{% for rendition in renditions | sort(attribute="bitrate") %}<source src="{{ rendition.src }}"
type="{{ rendition.type }}">
{% endfor %}</audio>
<p>Download: {% for rendition in renditions %}{% if not loop.first %} &middot; {% endif %}
<a href="{{ rendition.src }}" download>{{ rendition.title }}</a>{% endfor %}</p>
{% if audiogram %}<p><a href="{{ audiogram }}">Watch a {{ clip_seconds }}-second clip (video with
captions)</a></p>
{% endif %}
<h3>Chapters</h3>
<ol class="chapters">
{% for chapter in chapters %}
<li><button type="button" data-seek="{{ chapter.startTime }}"
aria-label="Play from {{ chapter.spoken }}: {{ chapter.title }}">
<time aria-hidden="true">{{ chapter.clock }}</time>{{ chapter.title }}</button></li>
{% endfor %}
</ol>
<h3>Show notes</h3>
{{ notes }}
<h3>Transcript</h3>
<p><a href="{{ transcripts.vtt }}">WebVTT</a> &middot; <a href="{{ transcripts.srt }}">SRT</a>
&middot; <a href="{{ transcripts.json }}">JSON</a></p>
<div class="transcript">
{% for segment in segments %}
<p class="cue" data-start="{{ segment.startTime }}" data-end="{{ segment.endTime }}">
<time>{{ segment.clock }}</time><span class="speaker">{{ segment.speaker }}</span>
{{ segment.body }}</p>
{% endfor %}
</div>
</article>
<script src="{{ root }}player.js"></script>
{% endblock %}
"""

_NOTES = """\
<p>{{ description }}</p>
<p class="disclosure">{{ disclosure }}</p>
<div class="notes-chapters"><h4>Chapters</h4>
<ul>
{% for chapter in chapters %}<li>{{ chapter.clock }} {{ chapter.title }}</li>
{% endfor %}</ul></div>
{% if sources %}<h4>Sources</h4>
<p>Every figure in this episode is checked against these:</p>
<ul>
{% for source in sources %}<li><a href="{{ source.url }}">{{ source.title }}</a></li>
{% endfor %}</ul>
{% endif %}"""

_ENV = jinja2.Environment(
    loader=jinja2.DictLoader(
        {"page": _PAGE, "index": _INDEX, "episode": _EPISODE, "notes": _NOTES}
    ),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
)


def index_html(show: Show, episodes: list[EpisodeEntry]) -> str:
    """The site's front page."""
    listed = sorted(episodes, key=lambda e: e.episode, reverse=True)
    return _ENV.get_template("index").render(
        show=show,
        episodes=listed,
        root="",
        feed=show.feed_url,
        summary=show.description,
        image=url(show, "cover.jpg"),
        page_url=url(show, "index.html"),
    )


def notes_html(
    description: str, disclosure: str, chapters: dict[str, Any], sources: Sequence[SourceLink]
) -> str:
    """An episode's show notes as HTML, for its page and the feed: the description, the
    AI disclosure, chapter times and every public source as a link."""
    return _ENV.get_template("notes").render(
        description=description,
        disclosure=disclosure,
        chapters=[{**c, "clock": clock(c["startTime"])} for c in chapters["chapters"]],
        sources=sources,
    )


def episode_html(
    show: Show,
    entry: EpisodeEntry,
    chapters: dict[str, Any],
    transcript: dict[str, Any],
) -> str:
    """An episode's page; its links are relative, so the page works from any host."""
    depth = entry.page.count("/")
    root = "../" * depth
    return _ENV.get_template("episode").render(
        show=show,
        episode=entry,
        renditions=[
            {"src": root + r.path, "type": r.type, "title": r.title, "bitrate": r.bitrate}
            for r in entry.renditions
        ]
        or [{"src": root + entry.mp3, "type": "audio/mpeg", "title": "MP3", "bitrate": 0}],
        audiogram=root + entry.audiogram if entry.audiogram else None,
        clip_seconds=round(entry.soundbites[0].duration) if entry.soundbites else 0,
        transcripts={kind: root + path for kind, path in entry.transcripts.items()},
        chapters=[
            {**c, "clock": clock(c["startTime"]), "spoken": spoken_clock(c["startTime"])}
            for c in chapters["chapters"]
        ],
        segments=[{**s, "clock": clock(s["startTime"])} for s in transcript["segments"]],
        notes=markupsafe.Markup(entry.notes),  # written by notes_html, escaped there
        root=root,
        feed=show.feed_url,
        summary=entry.description,
        image=url(show, entry.artwork or "cover.jpg"),
        page_url=url(show, entry.page),
    )
