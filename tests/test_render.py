"""End to end: the fixture script rendered with both default engines and the show's music,
checked from the delivered files with independent tools (ffmpeg, mutagen, soundfile,
webvtt-py, parselmouth)."""

from __future__ import annotations

import itertools
import json
import re
import subprocess

import mutagen.id3
import mutagen.mp3
import numpy as np
import parselmouth
import pyloudnorm
import pytest
import soundfile
import webvtt
from conftest import FIXTURES, REPO, decode, ffprobe, rms_db

from pipeline.assemble import Levels, Timing, assemble
from pipeline.audio import pan
from pipeline.cli import main
from pipeline.delivery import FRAME
from pipeline.level import leveled
from pipeline.loudness import measure
from pipeline.music import MusicLibrary
from pipeline.production import prepare
from pipeline.script import parse_script
from pipeline.synthesize import synthesize

RATE = 44_100
TIMING = Timing()
LIBRARY = MusicLibrary.load(REPO / "assets" / "music" / "music.yaml")
LEAD = {name: piece.lead for name, piece in LIBRARY.pieces.items()}
EXPECTED_SPEAKERS = ["ALEX", "MAYA", "ALEX", "MAYA", "ALEX"]
EXPECTED_LINES = [28, 29, 33, 40, 46]
SCRIPT = FIXTURES / "two_hosts.md"


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("render") / "episode.mp3"
    report = out.with_name("report.json")
    assert main(["render", str(SCRIPT), "-o", str(out), "-q", "--report", str(report)]) == 0
    timeline = json.loads(out.with_suffix(".timeline.json").read_text(encoding="utf-8"))
    return {"mp3": out, "dir": out.parent, "timeline": timeline, "audio": decode(out)}


def region(audio: np.ndarray, start: float, end: float) -> np.ndarray:
    return audio[int(start * RATE) : int(end * RATE)]


def median_pitch(samples: np.ndarray) -> float:
    pitch = parselmouth.Sound(samples.astype(np.float64), RATE).to_pitch(
        pitch_floor=60, pitch_ceiling=400
    )
    f0 = pitch.selected_array["frequency"]
    return float(np.median(f0[f0 > 0]))


def test_render_reports_seconds_per_stage(rendered) -> None:
    report = json.loads((rendered["dir"] / "report.json").read_text(encoding="utf-8"))
    stages = report["stages_s"]
    assert list(stages) == [
        "parse and check",
        "synthesis",
        "assembly",
        "mastering and encoding",
        "packaging",
    ]
    assert all(seconds >= 0 for seconds in stages.values())
    # Assembly only lays the timeline (the mix sounds a window at a time as it is encoded).
    assert stages["synthesis"] > 0 and stages["mastering and encoding"] > stages["assembly"]
    assert report["turns"] == 5 and report["mastering_passes"] >= 1


def test_mp3_format(rendered) -> None:
    probe = ffprobe(rendered["mp3"])
    audio = [s for s in probe["streams"] if s["codec_type"] == "audio"]
    (stream,) = audio
    assert stream["codec_name"] == "mp3"
    assert int(stream["sample_rate"]) == RATE and stream["channels"] == 2
    assert stream["channel_layout"] == "stereo"
    assert abs(int(stream["bit_rate"]) - 128_000) < 1_000
    info = mutagen.mp3.MP3(rendered["mp3"]).info
    assert info.bitrate_mode == mutagen.mp3.BitrateMode.CBR  # the Info header says CBR


def test_the_opus_rendition_meets_the_same_spec(rendered) -> None:
    """Ogg Opus, 48 kHz stereo, as long as the MP3, and as loud, its peaks under the
    ceiling: measured by ffmpeg's meter on the file."""
    opus = rendered["mp3"].with_suffix(".opus")
    (stream,) = ffprobe(opus)["streams"]
    assert (stream["codec_name"], stream["channels"], stream["sample_rate"]) == ("opus", 2, "48000")
    assert float(ffprobe(opus)["format"]["duration"]) == pytest.approx(
        rendered["timeline"]["duration"], abs=0.03
    )
    measured = measure(opus)
    assert measured.loudness_lufs == pytest.approx(-16.0, abs=0.5)
    assert measured.true_peak_db <= -1.0
    assert measured.loudness_lufs == pytest.approx(measure(rendered["mp3"]).loudness_lufs, abs=0.3)


