"""Where a site is delivered: a local folder, an SFTP server, or an S3-compatible bucket.

Every target puts a file under a temporary name and renames it into place (S3 writes an
object whole, which is its equivalent), so a reader never sees part of a file. Credentials
never come from this repository: SFTP uses the SSH agent or the user's keys (and checks
the host key against known_hosts), S3 takes the usual ``AWS_*`` environment variables.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from pipeline.errors import PipelineError
from pipeline.files import TEMPORARY, copy_file, sweep, temporary_name
from pipeline.show import LocalTarget, S3Target, SftpTarget, Target

STALE_UPLOAD_S = 3600  # an SFTP temporary untouched this long was left by a dead publish


class Remote(Protocol):
    """An open delivery target."""

    def read(self, name: str) -> bytes | None:
        """The file's bytes, or None if it is not there."""
        ...

    def size(self, name: str) -> int | None:
        """The file's size in bytes, or None if it is not there."""
        ...

    def put(self, local: Path, name: str, content_type: str, cache_control: str) -> None:
        """Upload ``local`` as ``name``, atomically."""
        ...

    def sweep(self, folder: str) -> None:
        """Remove temporary files that an interrupted upload left in ``folder``."""
        ...

    def allow_cors(self) -> None:
        """Let web players on other sites fetch the files, where the target itself sends
        the headers (a folder or an SFTP server leaves that to its web server)."""
        ...


@dataclass
class LocalRemote:
    """A folder, e.g. a web server's document root."""

    root: Path
    """The folder."""

    def read(self, name: str) -> bytes | None:
        path = self.root / name
        return path.read_bytes() if path.is_file() else None

    def size(self, name: str) -> int | None:
        path = self.root / name
        return path.stat().st_size if path.is_file() else None

    def put(self, local: Path, name: str, content_type: str, cache_control: str) -> None:
        copy_file(local, self.root / name)

    def sweep(self, folder: str) -> None:
        sweep(self.root / folder)  # by process id: only what dead publishes left

    def allow_cors(self) -> None:
        """Nothing to do: the web server sends CORS (``make serve``'s nginx does)."""


@dataclass
class SftpRemote:
    """A folder on an SSH server, over SFTP (paramiko)."""

    sftp: Any
    """The paramiko SFTP client."""

    root: str
    """The folder on the server."""

    def _path(self, name: str) -> str:
        return posixpath.join(self.root, name)

    def read(self, name: str) -> bytes | None:
        try:
            with self.sftp.open(self._path(name), "rb") as handle:
                return handle.read()
        except FileNotFoundError:
            return None

    def size(self, name: str) -> int | None:
        try:
            return int(self.sftp.stat(self._path(name)).st_size)
        except FileNotFoundError:
            return None

    def _makedirs(self, folder: str) -> None:
        parts = []
        while folder not in ("", "/"):
            try:
                if stat.S_ISDIR(self.sftp.stat(folder).st_mode):
                    break
            except FileNotFoundError:
                parts.append(folder)
                folder = posixpath.dirname(folder)
        for missing in reversed(parts):
            self.sftp.mkdir(missing)

    def put(self, local: Path, name: str, content_type: str, cache_control: str) -> None:
        final = self._path(name)
        self._makedirs(posixpath.dirname(final))
        tmp = posixpath.join(posixpath.dirname(final), temporary_name(Path(final)).name)
        try:
            self.sftp.put(str(local), tmp, confirm=True)
            self.sftp.posix_rename(tmp, final)
        except BaseException:
            with contextlib.suppress(OSError):
                self.sftp.remove(tmp)
            raise

    def allow_cors(self) -> None:
        """Nothing to do: the server's web server sends CORS."""

    def sweep(self, folder: str) -> None:
        # Another machine's process ids mean nothing here: an upload in progress keeps its
        # file's time fresh, so only one untouched for an hour is left over.
        path = self._path(folder)
        try:
            entries = self.sftp.listdir_attr(path)
        except FileNotFoundError:
            return
        for entry in entries:
            stale = time.time() - (entry.st_mtime or 0) > STALE_UPLOAD_S
            if TEMPORARY.match(entry.filename) and stale:
                with contextlib.suppress(OSError):
                    self.sftp.remove(posixpath.join(path, entry.filename))


