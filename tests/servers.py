"""Real servers on loopback for the publishing tests: sshd with an ssh-agent, and s3rver."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from conftest import REPO


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_port(port: int, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited: {process.stderr.read() if process.stderr else ''}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not listen on {port}")


@contextlib.contextmanager
def sshd(folder: Path) -> Iterator[dict[str, str]]:
    """An OpenSSH server on a loopback port, a key in a real ssh-agent, and a known_hosts.

    Yields the environment (SSH_AUTH_SOCK) and the settings a publish target needs.
    """
    folder.mkdir(parents=True, exist_ok=True)
    host_key, user_key = folder / "host_ed25519", folder / "user_ed25519"
    for key in (host_key, user_key):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    (folder / "authorized_keys").write_text(Path(f"{user_key}.pub").read_text(), "utf-8")
    port = free_port()
    config = folder / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {host_key}\n"
        f"AuthorizedKeysFile {folder / 'authorized_keys'}\nPidFile {folder / 'sshd.pid'}\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
        "StrictModes no\nPermitRootLogin prohibit-password\n"
        "Subsystem sftp internal-sftp\n",
        encoding="utf-8",
    )
    host_public = Path(f"{host_key}.pub").read_text().split()
    known = folder / "known_hosts"
    known.write_text(f"[127.0.0.1]:{port} {host_public[0]} {host_public[1]}\n", "utf-8")
    os.makedirs("/run/sshd", exist_ok=True)  # sshd insists on its privilege-separation dir
    server = subprocess.Popen(
        ["/usr/sbin/sshd", "-D", "-e", "-f", str(config)], stderr=subprocess.PIPE
    )
    agent_socket = folder / "agent.sock"
    agent = subprocess.Popen(
        ["ssh-agent", "-D", "-a", str(agent_socket)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_port(port, server, "sshd")
        deadline = time.monotonic() + 10
        while not agent_socket.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        env = {**os.environ, "SSH_AUTH_SOCK": str(agent_socket)}
        subprocess.run(["ssh-add", "-q", str(user_key)], check=True, env=env)
        yield {
            "SSH_AUTH_SOCK": str(agent_socket),
            "host": "127.0.0.1",
            "port": str(port),
            "user": os.environ.get("USER") or "root",
            "known_hosts": str(known),
        }
    finally:
        for process in (server, agent):
            process.terminate()
            process.wait(timeout=10)


def s3rver_binary() -> str:
    """The s3rver that `make test` installs with npm (under .venv/npm)."""
    local = REPO / ".venv" / "npm" / "node_modules" / ".bin" / "s3rver"
    found = str(local) if local.exists() else shutil.which("s3rver")
    if found is None:
        raise RuntimeError("s3rver is not installed: run 'make test' (it installs it with npm)")
    return found


@contextlib.contextmanager
def s3rver(folder: Path, bucket: str) -> Iterator[str]:
    """An S3-compatible server (s3rver, from npm) on a loopback port; yields its URL."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    server = subprocess.Popen(
        [
            s3rver_binary(),
            "--address",
            "127.0.0.1",
            "--port",
            str(port),
            "--directory",
            str(folder),
            "--configure-bucket",
            bucket,
            "--silent",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_port(port, server, "s3rver")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=10)
