"""Stage 1, parse: a marked-up Markdown script into plain dataclasses.

The format (documented in the README):

* YAML front matter between ``---`` lines: ``podcast``, ``episode``, ``title``,
  ``description`` and ``hosts`` (speaker id -> ``name`` and ``voice`` file); optionally
  ``date`` (release date), ``facts`` (the fact sheet every figure must match), ``music``
  (the music library cues play from) and ``cover`` (cover art).
* ``## Heading`` starts a chapter. Before the first chapter only an optional
  ``# Title`` line and comments may stand.
* A turn is a paragraph starting ``SPEAKER:`` (or ``**SPEAKER:**``); it runs to the next
  blank line, heading, cue line or line starting with another host's label.
  ``SPEAKER (overlap):`` (or ``(overlap 0.5s)``) marks a short interjection that starts
  under the end of the turn before it.
* Cues stand on their own line: ``[pause 1.5s]`` (or ``500ms``) and ``[music: NAME]``.
* ``<!-- ... -->`` comments are production notes: never spoken, may span lines.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.errors import PipelineError
from pipeline.yamlfile import YamlDoc, parse_yaml

SPEAKER_ID = re.compile(r"[A-Z][A-Z0-9_]*")
# `ALEX: text`, `**ALEX:** text` and `**ALEX**: text`, each with an optional direction
# in brackets before the colon: `MAYA (overlap): Right.`
_LABEL = re.compile(
    r"^\s*(?:\*\*(?P<b>[A-Z][A-Z0-9_]*)(?:\s*\((?P<bd>[^()]*)\))?(?::\*\*|\*\*:)"
    r"|(?P<p>[A-Z][A-Z0-9_]*)(?:\s*\((?P<pd>[^()]*)\))?:)\s*"
)
_OVERLAP = re.compile(r"^overlap\b(?P<rest>.*)$")
_HEADING = re.compile(r"^(?P<hashes>#{1,6})(?:\s+(?P<title>.*?))?\s*#*\s*$")
# A cue is a whole line in single brackets; `[[...]]` is Piper phoneme input, i.e. text.
_CUE = re.compile(r"^\s*\[(?!\[)(?P<body>[^\[\]]*)\]\s*$")
_PAUSE = re.compile(r"^pause\b(?P<rest>.*)$")
_DURATION = re.compile(r"^\s*(?P<value>\d+(?:\.\d+)?|\.\d+)\s*(?P<unit>ms|s)\s*$")
_MUSIC = re.compile(r"^music\s*:\s*(?P<name>.*)$")
_SOUNDBITE = re.compile(r"^soundbite(?:\s+(?P<end>end))?$")
_MUSIC_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_MARK = "\x00"  # stands where a comment was

MAX_PAUSE_S = 60.0
MAX_TURN_WORDS = 1_000  # about seven minutes of one voice: past this, split the turn
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # tab and newline are text
MAX_OVERLAP_S = 3.0
MAX_OVERLAP_WORDS = 6  # an interjection ("Right.", "Oh, that's huge."), not a turn
REQUIRED_KEYS = ("podcast", "episode", "title", "description", "hosts")
FRONT_MATTER_KEYS = (
    *REQUIRED_KEYS,
    *("date", "season", "facts", "lexicon", "music", "cover", "artwork", "disclosure"),
)
HOST_KEYS = ("name", "voice", "pan")


@dataclass(frozen=True)
class Host:
    """One of the show's hosts, as declared in the front matter."""

    id: str
    """Speaker id used as the turn label, e.g. ``ALEX``."""

    name: str
    """Display name for transcripts and show notes."""

    voice: Path
    """Voice file, resolved against the script's directory."""

    line: int
    """Front-matter line of the ``voice`` entry (where voice errors point)."""

    pan: float = 0.0
    """Place in the stereo mix, -1 (left) to 1 (right); 0 is the centre."""


