"""The show's settings (``podcast.yaml``), validated when loaded."""

from __future__ import annotations

import dataclasses
import urllib.parse
from dataclasses import dataclass
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
    "locked",
    "license",
    "analytics_prefix",
)
PLACEHOLDER_DOMAINS = ("example.com", "example.org", "example.net", "localhost")
PLACEHOLDER_SUFFIXES = (".example", ".test", ".invalid", ".localhost")
DEFAULT_TARGET = "build/published"


@dataclass(frozen=True)
class LocalTarget:
    """A folder on this machine: a web root, or a folder another tool syncs."""

    path: Path
    """The folder (a relative one is from podcast.yaml's folder)."""


@dataclass(frozen=True)
class SftpTarget:
    """A folder on a server, over SFTP with keys from the SSH agent or ~/.ssh."""

    host: str
    """Server name or address."""

    user: str
    """Login name."""

    path: str
    """The folder on the server."""

    port: int = 22
    """SSH port."""

    known_hosts: str | None = None
    """The known-hosts file that must hold the server's key (default ~/.ssh/known_hosts)."""


@dataclass(frozen=True)
class S3Target:
    """A bucket of an S3-compatible store; credentials come from the environment."""

    bucket: str
    """Bucket name."""

    endpoint: str | None = None
    """The store's URL (default AWS)."""

    region: str = "us-east-1"
    """Region."""

    prefix: str = ""
    """Folder inside the bucket."""


Target = LocalTarget | SftpTarget | S3Target
"""Where the site is delivered."""

TARGET_KINDS: dict[str, type[LocalTarget] | type[SftpTarget] | type[S3Target]] = {
    "local": LocalTarget,
    "sftp": SftpTarget,
    "s3": S3Target,
}


def target_kind(target: Target) -> str:
    """``local``, ``sftp`` or ``s3``."""
    return next(kind for kind, cls in TARGET_KINDS.items() if isinstance(target, cls))


def target_settings(target: Target) -> dict[str, Any]:
    """The settings that ``parse_target`` reads back as ``target``."""
    return {"kind": target_kind(target)} | {
        key: value for key, value in dataclasses.asdict(target).items() if value is not None
    }


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

    owner_name: str | None
    """``itunes:owner`` name (Apple needs it)."""

    owner_email: str | None
    """``itunes:owner`` email (Apple needs it to verify the show)."""

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

    locked: bool = True
    """``podcast:locked``: whether other platforms may not import the feed."""

    license: str = ""
    """``podcast:license``: an SPDX identifier, or a name with ``license_url``."""

    license_url: str | None = None
    """Where a license that is not an SPDX identifier is written out."""

    analytics_prefix: str | None = None
    """A prefix for enclosure URLs (OP3, Podtrac...), e.g. ``https://op3.dev/e/``: the
    enclosure becomes the prefix plus the file's URL without its scheme."""

    @property
    def feed_url(self) -> str:
        """The feed's public URL."""
        return f"{self.base_url}/feed.xml"

    def warnings(self) -> list[str]:
        """What Apple Podcasts or Podcast Index would reject or flag in these settings, each
        led by the settings file's name."""
        found = []
        if _placeholder(urllib.parse.urlsplit(self.base_url).hostname or ""):
            found.append(f"base_url {self.base_url} is a placeholder domain: set the real one")
        if not self.base_url.startswith("https://"):
            found.append(
                f"base_url {self.base_url} is not https: Apple Podcasts fetches the artwork "
                "and audio over HTTPS only"
            )
        if not self.owner_name or not self.owner_email:
            found.append("no owner name and email: Apple Podcasts needs them to verify the show")
        else:
            if "@" not in self.owner_email or _placeholder(self.owner_email.rpartition("@")[2]):
                found.append(
                    f"owner email {self.owner_email} is a placeholder: Apple sends the "
                    "verification code there"
                )
        return [f"{self.path}: {message}" for message in found]

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
        owner = data.get("owner") or {}
        complete = isinstance(owner, dict) and all(
            isinstance(owner.get(k), str) and owner[k].strip() for k in ("name", "email")
        )
        if owner and not complete:
            raise doc.error("'owner' needs a 'name' and an 'email'", "owner")
        locked = data.get("locked", True)
        if not isinstance(locked, bool):
            raise doc.error("'locked' is true or false", "locked")
        license_name, license_url = _license(doc, data.get("license", ""))
        prefix = data.get("analytics_prefix")
        if prefix is not None and (
            not isinstance(prefix, str) or not prefix.startswith("https://")
        ):
            raise doc.error(
                "'analytics_prefix' must be an https URL, e.g. https://op3.dev/e/",
                "analytics_prefix",
            )
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
            owner_name=owner["name"].strip() if owner else None,
            owner_email=owner["email"].strip() if owner else None,
            category=text["category"],
            explicit=explicit,
            type=show_type,
            cover=cover,
            site=base / str(data.get("site", "build/site")),
            target=parse_target(doc, data.get("target", {"kind": "local", "path": DEFAULT_TARGET})),
            locked=locked,
            license=license_name,
            license_url=license_url,
            analytics_prefix=prefix.rstrip("/") + "/" if prefix else None,
        )