@dataclass
class S3Remote:
    """A bucket (and key prefix) on any S3-compatible service (boto3)."""

    client: Any
    """The boto3 S3 client."""

    bucket: str
    """Bucket name."""

    prefix: str
    """Key prefix, without a trailing slash ('' for none)."""

    def _key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def _missing(self, error: Any) -> bool:
        return error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound")

    @contextlib.contextmanager
    def _errors(self, action: str, name: str) -> Iterator[None]:
        """botocore's errors as one clear message (its own are tracebacks)."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except ClientError as error:
            detail = error.response.get("Error", {})
            raise PipelineError(
                f"S3 refused to {action} {self.bucket}/{self._key(name)}: "
                f"{detail.get('Code', '?')} {detail.get('Message', '')}".rstrip(),
                hint="check the bucket name, and that the credentials in AWS_* may write it",
            ) from None
        except BotoCoreError as error:
            raise PipelineError(
                f"cannot {action} {self.bucket}/{self._key(name)} on S3: {error}",
                hint="check the target's endpoint and your network, and AWS_* credentials",
            ) from None

    def read(self, name: str) -> bytes | None:
        from botocore.exceptions import ClientError

        with self._errors("read", name):
            try:
                response = self.client.get_object(Bucket=self.bucket, Key=self._key(name))
                return response["Body"].read()
            except ClientError as error:
                if self._missing(error):
                    return None
                raise

    def size(self, name: str) -> int | None:
        from botocore.exceptions import ClientError

        with self._errors("look up", name):
            try:
                head = self.client.head_object(Bucket=self.bucket, Key=self._key(name))
            except ClientError as error:
                if self._missing(error):
                    return None
                raise
        return int(head["ContentLength"])

    def put(self, local: Path, name: str, content_type: str, cache_control: str) -> None:
        # One PUT writes the object whole: readers see the old object or the new one.
        with self._errors("write", name), local.open("rb") as body:
            self.client.put_object(
                Bucket=self.bucket,
                Key=self._key(name),
                Body=body,
                ContentType=content_type,
                CacheControl=cache_control,
            )

    def sweep(self, folder: str) -> None:
        """Nothing to do: S3 writes an object whole, with no temporary."""

    def allow_cors(self) -> None:
        """GET and HEAD from any origin (the bucket's CORS rules), for web players."""
        rule = {
            "AllowedOrigins": ["*"],
            "AllowedMethods": ["GET", "HEAD"],
            "AllowedHeaders": ["*"],
            "ExposeHeaders": ["Content-Length", "Content-Range"],
            "MaxAgeSeconds": 86400,
        }
        with self._errors("set CORS rules on", ""):
            self.client.put_bucket_cors(Bucket=self.bucket, CORSConfiguration={"CORSRules": [rule]})


@contextlib.contextmanager
def open_target(target: Target) -> Iterator[Remote]:
    """Connect to ``target`` for the length of a publish."""
    if isinstance(target, LocalTarget):
        target.path.mkdir(parents=True, exist_ok=True)
        yield LocalRemote(target.path)
    elif isinstance(target, SftpTarget):
        with _sftp(target) as sftp:
            yield SftpRemote(sftp, target.path)
    else:
        yield S3Remote(_s3_client(target), target.bucket, target.prefix.strip("/"))


@contextlib.contextmanager
def _sftp(target: SftpTarget) -> Iterator[Any]:
    import paramiko

    host, port, user = target.host, target.port, target.user
    client = paramiko.SSHClient()
    client.load_system_host_keys()
    known = Path(target.known_hosts or Path.home() / ".ssh" / "known_hosts")
    if known.is_file():
        client.load_host_keys(str(known))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())  # never trust a new host silently
    try:
        client.connect(
            host,
            port=port,
            username=user,
            allow_agent=True,
            look_for_keys=True,
            timeout=30,
            banner_timeout=30,
            auth_timeout=30,
        )
    except paramiko.SSHException as exc:
        client.close()
        raise PipelineError(
            f"cannot open SFTP to {user}@{host}:{port}: {exc}",
            hint=f"the host key must be in {known} (ssh-keyscan -p {port} {host}), and your key "
            "in the SSH agent or ~/.ssh",
        ) from exc
    except OSError as exc:
        client.close()
        raise PipelineError(f"cannot reach {host}:{port}: {exc}") from exc
    try:
        yield client.open_sftp()
    finally:
        client.close()


def _s3_client(target: S3Target) -> Any:
    import boto3
    from botocore.config import Config

    key, secret = os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY")
    if not (key or secret or os.environ.get("AWS_PROFILE")):
        raise PipelineError(
            "no S3 credentials in the environment",
            hint="set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)",
        )
    if bool(key) != bool(secret):
        raise PipelineError(
            f"S3 credentials are partial: {'AWS_SECRET_ACCESS_KEY' if key else 'AWS_ACCESS_KEY_ID'}"
            " is not set",
            hint="set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)",
        )
    return boto3.client(
        "s3",
        endpoint_url=target.endpoint,
        region_name=target.region,
        config=Config(
            s3={"addressing_style": "path"},
            retries={"max_attempts": 3},
            connect_timeout=30,
            read_timeout=120,
        ),
    )
