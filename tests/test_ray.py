"""Scale-out: turns spoken by a real Ray cluster (a head started on loopback) give the
same episode, sample for sample, as a local render; a season shares the cluster's pool."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from conftest import FIXTURES
from servers import free_port

from pipeline.render import render

pytestmark = pytest.mark.servers
ray = pytest.importorskip("ray")
RAY = str(Path(sys.executable).with_name("ray"))


@pytest.fixture(scope="module")
def cluster() -> str:
    """A Ray head on loopback with two CPUs; its address."""
    port = free_port()
    # Ray's sockets live under its temp folder: keep the path short (107 bytes at most).
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")
    args = [RAY, "start", "--head", f"--port={port}", "--node-ip-address=127.0.0.1"]
    args += ["--num-cpus=2", "--include-dashboard=false", "--disable-usage-stats"]
    subprocess.run([*args, f"--temp-dir={temp}"], check=True, capture_output=True)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        ray.shutdown()
        subprocess.run([RAY, "stop", "--force"], capture_output=True, check=False)
        shutil.rmtree(temp, ignore_errors=True)


def test_a_render_on_the_cluster_is_the_local_render(cluster, tmp_path) -> None:
    """No cache on either side, so every turn is spoken: by the cluster's actors, then
    by local worker processes. The MP3 and the Opus file are the same bytes."""
    script = FIXTURES / "two_hosts.md"
    args = [sys.executable, "-m", "pipeline", "render", str(script), "--no-cache", "-q"]
    remote = tmp_path / "ray" / "ep.mp3"
    ran = subprocess.run(
        [*args, "-o", str(remote), "--executor", "ray", "--ray-address", cluster],
        capture_output=True,
        text=True,
    )
    assert ran.returncode == 0, ran.stderr
    local = tmp_path / "local" / "ep.mp3"
    subprocess.run([*args, "-o", str(local)], check=True, capture_output=True)
    assert remote.read_bytes() == local.read_bytes()
    assert remote.with_suffix(".opus").read_bytes() == local.with_suffix(".opus").read_bytes()


def test_a_season_shares_the_pool(cluster, write_script, tmp_path) -> None:
    """Two episodes through one pool: each voice's actor is started (its engine loaded)
    once for the season, not once per episode."""
    from pipeline.raypool import RayPool

    first = write_script("## One\nALEX: First episode.\nMAYA: Yes.\n", name="s1.md")
    second = write_script("## One\nALEX: Second episode.\nMAYA: Indeed.\n", name="s2.md")
    pool = RayPool(cluster)
    try:
        for script in (first, second):
            out = tmp_path / "season" / f"{script.stem}.mp3"
            result = render(script, out, cache=tmp_path / "cache", executor=pool)
            assert result.turns == 2 and out.is_file()
        assert pool.started == 2  # Alex's voice and Maya's, once each
    finally:
        pool.close()


def test_an_unreachable_cluster_is_one_clear_error(tmp_path) -> None:
    script = FIXTURES / "two_hosts.md"
    address = f"127.0.0.1:{free_port()}"
    args = [sys.executable, "-m", "pipeline", "render", str(script), "--no-cache", "-q"]
    args += ["-o", str(tmp_path / "x.mp3"), "--executor", "ray", "--ray-address", address]
    ran = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert ran.returncode == 1
    assert f"cannot reach the Ray cluster at {address}" in ran.stderr
    assert not (tmp_path / "x.mp3").exists()
