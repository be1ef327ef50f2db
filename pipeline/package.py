"""Stage 6, package: the mastered mix encoded to MP3, with a timeline of what is where.

Every output is written to a temporary name in its own folder and renamed into place
only when complete, so a failed or interrupted render never leaves a half-written file.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.assemble import Mix
from pipeline.audio import Audio
from pipeline.errors import PipelineError
from pipeline.script import Script

MP3_RATE = 44_100
MP3_BITRATE = "96k"  # mono CBR, the common spoken-word delivery spec
CHUNK = 1 << 16  # samples per write to ffmpeg; keeps memory flat


def require_ffmpeg() -> str:
    """Path of ffmpeg, or a clear error saying how to install it."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise PipelineError(
            "ffmpeg is not installed",
            hint="apt-get install ffmpeg ('make episode' does this)",
        )
    return ffmpeg


@contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path`` that becomes ``path`` only if the block succeeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # Not created here: the writer creates it, so it gets the usual umask-based mode.
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.part")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def encode_mp3(audio: Audio, path: Path, *, bitrate: str = MP3_BITRATE) -> None:
    """Encode mono ``audio`` to a constant-bitrate MP3 at ``path`` through ffmpeg."""
    ffmpeg = require_ffmpeg()
    with atomic_output(path) as tmp:
        args = [
            ffmpeg,
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "f32le",
            "-ar",
            str(audio.sample_rate),
            "-ac",
            "1",
            "-i",
            "pipe:0",
            "-ar",
            str(MP3_RATE),
            "-ac",
            "1",
            "-c:a",
            "libmp3lame",
            "-b:a",
            bitrate,
            "-write_xing",
            "1",  # an Info header, so players read the true duration
            "-f",
            "mp3",
            str(tmp),
        ]
        _pipe_samples(args, audio.samples)


def _pipe_samples(args: list[str], samples: np.ndarray) -> None:
    with subprocess.Popen(args, stdin=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        assert proc.stdin is not None and proc.stderr is not None
        try:
            for start in range(0, len(samples), CHUNK):
                proc.stdin.write(samples[start : start + CHUNK].astype("<f4", copy=False).data)
            proc.stdin.close()
        except BrokenPipeError:
            pass  # ffmpeg stopped early; its exit code and stderr say why
        stderr = proc.stderr.read().decode("utf-8", errors="replace").strip()
        code = proc.wait()
    if code != 0:
        raise PipelineError(f"ffmpeg could not encode the MP3: {stderr or f'exit code {code}'}")


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as JSON at ``path``, atomically."""
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def timeline(script: Script, mix: Mix) -> dict[str, Any]:
    """Where every turn, chapter and music cue lands, in seconds: for producers and later stages."""
    hosts = script.meta.hosts
    rate = mix.audio.sample_rate
    return {
        "podcast": script.meta.podcast,
        "episode": script.meta.episode,
        "title": script.meta.title,
        "duration": len(mix.audio.samples) / rate,
        "sample_rate": rate,
        "chapters": [
            {"title": c.title, "start": c.start / rate, "line": c.line} for c in mix.chapters
        ],
        "turns": [
            {
                "speaker": p.turn.speaker,
                "name": hosts[p.turn.speaker].name,
                "start": p.start / rate,
                "end": p.end / rate,
                "line": p.turn.line,
                "text": p.turn.text,
                "speech": p.speech_text,
            }
            for p in mix.placements
        ],
        "music": [{"name": m.name, "at": m.at / rate, "line": m.line} for m in mix.music],
    }


def package(script: Script, mix: Mix, output: Path) -> Path:
    """Write the MP3 and, beside it, ``<name>.timeline.json``; return the timeline's path."""
    encode_mp3(mix.audio, output)
    timeline_path = output.with_suffix(".timeline.json")
    write_json(timeline_path, timeline(script, mix))
    return timeline_path
