"""The show's settings (``podcast.yaml``), validated when loaded."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.cover import check_cover
from pipeline.errors import PipelineError
from pipeline.yamlfile import YamlDoc, read_yaml

SHOW_KEYS = (
    "title",
    "description",
    "base_url",
    "language",
    "author",
    "owner",
    "category",
    "explicit",
    "type",
    "cover",
    "site",
    "target",
)
TARGET_KEYS = {
    "local": ("kind", "path"),
    "sftp": ("kind", "host", "port", "user", "path", "known_hosts"),
    "s3": ("kind", "endpoint", "region", "bucket", "prefix"),
}


@dataclass(frozen=True)
class Target:
    """Where the site is delivered."""

    kind: str
    """``local``, ``sftp`` or ``s3``."""

    settings: dict[str, Any] = field(default_factory=dict)
    """The kind's settings (path; host, port, user, path, known_hosts; endpoint, bucket...)."""


@dataclass(frozen=True)
class Show:
    """A podcast's settings."""

    path: Path
    """The ``podcast.yaml`` file."""

    title: str
    """Show title."""

    description: str
    """Show description."""

    base_url: str
    """URL the site is served from, without a trailing slash."""

    language: str
    """Language code, e.g. ``en-us``."""

    author: str
    """``itunes:author``."""

    owner_name: str
    """``itunes:owner`` name."""

    owner_email: str
    """``itunes:owner`` email."""

    category: str
    """Apple Podcasts category, e.g. ``Technology``."""

    explicit: bool
    """Whether the show is explicit."""

    type: str
    """``episodic`` or ``serial``."""

    cover: Path
    """Cover art file."""

    site: Path
    """Folder the site is built in."""

    target: Target
    """Default delivery target."""

    @staticmethod
    def load(path: Path) -> Show:
        """Read and check ``podcast.yaml``."""
        doc = read_yaml(path, "show settings", hint="see podcast.yaml in the repository")
        data = doc.data
        if not isinstance(data, dict):
            raise doc.error("podcast.yaml is a mapping of settings")
        doc.check_keys(data, SHOW_KEYS, what="setting")
        text = {
            key: _text(doc, key)
            for key in ("title", "description", "base_url", "language", "author", "category")
        }
        if not text["base_url"].startswith(("https://", "http://")):
            raise doc.error("'base_url' must be an http(s) URL", "base_url")
        owner = data.get("owner")
        if not isinstance(owner, dict) or not all(
            isinstance(owner.get(k), str) and owner[k].strip() for k in ("name", "email")
        ):
            raise doc.error("'owner' needs a 'name' and an 'email'", "owner")
        explicit = data.get("explicit", False)
        if not isinstance(explicit, bool):
            raise doc.error("'explicit' is true or false", "explicit")
        show_type = data.get("type", "episodic")
        if show_type not in ("episodic", "serial"):
            raise doc.error("'type' is episodic or serial", "type")
        base = path.parent
        cover = base / _text(doc, "cover")
        check_cover(cover, (path, doc.line_of("cover")))
        return Show(
            path=path,
            title=text["title"],
            description=text["description"],
            base_url=text["base_url"].rstrip("/"),
            language=text["language"],
            author=text["author"],
            owner_name=owner["name"].strip(),
            owner_email=owner["email"].strip(),
            category=text["category"],
            explicit=explicit,
            type=show_type,
            cover=cover,
            site=base / str(data.get("site", "build/site")),
            target=parse_target(
                doc, data.get("target", {"kind": "local", "path": "build/published"})
            ),
        )


def parse_target(doc: YamlDoc | None, raw: Any, where: Path | None = None) -> Target:
    """A target from its settings; errors point at podcast.yaml (or say the flag)."""

    def fail(message: str) -> PipelineError:
        if doc is not None:
            return doc.error(message, "target")
        return PipelineError(message, hint="check --target and its settings")

    if not isinstance(raw, dict) or raw.get("kind") not in TARGET_KEYS:
        raise fail(f"'target' needs a kind: {', '.join(TARGET_KEYS)}")
    kind = raw["kind"]
    unknown = set(raw) - set(TARGET_KEYS[kind])
    if unknown:
        raise fail(f"unknown {kind} setting(s): {', '.join(sorted(unknown))}")
    required = {"local": ("path",), "sftp": ("host", "user", "path"), "s3": ("bucket",)}[kind]
    for key in required:
        if not raw.get(key):
            raise fail(f"a {kind} target needs {key!r}")
    settings = {k: v for k, v in raw.items() if k != "kind"}
    if kind == "local":
        base = where or (doc.path.parent if doc else Path.cwd())
        settings["path"] = base / str(settings["path"])
    return Target(kind, settings)


def _text(doc: YamlDoc, key: str) -> str:
    value = doc.data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise doc.error(f"{key!r} must be non-empty text", key)
    return " ".join(value.split()) if key == "description" else value.strip()
