"""The podcast's web pages: an index of episodes and a page per episode.

Plain HTML, CSS and a little JavaScript, no build step. Jinja2 writes the pages with
autoescaping on, so titles and descriptions come out escaped; the transcript travels to the
page as JSON through Jinja2's ``tojson``.
"""

from __future__ import annotations

from typing import Any

import jinja2

from pipeline.catalogue import EpisodeEntry
from pipeline.clock import clock
from pipeline.feed import url
from pipeline.show import Show

CSS = """\
body { font: 17px/1.5 system-ui, sans-serif; max-width: 46rem; margin: 2rem auto; padding: 0 1rem;
       color: #1b1f2a; background: #fafafa; }
header { display: flex; gap: 1rem; align-items: center; }
header img { width: 7rem; height: 7rem; border-radius: .5rem; }
audio { width: 100%; margin: 1rem 0; }
.chapters button { background: none; border: 0; padding: .2rem 0; font: inherit; color: #1f5fa8;
                   cursor: pointer; text-align: left; }
.chapters time, .cue time { color: #777; font-variant-numeric: tabular-nums; margin-right: .6rem; }
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
&middot; with {{ episode.hosts | join(" and ") }}</p>
<audio id="player" controls preload="metadata" src="{{ mp3 }}"></audio>
<p><a href="{{ mp3 }}" download>Download the MP3</a></p>
<h3>Chapters</h3>
<ol class="chapters">
{% for chapter in chapters %}
<li><button type="button" data-seek="{{ chapter.startTime }}">
<time>{{ chapter.clock }}</time>{{ chapter.title }}</button></li>
{% endfor %}
</ol>
<h3>Show notes</h3>
<p>{{ episode.description }}</p>
{% if sources %}
<h4>Sources</h4>
<ul>{% for source in sources %}<li>{{ source }}</li>{% endfor %}</ul>
{% endif %}
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

_ENV = jinja2.Environment(
    loader=jinja2.DictLoader({"page": _PAGE, "index": _INDEX, "episode": _EPISODE}),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
)


def index_html(show: Show, episodes: list[EpisodeEntry]) -> str:
    """The site's front page."""
    listed = sorted(episodes, key=lambda e: e.episode, reverse=True)
    return _ENV.get_template("index").render(
        show=show, episodes=listed, root="", feed=url(show, "feed.xml")
    )


def episode_html(
    show: Show,
    entry: EpisodeEntry,
    chapters: dict[str, Any],
    transcript: dict[str, Any],
    sources: list[str],
) -> str:
    """An episode's page; its links are relative, so the page works from any host."""
    depth = entry.page.count("/")
    root = "../" * depth
    return _ENV.get_template("episode").render(
        show=show,
        episode=entry,
        mp3=root + entry.mp3,
        transcripts={kind: root + path for kind, path in entry.transcripts.items()},
        chapters=[{**c, "clock": clock(c["startTime"])} for c in chapters["chapters"]],
        segments=[{**s, "clock": clock(s["startTime"])} for s in transcript["segments"]],
        sources=sources,
        root=root,
        feed=url(show, "feed.xml"),
    )
