"""The promotion kit: an audiogram of the episode's soundbite for social media.

The soundbite is the one the script marks with ``[soundbite]`` or the one the render
picked (the manifest's ``soundbites``; the feed lists them as ``podcast:soundbite``). The
audiogram is a square 1080 x 1080 H.264 MP4 made by ffmpeg: the artwork, the soundbite's
waveform moving across it (``showwaves``), and its captions burnt in from the transcript
(``subtitles``, libass). A small record beside it says which MP3 it was cut from, so
publishing links it only while it matches the episode (``promo_for``).
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pipeline.clock import clock
from pipeline.errors import PipelineError
from pipeline.files import atomic_output, read_json_record, write_json
from pipeline.loudness import require_ffmpeg
from pipeline.outputs import Manifest, OutputSet, Soundbite

SIDE = 1080
FONT = "DejaVu Sans"  # Debian's fonts-dejavu-core, which 'make promo' installs
FADE_S = 0.3


@dataclass(frozen=True)
class Promo:
    """What ``make_promo`` wrote."""

    audiogram: Path
    """The video."""

    soundbite: Soundbite
    """The part of the episode it holds."""


def audiogram_path(outputs: OutputSet) -> Path:
    """Where the audiogram of the set at ``outputs`` goes."""
    return outputs.mp3.with_name(outputs.mp3.stem + "-audiogram.mp4")


def _record_path(outputs: OutputSet) -> Path:
    return outputs.mp3.with_name(outputs.mp3.stem + ".promo.json")


def promo_for(outputs: OutputSet, built: Manifest) -> Path | None:
    """The audiogram made from exactly the MP3 of ``built``, if there is one."""
    record = read_json_record(_record_path(outputs), dict)
    video = audiogram_path(outputs)
    if record is None or record.get("mp3_sha256") != built.mp3.sha256 or not video.is_file():
        return None
    return video


def make_promo(outputs: OutputSet, built: Manifest, artwork: Path) -> Promo:
    """Cut the first soundbite of the set at ``outputs`` into an audiogram over
    ``artwork``."""
    if not built.soundbites:
        raise PipelineError(
            f"{outputs.manifest} names no soundbite",
            path=Path(built.script.path),
            hint="mark one in the script: [soundbite] before its first turn, "
            "[soundbite end] after its last; then render again",
        )
    from pipeline.package import synthetic_voices  # here: publishing imports this module

    bite = built.soundbites[0]
    transcript = json.loads(built.file(outputs.mp3.parent, "transcript").read_text("utf-8"))
    video = audiogram_path(outputs)
    with tempfile.TemporaryDirectory(prefix="promo-") as folder, atomic_output(video) as part:
        captions = Path(folder) / "clip.ass"
        label = synthetic_voices(built.hosts)  # the disclosure, as the feed and notes say it
        captions.write_text(_captions(transcript["segments"], bite, label), encoding="utf-8")
        _render(built.file(outputs.mp3.parent, "mp3"), artwork, captions, bite, part)
    write_json(_record_path(outputs), {"mp3_sha256": built.mp3.sha256, "audiogram": video.name})
    return Promo(video, bite)


# An ASS subtitle script at the video's own size: the captions in a box over the lower
# third, the disclosure small at the top. libass draws it (ffmpeg's subtitles filter).
_ASS = f"""[Script Info]
ScriptType: v4.00+
PlayResX: {SIDE}
PlayResY: {SIDE}
WrapStyle: 0

[V4+ Styles]
Format: Name, Fontname, Fontsize, PrimaryColour, BackColour, BorderStyle, Outline, Shadow, \
Alignment, MarginL, MarginR, MarginV
Style: Caption,{FONT},54,&H00FFFFFF,&H99101020,3,14,0,2,60,60,250
Style: Label,{FONT},34,&H00FFFFFF,&H99101020,3,10,0,8,60,60,36

[Events]
Format: Layer, Start, End, Style, Text
"""


def _captions(segments: list[dict], bite: Soundbite, label: str) -> str:
    """ASS captions of the transcript's segments inside the soundbite, timed from its
    start, each led by its speaker's name; and ``label`` at the top throughout."""
    end = bite.start + bite.duration

    def text(raw: str) -> str:  # braces and backslashes are ASS markup: never in text
        return raw.replace("\\", "/").replace("{", "(").replace("}", ")")

    def at(seconds: float) -> str:  # ASS times: H:MM:SS.cc
        whole, hundredths = divmod(round(seconds * 100), 100)
        return f"{clock(whole, hours=True)}.{hundredths:02d}"

    lines = [f"Dialogue: 0,{at(0)},{at(bite.duration)},Label,{text(label)}"]
    for segment in segments:
        start, stop = float(segment["startTime"]), float(segment["endTime"])
        if stop <= bite.start or start >= end:
            continue
        a, b = max(start, bite.start) - bite.start, min(stop, end) - bite.start
        said = text(f"{segment['speaker']}: {segment['body']}")
        lines.append(f"Dialogue: 0,{at(a)},{at(b)},Caption,{said}")
    return _ASS.replace("\\\n", "") + "\n".join(lines) + "\n"


def _render(mp3: Path, artwork: Path, captions: Path, bite: Soundbite, out: Path) -> None:
    # libass reads the caption file's path from the filter graph: run in its folder and
    # name it plainly, so no path needs escaping there.
    fade_out = max(bite.duration - FADE_S, 0.0)
    graph = ";".join(
        [
            f"[1:v]scale={SIDE}:{SIDE},setsar=1,format=yuv420p[art]",
            f"[0:a]afade=t=in:d={FADE_S},afade=t=out:st={fade_out:.3f}:d={FADE_S},"
            "asplit[audio][meter]",
            f"[meter]showwaves=s={SIDE - 120}x180:mode=cline:rate=25:colors=0x78DCFF[wave]",
            f"[art][wave]overlay=60:470:shortest=1,subtitles={captions.name}[video]",
        ]
    )
    args = [require_ffmpeg(), "-hide_banner", "-loglevel", "error", "-y"]
    args += ["-ss", f"{bite.start:.3f}", "-t", f"{bite.duration:.3f}", "-i", str(mp3.resolve())]
    args += ["-loop", "1", "-framerate", "25", "-i", str(artwork.resolve())]
    args += ["-filter_complex", graph, "-map", "[video]", "-map", "[audio]"]
    args += ["-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p"]
    args += ["-c:a", "aac", "-b:a", "128k", "-t", f"{bite.duration:.3f}"]
    args += ["-movflags", "+faststart", "-f", "mp4"]  # the temporary's name has no .mp4
    args += [str(out.resolve())]
    result = subprocess.run(args, capture_output=True, cwd=captions.parent, check=False)
    if result.returncode != 0:
        detail = result.stderr.decode("utf-8", errors="replace").strip()[-400:]
        raise PipelineError(f"ffmpeg could not make the audiogram: {detail}")
