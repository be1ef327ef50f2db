"""Files in and out: what a script names is a real file; what a run writes appears whole.

Inputs: every file a script or config names must be a regular file of sane size, not a
link, folder, device or pipe. A link could pull any readable file (a password file, a
key) into a published MP3, and reading a pipe or device can block forever.

Outputs: each is written under a temporary name ``.NAME.PID-TOKEN.part`` beside its
place and renamed when complete. The process id in the name lets a later run remove what
a killed one left behind (``sweep``) without touching the files of a run still going.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import shutil
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pipeline.errors import PipelineError

MAX_INPUT_BYTES = 64 << 20  # a cover, a music piece, a config: far below this
TEMPORARY = re.compile(r"^\..+\.(?P<pid>\d+)-[0-9a-f]{8}(?:\.part|\.tmp)$")
"""The names ``temporary_name`` makes."""


def input_file(
    path: Path,
    what: str,
    *,
    hint: str | None = None,
    named_at: tuple[Path, int | None] | None = None,
    max_bytes: int = MAX_INPUT_BYTES,
) -> Path:
    """``path``, checked to be a regular file (not a link) of at most ``max_bytes``.

    Errors point at ``named_at`` (the file and line that name it) when given, else at
    ``path`` itself."""
    where, line = named_at if named_at is not None else (path, None)

    def error(message: str, fix: str | None = hint) -> PipelineError:
        return PipelineError(message, path=where, line=line, hint=fix)

    try:
        info = os.lstat(path)
    except FileNotFoundError:
        raise error(f"{what} {path} does not exist" if named_at else f"{what} not found") from None
    except OSError as exc:
        raise error(f"cannot read the {what} {path}: {exc.strerror}") from None
    if stat.S_ISLNK(info.st_mode):
        raise error(
            f"the {what} {path} is a symbolic link",
            "name the file itself: copy it into the project rather than linking to it",
        )
    if not stat.S_ISREG(info.st_mode):
        raise error(
            f"the {what} {path} is not a regular file", "name a file, not a folder or device"
        )
    if info.st_size > max_bytes:
        raise error(
            f"the {what} {path} is {info.st_size / 1e6:.0f} MB, more than this pipeline reads "
            f"({max_bytes / 1e6:.0f} MB)"
        )
    if not os.access(path, os.R_OK):
        raise error(f"the {what} {path} cannot be read (permission denied)")
    return path


def temporary_name(path: Path, suffix: str = ".part") -> Path:
    """A hidden temporary name beside ``path`` carrying this process's id."""
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}{suffix}")


@contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path`` that becomes ``path`` only if the block succeeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # Not created here: the writer creates it, so it gets the usual umask-based mode.
    tmp = temporary_name(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes(path: Path, data: bytes) -> Path:
    """Write ``data`` at ``path``, atomically."""
    with atomic_output(path) as tmp:
        tmp.write_bytes(data)
    return path


def write_text(path: Path, text: str) -> Path:
    """Write ``text`` at ``path``, atomically."""
    return write_bytes(path, text.encode("utf-8"))


def copy_file(source: Path, destination: Path) -> Path:
    """Copy ``source`` to ``destination``, atomically."""
    with atomic_output(destination) as tmp:
        shutil.copyfile(source, tmp)
    return destination


def file_digest(path: Path) -> str:
    """SHA-256 of a file, read a megabyte at a time."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_json(path: Path, data: Any) -> Path:
    """Write ``data`` as JSON at ``path``, atomically."""
    return write_text(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def read_json_record(path: Path, kind: type) -> Any:
    """The JSON value at ``path`` if it is a ``kind`` (dict or list); None if the file is
    missing, unreadable, not JSON or of another shape (a record to make again)."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, kind) else None


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def sweep(folder: Path, keep: frozenset[str] = frozenset()) -> list[str]:
    """Remove the temporary files and folders that runs since killed left in ``folder``
    (their process is gone), except the names in ``keep``; return the names removed."""
    removed = []
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        for entry in os.scandir(folder):
            match = TEMPORARY.match(entry.name)
            if match is None or entry.name in keep or _alive(int(match.group("pid"))):
                continue
            with contextlib.suppress(FileNotFoundError):
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path)
                else:
                    os.unlink(entry.path)
                removed.append(entry.name)
    return removed


def sweep_tree(root: Path) -> None:
    """``sweep`` every folder under ``root`` (a site being built)."""
    if root.is_dir():
        for folder in [root, *(p for p in root.rglob("*") if p.is_dir() and not p.is_symlink())]:
            sweep(folder)
