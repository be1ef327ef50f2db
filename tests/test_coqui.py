"""The Coqui engine: a real (tiny, random) VITS model through Coqui's public API, the
licence gate, and the offline failure for models that are not downloaded."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import FRONT_MATTER, REPO, VOICES, decode, rms_db
from tiny_vits import SPEAKERS, build_tiny_vits

from pipeline.cli import main
from pipeline.engines import load_engine
from pipeline.errors import PipelineError
from pipeline.production import prepare
from pipeline.synthesize import spoken as spoken_by
from pipeline.synthesize import synthesize
from pipeline.timing import Timing
from pipeline.voices import Voice

pytestmark = pytest.mark.torch

TEXT = "Hello there, this is a test of the tiny model."


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> tuple[Path, Path]:
    return build_tiny_vits(tmp_path_factory.mktemp("tiny-vits"))


def coqui_voice(
    folder: Path, model: tuple[Path, Path], speaker: str | None = "bob", extra: str = ""
) -> Path:
    path = folder / f"coqui-{speaker}.yaml"
    lines = ["engine: coqui", f"model_path: {model[0]}", f"config_path: {model[1]}"]
    if speaker is not None:
        lines.append(f"speaker: {speaker}")
    path.write_text("\n".join(lines) + "\n" + extra, encoding="utf-8")
    return path


def test_the_tiny_model_loads_through_coquis_public_api(model) -> None:
    from TTS.api import TTS

    tts = TTS(model_path=str(model[0]), config_path=str(model[1]), progress_bar=False)
    assert tts.is_multi_speaker and list(tts.speakers) == list(SPEAKERS)
    parameters = sum(p.numel() for p in tts.synthesizer.tts_model.parameters())
    assert 100_000 < parameters < 1_000_000


def test_engine_speaks_with_the_chosen_speaker(model, tmp_path) -> None:
    from TTS.api import TTS

    bob = load_engine(Voice.load(coqui_voice(tmp_path, model, "bob")))
    ada = load_engine(Voice.load(coqui_voice(tmp_path, model, "ada")))
    said = bob.synthesize(TEXT)
    assert said.sample_rate == 22_050 and said.samples.dtype == np.float32
    # Exactly what Coqui's own API gives for that speaker (less its DC offset) ...
    direct = np.asarray(
        TTS(model_path=str(model[0]), config_path=str(model[1]), progress_bar=False).tts(
            TEXT, speaker="bob"
        ),
        dtype=np.float32,
    )
    assert np.allclose(said.samples, direct - direct.mean(), atol=1e-5)
    # ... the same every time, and different for the other speaker.
    assert np.array_equal(said.samples, bob.synthesize(TEXT).samples)
    other = ada.synthesize(TEXT).samples
    assert len(other) != len(said.samples) or not np.allclose(other, said.samples, atol=1e-3)


def test_render_with_one_host_on_coqui_and_one_on_piper(model, tmp_path) -> None:
    voice = coqui_voice(tmp_path, model, "bob")
    raw = FRONT_MATTER.replace(str(VOICES / "slt.yaml"), str(voice))
    script = tmp_path / "ep.md"
    script.write_text(
        raw + "## Chapter\nALEX: Welcome to the show.\n\nMAYA: " + TEXT + "\n\nALEX: Thanks.\n",
        encoding="utf-8",
    )
    production = prepare(script)
    assert {s: e.name for s, e in production.engines.items()} == {"ALEX": "piper", "MAYA": "coqui"}
    spoken = list(synthesize(production.utterances, production.engines, script))
    maya = spoken[1]
    expected = spoken_by(production.engines["MAYA"], maya.utterance.sentences, 44_100, Timing())
    assert np.array_equal(maya.audio.samples, expected.audio.samples)  # the model's turn
    assert expected.gain_db == maya.gain_db and expected.sentences == maya.sentences
    out = tmp_path / "out" / "episode.mp3"
    assert main(["render", str(script), "-o", str(out), "-q"]) == 0
    # The MP3 carries MAYA's Coqui turn where the timeline puts it, as long as the model
    # spoke it, and the timeline names the Coqui voice file.
    timeline = json.loads(out.with_suffix(".timeline.json").read_text(encoding="utf-8"))
    assert timeline["hosts"]["MAYA"]["voice"] == str(voice)
    turn = timeline["turns"][1]
    assert turn["speaker"] == "MAYA"
    assert turn["end"] - turn["start"] == pytest.approx(
        len(expected.audio.samples) / 44_100, abs=0.002
    )
    audio = decode(out)
    region = audio[int(turn["start"] * 44_100) : int(turn["end"] * 44_100)]
    assert rms_db(region) > -45  # sound, not silence, where the Coqui turn was placed
    assert out.with_suffix(".vtt").read_text(encoding="utf-8").count("<v Maya>") >= 1


def test_xtts_needs_the_licence_accepted(tmp_path) -> None:
    path = tmp_path / "xtts.yaml"
    path.write_text(
        "engine: coqui\nmodel: tts_models/multilingual/multi-dataset/xtts_v2\n"
        "speaker_wav: ref.wav\n",
        encoding="utf-8",
    )
    started = time.monotonic()
    with pytest.raises(PipelineError, match="Coqui Public Model License") as err:
        load_engine(Voice.load(path))
    assert "license_accepted: CPML" in str(err.value)
    assert (err.value.path, err.value.line) == (path, 2)
    assert time.monotonic() - started < 5


def test_the_shipped_xtts_voice_is_gated() -> None:
    with pytest.raises(PipelineError, match="CPML"):
        load_engine(Voice.load(VOICES / "xtts-alex.yaml"))


def test_a_model_that_is_not_downloaded_fails_at_once(tmp_path) -> None:
    """Offline, with the model not cached: one clear message within seconds, no hang."""
    raw = FRONT_MATTER.replace(str(VOICES / "slt.yaml"), str(VOICES / "vctk-p226.yaml"))
    script = tmp_path / "ep.md"
    script.write_text(raw + "## Chapter\nMAYA: Hello.\n", encoding="utf-8")
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "pipeline", "check", str(script)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env={
            "PATH": "/usr/bin:/bin",
            "TTS_HOME": str(tmp_path / "empty-cache"),
            "HF_HOME": str(tmp_path / "empty-hf"),
        },
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 1
    err = result.stderr
    assert err.count("error:") == 1
    assert "the Coqui model 'tts_models/en/vctk/vits' is not downloaded" in err
    assert str(tmp_path / "empty-cache") in err  # where it looked
    assert "make models" in err and "offline voice" in err
    assert elapsed < 60


def test_downloading_offline_fails_cleanly(tmp_path, monkeypatch) -> None:
    """``make models`` on a machine that cannot reach the model host: a clear error."""
    monkeypatch.setenv("TTS_HOME", str(tmp_path / "cache"))
    from pipeline.engines.coqui import download

    with pytest.raises(PipelineError, match="could not download 'tts_models/en/vctk/vits'"):
        download(Voice.load(VOICES / "vctk-p226.yaml"))


@pytest.mark.parametrize(
    "text, message",
    [
        ("engine: coqui\n", "either 'model'"),
        ("engine: coqui\nmodel: tts_models/en/vctk/vits\nmodel_path: m.pth\n", "not both"),
        ("engine: coqui\nmodel_path: {model}\n", "'model_path' needs 'config_path'"),
        ("engine: coqui\nmodel_path: {model}\nconfig_path: {config}\n", "choose one with"),
        (
            "engine: coqui\nmodel_path: {model}\nconfig_path: {config}\nspeaker: cyd\n",
            "speaker 'cyd' is not in this model",
        ),
        ("engine: coqui\nmodel: tts_models/xx/nothing/here\n", "not in Coqui's model catalogue"),
        ("engine: piper\nspeaker_wav: a.wav\n", "'speaker_wav' is a setting of the coqui"),
    ],
)
def test_bad_coqui_voices(model, tmp_path, text, message) -> None:
    path = tmp_path / "voice.yaml"
    path.write_text(text.format(model=model[0], config=model[1]), encoding="utf-8")
    with pytest.raises(PipelineError, match=message) as err:
        load_engine(Voice.load(path))
    assert err.value.path == path


def test_engines_command_tells_set_up_which_engines_a_script_needs(model, tmp_path, capsys) -> None:
    voice = coqui_voice(tmp_path, model, "ada")
    script = tmp_path / "ep.md"
    script.write_text(
        FRONT_MATTER.replace(str(VOICES / "joe.yaml"), str(voice)) + "## C\nALEX: hi\n",
        encoding="utf-8",
    )
    assert main(["engines", str(script)]) == 0
    assert capsys.readouterr().out.split() == ["coqui", "festival"]