@dataclass(frozen=True)
class EpisodeMeta:
    """The episode's front matter."""

    podcast: str
    """Podcast (show) name."""

    episode: int
    """Episode number."""

    title: str
    """Episode title."""

    description: str
    """Episode description for podcast apps."""

    hosts: dict[str, Host]
    """Hosts by speaker id, in the order the front matter lists them."""

    date: datetime.date | None = None
    """Release date, for the tags and the feed."""

    facts: Path | None = None
    """Fact sheet that every figure in the turns must match (``check`` enforces it)."""

    lexicon: Path | None = None
    """Pronunciation lexicon for every voice (``voices/lexicon.yaml``)."""

    music: Path | None = None
    """Music library (``music.yaml``) that ``[music: NAME]`` cues play from."""

    cover: Path | None = None
    """Cover art (a square JPEG or PNG) embedded in the MP3."""

    artwork: Path | None = None
    """The episode's own artwork for podcast apps (``itunes:image`` of the item)."""

    season: int | None = None
    """Season number, for the feed."""

    disclosure: str = ""
    """How the episode was made, for listeners, beyond its synthetic voices (which the
    package stage states itself), e.g. how the script was written."""

    lines: dict[str, int] = field(default_factory=dict)
    """Front-matter line of each field, for errors about the files they name."""

    @property
    def pans(self) -> dict[str, float]:
        """Where each host sits in the stereo mix, by speaker id."""
        return {speaker: host.pan for speaker, host in self.hosts.items()}


@dataclass(frozen=True)
class Turn:
    """One host speaking one paragraph."""

    speaker: str
    """Speaker id (a key of ``EpisodeMeta.hosts``)."""

    text: str
    """Display text as written (comments removed, whitespace collapsed)."""

    line: int
    """Line of the speaker label in the script."""

    overlap: float | None = None
    """Seconds it starts before the turn before it ends (``(overlap)``); 0.0 means the
    default amount (``Timing.overlap``); None: it starts after a gap, as usual."""


@dataclass(frozen=True)
class Pause:
    """An exact silence written as ``[pause 1.5s]``."""

    seconds: float
    """Length of the silence."""

    line: int
    """Line of the cue."""


@dataclass(frozen=True)
class SoundbiteMark:
    """``[soundbite]`` before the turn a soundbite starts with, ``[soundbite end]`` after
    the turn it ends with."""

    start: bool
    """Whether it opens the soundbite (else it closes it)."""

    line: int
    """Line of the cue."""


@dataclass(frozen=True)
class MusicCue:
    """A ``[music: NAME]`` cue: where a piece of music plays."""

    name: str
    """Name of the music asset, e.g. ``intro``."""

    line: int
    """Line of the cue."""


Cue = Pause | MusicCue | SoundbiteMark
Item = Turn | Pause | MusicCue | SoundbiteMark


@dataclass
class Chapter:
    """A ``## Heading`` and the turns and cues under it, in order."""

    title: str
    """Heading text: the chapter title shown in podcast apps."""

    line: int
    """Line of the heading."""

    items: list[Item] = field(default_factory=list)
    """Turns and cues in script order."""

    @property
    def turns(self) -> list[Turn]:
        """Only the turns of this chapter."""
        return [item for item in self.items if isinstance(item, Turn)]


@dataclass
class Script:
    """A parsed episode script."""

    path: Path
    """The script file."""

    meta: EpisodeMeta
    """Front matter."""

    chapters: list[Chapter]
    """Chapters in order; every turn and cue belongs to one."""

    digest: str = ""
    """SHA-256 of the script file's bytes: what a build records it was made from."""

    size: int = 0
    """The script file's size in bytes."""

    def turns(self) -> Iterator[Turn]:
        """Every turn in order."""
        for chapter in self.chapters:
            yield from chapter.turns