def test_mp3_decodes_cleanly(rendered) -> None:
    """Playable: ffmpeg decodes every frame without a single warning."""
    result = subprocess.run(
        ["ffmpeg", "-v", "warning", "-i", str(rendered["mp3"]), "-f", "null", "-"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0 and result.stderr == ""


def test_durations_agree_across_tools(rendered) -> None:
    """ffprobe, mutagen and soundfile read the same length (the Info header at work)."""
    expected = rendered["timeline"]["duration"]
    by_ffprobe = float(ffprobe(rendered["mp3"])["format"]["duration"])
    by_mutagen = mutagen.mp3.MP3(rendered["mp3"]).info.length
    by_soundfile = soundfile.info(rendered["mp3"]).duration
    for duration in (by_ffprobe, by_mutagen, by_soundfile):
        assert duration == pytest.approx(expected, abs=0.1)
    assert len(rendered["audio"]) / RATE == pytest.approx(expected, abs=0.005)


def test_loudness_and_true_peak_of_the_mp3(rendered) -> None:
    measured = measure(rendered["mp3"])  # ffmpeg's EBU R128 meter on the stereo file
    assert measured.loudness_lufs == pytest.approx(-16.0, abs=0.5)
    assert measured.true_peak_db <= -1.0
    # And pyloudnorm, on both channels of the decoded MP3, agrees on the loudness.
    stereo = decode(rendered["mp3"], channels=2).astype(np.float64)
    assert pyloudnorm.Meter(RATE).integrated_loudness(stereo) == pytest.approx(-16.0, abs=0.5)
    # The loudness range the render reports is the one ffmpeg's meter gives the file.
    summary = subprocess.run(
        ["ffmpeg", "-nostats", "-i", str(rendered["mp3"]), "-af", "ebur128", "-f", "null", "-"],
        capture_output=True,
        text=True,
    ).stderr.rsplit("Summary:", 1)[-1]
    lra = float(re.search(r"LRA:\s+([\d.]+) LU", summary).group(1))
    manifest = json.loads(rendered["mp3"].with_suffix(".manifest.json").read_text())
    assert manifest["loudness"]["range_lu"] == pytest.approx(lra, abs=0.5)


def test_turns_are_placed_by_the_plan(rendered) -> None:
    timeline = rendered["timeline"]
    turns = timeline["turns"]
    assert [t["speaker"] for t in turns] == EXPECTED_SPEAKERS
    assert [t["line"] for t in turns] == EXPECTED_LINES
    music = {m["name"]: m for m in timeline["music"]}
    tolerance = 1 / RATE

    def after(gap: float, start: float, planned: float) -> None:
        """A sound that follows a gap starts on the MP3 frame grid: up to a frame later."""
        assert round(start * RATE) % FRAME == 0
        assert -tolerance <= gap - planned < FRAME / RATE

    # The intro starts the episode; the voice comes in when its lead has played.
    assert music["intro"]["start"] == 0
    after(turns[0]["start"], turns[0]["start"], LEAD["intro"])
    first, second = list(parse_script(SCRIPT).turns())[:2]
    gap = TIMING.gap(first, second, chapter_start=False)  # a statement, then a reply
    assert TIMING.turn_gap * 0.8 <= gap <= TIMING.turn_gap * 1.2
    after(turns[1]["start"] - turns[0]["end"], turns[1]["start"], gap)
    after(turns[2]["start"] - turns[1]["end"], turns[2]["start"], 1.2)  # [pause]
    # The sting follows the last words of chapter one; chapter two's voice waits for it.
    sting = music["sting"]["start"]
    after(sting - turns[2]["end"], sting, TIMING.music_gap)
    after(turns[3]["start"] - sting, turns[3]["start"], LEAD["sting"])
    after(turns[4]["start"] - turns[3]["end"], turns[4]["start"], 0.8)
    outro = music["outro"]
    after(outro["start"] - turns[4]["end"], outro["start"], TIMING.music_gap)
    assert timeline["duration"] == pytest.approx(outro["end"], abs=tolerance)


def test_speech_where_the_plan_says_and_silence_between(rendered) -> None:
    audio = rendered["audio"]
    turns = rendered["timeline"]["turns"]
    for turn in turns:
        assert rms_db(region(audio, turn["start"], turn["end"])) > -30, turn
    # The gaps with no music in them are silent.
    music = [(m["start"], m["end"]) for m in rendered["timeline"]["music"]]
    for before, after in itertools.pairwise(turns):
        gap = (before["end"] + 0.02, after["start"] - 0.02)
        if not any(s < gap[1] and e > gap[0] for s, e in music):
            assert rms_db(region(audio, *gap)) < -70, gap


def test_silences_found_by_ffmpeg_match_the_gaps(rendered) -> None:
    """An independent measure: ffmpeg's silencedetect finds every silent planned gap."""
    args = [
        "ffmpeg",
        "-hide_banner",
        "-i",
        str(rendered["mp3"]),
        "-af",
        "silencedetect=noise=-55dB:duration=0.4",
        "-f",
        "null",
        "-",
    ]
    log = subprocess.run(args, capture_output=True, text=True, check=True).stderr
    starts = [float(x) for x in re.findall(r"silence_start: ([\d.]+)", log)]
    ends = [float(x) for x in re.findall(r"silence_end: ([\d.]+)", log)]
    silences = list(zip(starts, ends, strict=False))
    turns = rendered["timeline"]["turns"]
    music = [(m["start"], m["end"]) for m in rendered["timeline"]["music"]]
    quiet = [
        (before, after)
        for before, after in itertools.pairwise(turns)
        if not any(s < after["start"] and e > before["end"] for s, e in music)
    ]
    assert quiet  # the fixture has a pause with no music under it
    for before, after in quiet:
        assert any(
            abs(s - before["end"]) < 0.05 and abs(e - after["start"]) < 0.05 for s, e in silences
        ), (before["end"], after["start"], silences)


def test_the_two_hosts_sound_different(rendered) -> None:
    audio = rendered["audio"]
    pitches: dict[str, list[float]] = {"ALEX": [], "MAYA": []}
    for turn in rendered["timeline"]["turns"]:
        pitches[turn["speaker"]].append(median_pitch(region(audio, turn["start"], turn["end"])))
    alex, maya = max(pitches["ALEX"]), min(pitches["MAYA"])
    # Piper joe is a male voice, Festival slt a female one: every turn says so.
    assert alex < 150 < maya, pitches
    assert maya / alex > 1.3


def test_hosts_are_matched_in_loudness(rendered) -> None:
    meter = pyloudnorm.Meter(RATE)
    audio = decode(rendered["mp3"], channels=2).astype(np.float64)  # as two speakers play it
    loudness = {}
    for speaker in ("ALEX", "MAYA"):
        parts = [
            region(audio, t["start"], t["end"])
            for t in rendered["timeline"]["turns"]
            if t["speaker"] == speaker
        ]
        loudness[speaker] = meter.integrated_loudness(np.concatenate(parts))
    assert abs(loudness["ALEX"] - loudness["MAYA"]) < 1.0, loudness


def test_music_plays_in_the_intro_and_outro(rendered) -> None:
    audio, turns = rendered["audio"], rendered["timeline"]["turns"]
    intro = region(audio, 0.2, turns[0]["start"] - 0.5)
    assert rms_db(intro) > -35  # music on its own, before the first words
    outro = {m["name"]: m for m in rendered["timeline"]["music"]}["outro"]
    assert rms_db(region(audio, turns[-1]["end"] + 1.0, outro["end"] - 3.0)) > -35


def test_music_is_ducked_under_speech() -> None:
    """The music's own track in the fixture's mix: about 12 dB down under the voice."""
    production = prepare(SCRIPT)
    spoken = list(synthesize(production.utterances, production.engines, production.script.path))
    mix = assemble(production.script, spoken, music=production.music)
    speech = np.zeros_like(mix.audio.samples)
    for placement, turn in zip(mix.placements, spoken, strict=True):
        speech[placement.start : placement.end] += pan(
            leveled(turn.audio.samples, placement.gain_db, RATE), placement.pan
        )
    music = mix.audio.samples - speech
    first = mix.placements[0]
    alone = music[int(1.0 * RATE) : first.start - int(0.5 * RATE)]
    under = music[first.start + int(0.2 * RATE) : first.end - int(0.2 * RATE)]
    levels = Levels()
    drop = rms_db(alone) - rms_db(under)
    assert drop == pytest.approx(levels.music_db - levels.duck_db, abs=3.0)
    # The ramp into the duck is smooth: no step bigger than 1 dB in any 10 ms.
    envelope = [rms_db(music[i : i + 441]) for i in range(first.start - RATE, first.start, 441)]
    assert max(abs(a - b) for a, b in itertools.pairwise(envelope)) < 3.0
    # The mix stays float32 into the master: a peak over full scale there is not clipped
    # but limited (test_loudness_and_true_peak_of_the_mp3 measures the delivered peaks).
    assert mix.audio.samples.dtype == np.float32


def test_chapters_in_ffprobe_and_mutagen(rendered) -> None:
    timeline = rendered["timeline"]
    probed = json.loads(
        subprocess.run(
            ["ffprobe", "-v", "error", "-show_chapters", "-of", "json", str(rendered["mp3"])],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )["chapters"]
    titles = ["First things", "Second thoughts"]
    assert [c["tags"]["title"] for c in probed] == titles
    starts = [float(c["start_time"]) for c in probed]
    assert starts == sorted(starts)
    tags = mutagen.id3.ID3(rendered["mp3"])
    (toc,) = tags.getall("CTOC")
    chaps = {f.element_id: f for f in tags.getall("CHAP")}
    ordered = [chaps[element] for element in toc.child_element_ids]
    assert [c.sub_frames["TIT2"].text[0] for c in ordered] == titles
    assert [c.start_time for c in ordered] == sorted(c.start_time for c in ordered)
    # Chapter one starts with the intro; chapter two with its sting, after the last words.
    music = {m["name"]: m["start"] for m in timeline["music"]}
    assert ordered[0].start_time / 1000 == pytest.approx(music["intro"], abs=0.05)
    assert ordered[1].start_time / 1000 == pytest.approx(music["sting"], abs=0.05)
    assert starts[1] == pytest.approx(music["sting"], abs=0.05)


def test_id3_tags(rendered) -> None:
    tags = mutagen.id3.ID3(rendered["mp3"])
    assert tags.version[:2] == (2, 4)
    assert str(tags["TIT2"]) == "Fixture episode"
    assert str(tags["TALB"]) == "Test Show" and str(tags["TPE1"]) == "Test Show"
    assert str(tags["TRCK"]) == "7"
    assert str(tags["TDRC"]) == "2026-01-02"
    (comment,) = tags.getall("COMM")
    description, disclosure = comment.text[0].split("\n\n")
    assert description == "Two hosts, two chapters, every kind of gap."
    assert disclosure.startswith(
        "AI disclosure: Alex Example and Maya Example are synthetic voices, made by "
        "text-to-speech, not real people (Alex Example: Joe, male US English"
    )
    (cover,) = tags.getall("APIC")
    assert cover.type == mutagen.id3.PictureType.COVER_FRONT
    assert cover.mime == "image/jpeg"
    assert cover.data == (REPO / "assets" / "cover.jpg").read_bytes()


def test_chapters_json(rendered) -> None:
    chapters = json.loads((rendered["dir"] / "episode.chapters.json").read_text(encoding="utf-8"))
    assert chapters["version"] == "1.2.0"
    timeline = rendered["timeline"]
    assert [(c["title"], c["startTime"]) for c in chapters["chapters"]] == [
        (c["title"], round(c["start"], 3)) for c in timeline["chapters"]
    ]


def _script_turns() -> list[tuple[str, str]]:
    names = {"ALEX": "Alex Example", "MAYA": "Maya Example"}
    from pipeline.script import parse_script

    return [(names[t.speaker], t.text) for t in parse_script(SCRIPT).turns()]


def _joined(captions: list[tuple[str, str, float, float]]) -> list[tuple[str, str]]:
    """Consecutive captions by one speaker joined back into turns (the fixture's turns
    alternate between the hosts)."""
    turns: list[tuple[str, str]] = []
    for speaker, text, _, _ in captions:
        if turns and turns[-1][0] == speaker:
            turns[-1] = (speaker, turns[-1][1] + " " + text)
        else:
            turns.append((speaker, text))
    return turns


def test_webvtt_parses_with_voices_and_matches_the_script(rendered) -> None:
    captions = webvtt.read(str(rendered["mp3"].with_suffix(".vtt")))
    rows = []
    for caption in captions:
        voice = re.match(r"<v ([^>]+)>", caption.raw_text)
        assert voice, caption.raw_text
        for line in caption.text.splitlines():
            assert len(line) <= 65, line
        assert caption.voice == voice.group(1)
        rows.append(
            (
                caption.voice,
                caption.text.replace("\n", " "),
                caption.start_time.in_milliseconds() / 1000,
                caption.end_time.in_milliseconds() / 1000,
            )
        )
    assert _joined(rows) == _script_turns()
    turns = rendered["timeline"]["turns"]
    firsts = [rows[0]] + [b for a, b in itertools.pairwise(rows) if b[0] != a[0]]
    # VTT times are whole milliseconds.
    assert [r[2] for r in firsts] == pytest.approx([t["start"] for t in turns], abs=0.001)
    # Inside a turn, a caption starts where its sentence does: one sentence pause after the
    # last one ends ("Thanks." then "It is good to be here today.").
    within = [b[2] - a[3] for a, b in itertools.pairwise(rows) if a[0] == b[0]]
    assert within == pytest.approx([TIMING.sentence_pause] * len(within), abs=0.002)
    assert within


def test_srt_parses_and_matches_the_script(rendered) -> None:
    captions = webvtt.from_srt(str(rendered["mp3"].with_suffix(".srt")))
    rows = []
    for caption in captions:
        speaker, _, text = caption.text.replace("\n", " ").partition(": ")
        start, end = caption.start_time.in_milliseconds(), caption.end_time.in_milliseconds()
        rows.append((speaker, text, start / 1000, end / 1000))
    assert _joined(rows) == _script_turns()


def test_podcasting_json_transcript(rendered) -> None:
    transcript = json.loads(
        (rendered["dir"] / "episode.transcript.json").read_text(encoding="utf-8")
    )
    assert transcript["version"] == "1.0.0"
    rows = [(s["speaker"], s["body"], s["startTime"], s["endTime"]) for s in transcript["segments"]]
    assert all(start < end for _, _, start, end in rows)
    assert _joined(rows) == _script_turns()


def test_shownotes_and_overview(rendered) -> None:
    notes = (rendered["dir"] / "episode.shownotes.md").read_text(encoding="utf-8")
    assert notes.startswith("# Test Show, episode 7: Fixture episode")
    assert "- Alex Example: voice" in notes and "- Maya Example: voice" in notes
    assert "- 00:00 First things" in notes
    assert re.search(r"- 00:\d\d Second thoughts", notes)
    overview = rendered["dir"] / "episode-overview.png"
    with overview.open("rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
    from PIL import Image

    with Image.open(overview) as image:
        assert image.size == (1800, 700)
