"""``make serve``: the site on localhost through nginx, a real web server with HTTP Range
requests (podcast apps and browsers seek in an MP3 with them)."""

from __future__ import annotations

import argparse
import contextlib
import getpass
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from pipeline.errors import PipelineError

CONFIG = """\
{user}daemon off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log stderr warn;
events {{ worker_connections 64; }}
http {{
    include /etc/nginx/mime.types;
    types {{
        text/vtt vtt;
        application/x-subrip srt;
        application/rss+xml xml;
        audio/ogg opus;
    }}
    default_type application/octet-stream;
    charset utf-8;
    charset_types text/css text/vtt application/rss+xml application/json application/javascript;
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    server {{
        listen {host}:{port};
        root {root};
        index index.html;
        # Dotfiles (the manifest, an upload's temporary) are bookkeeping, never public.
        location ~ /\\. {{ return 404; }}
        # Web players on other sites fetch the audio, chapters and transcripts: CORS.
        add_header Access-Control-Allow-Origin "*" always;
        add_header Access-Control-Expose-Headers "Content-Length, Content-Range" always;
        location ~ /chapters\\.json$ {{
            types {{ }}
            default_type application/json+chapters;
            add_header Access-Control-Allow-Origin "*" always;
            add_header Access-Control-Expose-Headers "Content-Length, Content-Range" always;
        }}
        location / {{ try_files $uri $uri/ =404; }}
    }}
}}
"""


def nginx_command(root: Path, port: int, prefix: Path, host: str = "127.0.0.1") -> list[str]:
    """Write an nginx config for serving ``root`` and return the command that runs it."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        raise PipelineError(
            "nginx is not installed", hint="apt-get install nginx ('make serve' does this)"
        )
    config = prefix / "nginx.conf"
    # Started as root, nginx would drop its workers to www-data, which may not read the site:
    # keep them as the user who asked to serve it.
    user = f"user {getpass.getuser()};\n" if os.geteuid() == 0 else ""
    config.write_text(
        CONFIG.format(user=user, prefix=prefix, host=host, port=port, root=root.resolve()),
        encoding="utf-8",
    )
    return [nginx, "-p", str(prefix), "-c", str(config), "-e", "stderr"]


@contextlib.contextmanager
def serving(root: Path, port: int) -> Iterator[str]:
    """nginx serving ``root`` on 127.0.0.1:``port`` for the length of the block; its URL."""
    with tempfile.TemporaryDirectory(prefix="serve-") as tmp:
        process = subprocess.Popen(
            nginx_command(root, port, Path(tmp)), stderr=subprocess.PIPE, text=True
        )
        url = f"http://127.0.0.1:{port}/"
        try:
            _wait_for(url, process)
            yield url
        finally:
            process.terminate()
            process.wait(timeout=10)


def _wait_for(url: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            error = process.stderr.read() if process.stderr else ""
            raise PipelineError(f"nginx stopped: {error.strip()}")
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except OSError as exc:
            if getattr(exc, "code", None):  # an HTTP error is an answer: it is up
                return
            time.sleep(0.1)
    raise PipelineError(f"nginx did not answer at {url}")


def main(argv: list[str] | None = None) -> int:
    """``python -m pipeline.serve [SITE] [--port N]``: serve until Ctrl-C."""
    parser = argparse.ArgumentParser(prog="python -m pipeline.serve", description=__doc__)
    parser.add_argument("site", nargs="?", type=Path, default=Path("build/site"))
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    if not (args.site / "index.html").is_file():
        print(f"error: {args.site} has no site yet: run 'make publish' first", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="serve-") as tmp:
        print(f"serving {args.site} at http://127.0.0.1:{args.port}/ (Ctrl-C stops)")
        try:
            return subprocess.run(
                nginx_command(args.site, args.port, Path(tmp)), check=False
            ).returncode
        except KeyboardInterrupt:
            return 0


if __name__ == "__main__":
    sys.exit(main())