def parse_script(path: Path | str) -> Script:
    """Read and parse the script at ``path``; raise :class:`PipelineError` on bad input."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise PipelineError("script not found", path=path, hint="check the path") from None
    except OSError as exc:
        raise PipelineError(f"cannot read script: {exc.strerror}", path=path) from exc
    script = parse_text(_decode(raw, path), path)
    script.digest, script.size = hashlib.sha256(raw).hexdigest(), len(raw)
    return script


def _decode(raw: bytes, path: Path) -> str:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        offset = exc.start + (3 if raw.startswith(b"\xef\xbb\xbf") else 0)
        line = raw[:offset].count(b"\n") + 1
        raise PipelineError(
            f"the script is not UTF-8 (byte 0x{raw[offset]:02x} cannot be decoded)",
            path=path,
            line=line,
            hint="save the file as UTF-8 in your editor",
        ) from None
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def parse_text(text: str, path: Path) -> Script:
    """Parse script ``text`` read from ``path`` (used for messages and relative paths)."""
    control = _CONTROL.search(text)
    if control:
        raise PipelineError(
            f"the script holds a control character (U+{ord(control.group()):04X}), which is "
            "not text",
            path=path,
            line=text.count("\n", 0, control.start()) + 1,
            hint="delete it: a stray NUL or escape byte, often pasted from another program",
        )
    lines = text.split("\n")
    front, body_start = _split_front_matter(lines, path)
    meta = _parse_meta(front, path)
    body = _strip_comments("\n".join(lines[body_start - 1 :]), path, body_start)
    chapters = _parse_body(body, body_start, meta, path)
    return Script(path=path, meta=meta, chapters=chapters)


def _split_front_matter(lines: list[str], path: Path) -> tuple[YamlDoc, int]:
    """The front matter as YAML, and the 1-based line where the body starts."""
    if not lines or lines[0].strip() != "---":
        raise PipelineError(
            "the script must start with YAML front matter",
            path=path,
            line=1,
            hint="begin the file with a '---' line, the episode's fields, then another '---' line",
        )
    for index in range(1, len(lines)):
        if lines[index].strip() in ("---", "..."):
            doc = parse_yaml("\n".join(lines[1:index]), path, start_line=2)
            return doc, index + 2
    raise PipelineError(
        "the front matter opened here is never closed",
        path=path,
        line=1,
        hint="add a '---' line after the last front-matter field",
    )


def _parse_meta(doc: YamlDoc, path: Path) -> EpisodeMeta:
    data = doc.data
    if not isinstance(data, dict):
        raise doc.error("the front matter must be a mapping of fields (key: value)")
    doc.check_keys(data, FRONT_MATTER_KEYS, what="front-matter field")
    for key in REQUIRED_KEYS:
        if key not in data:
            raise doc.error(f"the front matter has no {key!r} field", hint=_META_HINT)

    def text_field(key: str) -> str:
        value = data[key]
        if not isinstance(value, str) or not value.strip():
            raise doc.error(f"{key!r} must be non-empty text", key)
        return value.strip()

    episode = data["episode"]
    if isinstance(episode, bool) or not isinstance(episode, int) or episode < 0:
        raise doc.error("'episode' must be a whole number, e.g. 'episode: 1'", "episode")

    def path_field(key: str, example: str) -> Path | None:
        value = data.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            raise doc.error(f"{key!r} must be a path, e.g. {example}", key)
        return Path(os.path.normpath(path.parent / value.strip()))

    date = data.get("date")
    if date is not None and not isinstance(date, datetime.date):
        raise doc.error("'date' must be a date written YYYY-MM-DD, e.g. 2026-11-26", "date")
    season = data.get("season")
    if season is not None and (
        isinstance(season, bool) or not isinstance(season, int) or season < 1
    ):
        raise doc.error("'season' must be a whole number from 1, e.g. 'season: 1'", "season")
    return EpisodeMeta(
        lines={str(key): doc.line_of(str(key)) for key in data},
        date=date,
        season=season,
        artwork=path_field("artwork", "../assets/episode-1.jpg"),
        disclosure=text_field("disclosure") if "disclosure" in data else "",
        facts=path_field("facts", "facts.yaml"),
        lexicon=path_field("lexicon", "../voices/lexicon.yaml"),
        music=path_field("music", "../assets/music/music.yaml"),
        cover=path_field("cover", "../assets/cover.jpg"),
        podcast=text_field("podcast"),
        episode=episode,
        title=text_field("title"),
        description=text_field("description"),
        hosts=_parse_hosts(doc, path),
    )


_META_HINT = "required fields: " + ", ".join(REQUIRED_KEYS)


def _parse_hosts(doc: YamlDoc, path: Path) -> dict[str, Host]:
    hosts = doc.data["hosts"]
    if not isinstance(hosts, dict) or not hosts:
        raise doc.error(
            "'hosts' must map speaker ids to a name and a voice file",
            "hosts",
            hint="e.g. 'hosts: {ALEX: {name: Alex, voice: ../voices/joe.yaml}}'",
        )
    result: dict[str, Host] = {}
    for host_id, entry in hosts.items():
        key = str(host_id)
        if not SPEAKER_ID.fullmatch(key):
            raise doc.error(
                f"speaker id {key!r} must be upper-case letters, digits or '_'",
                "hosts",
                key,
                hint="e.g. ALEX or HOST_2",
            )
        if not isinstance(entry, dict):
            raise doc.error(f"host {key} needs 'name' and 'voice'", "hosts", key)
        doc.check_keys(entry, HOST_KEYS, "hosts", key, of=f"host {key}")
        for field_name in ("name", "voice"):
            value = entry.get(field_name)
            if not isinstance(value, str) or not value.strip():
                raise doc.error(
                    f"host {key} needs a non-empty {field_name!r}", "hosts", key, field_name
                )
        pan = entry.get("pan", 0.0)
        if isinstance(pan, bool) or not isinstance(pan, int | float) or not -1 <= pan <= 1:
            raise doc.error(
                f"host {key}'s 'pan' must be a number from -1 (left) to 1 (right)",
                "hosts",
                key,
                "pan",
            )
        result[key] = Host(
            id=key,
            name=entry["name"].strip(),
            voice=Path(os.path.normpath(path.parent / entry["voice"].strip())),
            line=doc.line_of("hosts", key, "voice"),
            pan=float(pan),
        )
    return result


def _strip_comments(body: str, path: Path, first_line: int) -> str:
    """Replace ``<!-- -->`` comments by marks, keeping their newlines so line numbers hold.

    Every line a comment touched keeps a mark, so a line that held only a comment can be
    skipped without ending the paragraph around it.
    """
    stripped = _COMMENT.sub(lambda m: _MARK + ("\n" + _MARK) * m.group(0).count("\n"), body)
    unclosed = stripped.find("<!--")
    if unclosed >= 0:
        raise PipelineError(
            "a comment opened here is never closed",
            path=path,
            line=first_line + stripped.count("\n", 0, unclosed),
            hint="close it with '-->'",
        )
    return stripped


def _parse_body(body: str, first_line: int, meta: EpisodeMeta, path: Path) -> list[Chapter]:
    parser = _Body(meta, path)
    for number, marked in enumerate(body.split("\n"), start=first_line):
        line = marked.replace(_MARK, "")
        if not line.strip() and _MARK in marked:
            continue  # only a comment stood here: not a paragraph break
        if not line.strip():
            parser.close_turn()
        elif heading := _HEADING.match(line):
            parser.heading(heading, number)
        elif cue := _CUE.match(line):
            parser.cue(cue.group("body").strip(), number)
        elif (label := _LABEL.match(line)) and (label.group("b") or label.group("p")):
            parser.label(label, line, number)
        elif parser.speaker is not None:
            parser.turn_lines.append(line)
        else:
            raise parser.error(
                "text that is not part of a turn",
                number,
                "start the paragraph with a host's label (e.g. 'ALEX:'), "
                "or wrap a production note in <!-- -->",
            )
    return parser.finish(first_line)


@dataclass
class _Body:
    """The script body as it is read line by line: its chapters and the open turn."""

    meta: EpisodeMeta
    path: Path
    chapters: list[Chapter] = field(default_factory=list)
    speaker: str | None = None  # the open turn's speaker, if a turn is open
    turn_line: int = 0
    turn_lines: list[str] = field(default_factory=list)
    overlap: float | None = None
    seen_title: bool = False

    def error(self, message: str, line: int, hint: str | None = None) -> PipelineError:
        return PipelineError(message, path=self.path, line=line, hint=hint)

    def close_turn(self) -> None:
        speaker, line = self.speaker, self.turn_line
        if speaker is None:
            return
        text = " ".join(" ".join(self.turn_lines).split())
        if not text:
            raise self.error(
                f"{speaker}'s turn has no text",
                line,
                "write what the host says after the label, or delete the label",
            )
        words = len(text.split())
        if words > MAX_TURN_WORDS:
            raise self.error(
                f"{speaker}'s turn has {words:,} words, more than {MAX_TURN_WORDS:,}",
                line,
                "split it into several turns (a blank line and the label again)",
            )
        items = self.chapters[-1].items
        if self.overlap is not None:
            _check_overlap(speaker, text, items[-1] if items else None, line, self.path)
        items.append(Turn(speaker=speaker, text=text, line=line, overlap=self.overlap))
        self.speaker = None

    def heading(self, heading: re.Match[str], number: int) -> None:
        self.close_turn()
        level = len(heading.group("hashes"))
        title = (heading.group("title") or "").strip()
        if level == 1 and not self.chapters and not self.seen_title:
            self.seen_title = True  # a document title for readers; the episode title is in meta
            return
        if level != 2:
            raise self.error(
                f"a level-{level} heading is not part of the format",
                number,
                "chapters start with '## Title'; one '# Title' may stand before the first",
            )
        if not title:
            raise self.error("the chapter heading has no title", number, "write '## Title'")
        self.chapters.append(Chapter(title=title, line=number))

    def cue(self, body: str, number: int) -> None:
        self.close_turn()
        if not self.chapters:
            raise self.error("a cue before the first chapter heading", number, _BEFORE_CHAPTER)
        self.chapters[-1].items.append(_parse_cue(body, number, self.path))

    def label(self, label: re.Match[str], line: str, number: int) -> None:
        label_id = label.group("b") or label.group("p")
        if label_id not in self.meta.hosts:
            # Also inside a paragraph: a misspelt label would else be spoken by the host
            # before it.
            rewrap = (
                f"; if the line continues {self.speaker}'s turn, rewrap it so that no line "
                f"starts with '{label_id}:'"
                if self.speaker is not None
                else ""
            )
            raise self.error(
                f"unknown speaker {label_id!r}",
                number,
                f"hosts in the front matter: {', '.join(self.meta.hosts)}; add {label_id} there "
                f"or fix the label{rewrap}",
            )
        self.close_turn()
        if not self.chapters:
            raise self.error("a turn before the first chapter heading", number, _BEFORE_CHAPTER)
        direction = label.group("bd") if label.group("b") else label.group("pd")
        self.overlap = None if direction is None else _parse_direction(direction, number, self.path)
        self.speaker, self.turn_line, self.turn_lines = label_id, number, [line[label.end() :]]

    def finish(self, first_line: int) -> list[Chapter]:
        self.close_turn()
        for chapter in self.chapters:
            if not chapter.items:
                raise self.error(
                    f"chapter {chapter.title!r} is empty",
                    chapter.line,
                    "give it at least one turn or cue, or delete the heading",
                )
        if not self.chapters:
            raise self.error("the script has no chapters", first_line, "add a '## Title' line")
        if not any(chapter.turns for chapter in self.chapters):
            raise self.error(
                "the script has no turns", first_line, "add a line such as 'ALEX: Hello.'"
            )
        self.check_soundbites()
        return self.chapters

    def check_soundbites(self) -> None:
        """Each ``[soundbite]`` is closed by a ``[soundbite end]`` with a turn between."""
        opened: SoundbiteMark | None = None
        turns = 0
        for item in (item for chapter in self.chapters for item in chapter.items):
            if isinstance(item, Turn):
                turns += 1
            elif isinstance(item, SoundbiteMark):
                if item.start and opened is not None:
                    raise self.error(
                        f"a [soundbite] inside the one opened at line {opened.line}",
                        item.line,
                        _SOUNDBITE_HINT,
                    )
                if not item.start and opened is None:
                    raise self.error(
                        "a [soundbite end] with no [soundbite] open", item.line, _SOUNDBITE_HINT
                    )
                if not item.start and turns == 0:
                    raise self.error("a soundbite with no turn in it", item.line, _SOUNDBITE_HINT)
                opened, turns = (item if item.start else None), 0
        if opened is not None:
            raise self.error("this [soundbite] is never closed", opened.line, _SOUNDBITE_HINT)


_SOUNDBITE_HINT = (
    "put [soundbite] on the line before the soundbite's first turn and [soundbite end] "
    "on the line after its last"
)
_BEFORE_CHAPTER = "add a '## Chapter title' line above it: every turn and cue belongs to a chapter"


def _parse_direction(direction: str, line: int, path: Path) -> float:
    """The overlap a label's ``(overlap)`` or ``(overlap 0.5s)`` asks for (0.0: default)."""
    overlap = _OVERLAP.match(direction.strip())
    if overlap is None:
        raise PipelineError(
            f"unknown direction ({direction.strip()}) after the speaker label",
            path=path,
            line=line,
            hint="the one direction is (overlap) or (overlap 0.5s): a short interjection that "
            "starts under the end of the turn before it",
        )
    if not overlap.group("rest").strip():
        return 0.0
    seconds = _duration(
        overlap.group("rest"),
        line,
        path,
        f"overlap duration in ({direction.strip()})",
        "(overlap 0.4s) or (overlap 400ms)",
    )
    if seconds > MAX_OVERLAP_S:
        raise PipelineError(
            f"an overlap of {seconds:g}s is longer than {MAX_OVERLAP_S:g}s",
            path=path,
            line=line,
            hint="an interjection starts a moment before the other host stops, e.g. (overlap 0.4s)",
        )
    return seconds