def parse_target(doc: YamlDoc | None, raw: Any, where: Path | None = None) -> Target:
    """A target from its settings; errors point at podcast.yaml (or say the flag)."""

    def fail(message: str) -> PipelineError:
        if doc is not None:
            return doc.error(message, "target")
        return PipelineError(message, hint="check --target and its settings")

    if not isinstance(raw, dict) or raw.get("kind") not in TARGET_KINDS:
        raise fail(f"'target' needs a kind: {', '.join(TARGET_KINDS)}")
    kind = raw["kind"]
    cls = TARGET_KINDS[kind]
    fields = {f.name: f for f in dataclasses.fields(cls)}
    known = ("kind", *fields)
    if doc is not None:
        doc.check_keys(raw, known, "target", what=f"{kind} setting")
    unknown = [key for key in raw if key not in known]
    if unknown:
        raise fail(f"unknown {kind} setting {unknown[0]!r} (known: {', '.join(known)})")
    settings: dict[str, Any] = {}
    for name, spec in fields.items():
        value = raw.get(name)
        if value is None or value == "":
            if spec.default is dataclasses.MISSING:
                raise fail(f"a {kind} target needs {name!r}")
            continue
        if name == "port":
            if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
                raise fail(f"the {kind} target's 'port' must be a port number, e.g. 22")
        elif isinstance(value, bool | dict | list):
            raise fail(f"the {kind} target's {name!r} must be text")
        else:
            value = str(value)
        settings[name] = value
    if cls is LocalTarget:
        base = where or (doc.path.parent if doc else Path.cwd())
        settings["path"] = base / settings["path"]
    return cls(**settings)


def _placeholder(domain: str) -> bool:
    """Whether ``domain`` is one reserved for examples and tests, or a subdomain of one."""
    domain = domain.lower()
    return domain in PLACEHOLDER_DOMAINS or domain.endswith(
        PLACEHOLDER_SUFFIXES + tuple("." + name for name in PLACEHOLDER_DOMAINS)
    )


def _license(doc: YamlDoc, raw: Any) -> tuple[str, str | None]:
    """``license: CC-BY-4.0``, or ``license: {name: ..., url: ...}``."""
    if isinstance(raw, str):
        return raw.strip(), None
    if isinstance(raw, dict):
        doc.check_keys(raw, ("name", "url"), "license", what="license field")
        name, address = raw.get("name"), raw.get("url")
        named = isinstance(name, str) and name.strip()
        if named and isinstance(address, str) and address.startswith(("https://", "http://")):
            return str(name).strip(), address
    raise doc.error(
        "'license' is an SPDX identifier (e.g. CC-BY-4.0) or a 'name' and an http(s) 'url'",
        "license",
    )


def _text(doc: YamlDoc, key: str) -> str:
    value = doc.data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise doc.error(f"{key!r} must be non-empty text", key)
    return " ".join(value.split()) if key == "description" else value.strip()