def _check_overlap(speaker: str, text: str, before: Item | None, line: int, path: Path) -> None:
    if not isinstance(before, Turn) or before.speaker == speaker:
        raise PipelineError(
            f"{speaker}'s overlapping turn does not follow another host's turn",
            path=path,
            line=line,
            hint="an (overlap) turn starts under the end of the other host's turn just before "
            "it, in the same chapter, with no cue between",
        )
    if len(text.split()) > MAX_OVERLAP_WORDS:
        raise PipelineError(
            f"an overlapping turn must be a short interjection ({MAX_OVERLAP_WORDS} words at "
            f"most); this one has {len(text.split())}",
            path=path,
            line=line,
            hint="shorten it, or remove (overlap) so the host waits for a gap",
        )


def _duration(text: str, line: int, path: Path, what: str, example: str) -> float:
    """Seconds of a duration written ``1.5s`` or ``500ms``."""
    duration = _DURATION.match(text)
    seconds = float(duration.group("value")) if duration else 0.0
    if duration is None or seconds <= 0:
        raise PipelineError(
            f"malformed {what}",
            path=path,
            line=line,
            hint=f"write a positive duration with a unit, e.g. {example}",
        )
    return seconds / 1000 if duration.group("unit") == "ms" else seconds


def _parse_cue(body: str, line: int, path: Path) -> Cue:
    if soundbite := _SOUNDBITE.match(body):
        return SoundbiteMark(start=soundbite.group("end") is None, line=line)
    pause = _PAUSE.match(body)
    if pause:
        seconds = _duration(
            pause.group("rest"),
            line,
            path,
            f"pause duration in [{body}]",
            "[pause 1.5s] or [pause 500ms]",
        )
        if seconds > MAX_PAUSE_S:
            raise PipelineError(
                f"pause of {seconds:g}s is longer than {MAX_PAUSE_S:g}s",
                path=path,
                line=line,
                hint="did you mean milliseconds? write e.g. [pause 500ms]",
            )
        return Pause(seconds=seconds, line=line)
    music = _MUSIC.match(body)
    if music:
        name = music.group("name").strip()
        if not _MUSIC_NAME.match(name):
            raise PipelineError(
                f"invalid music name {name!r} in [{body}]",
                path=path,
                line=line,
                hint="use a lower-case name such as [music: intro], [music: sting], [music: outro]",
            )
        return MusicCue(name=name, line=line)
    raise PipelineError(
        f"unknown cue [{body}]",
        path=path,
        line=line,
        hint="known cues: [pause 1.5s], [pause 500ms], [music: NAME], [soundbite], [soundbite end]",
    )
