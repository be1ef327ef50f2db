"""Speech text: normalization for the ear, and the pronunciation lexicon every engine gets."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import FRONT_MATTER, REPO, VOICES

from pipeline.engines import load_engine
from pipeline.engines.festival import FestivalEngine
from pipeline.engines.piper import PiperEngine
from pipeline.errors import PipelineError
from pipeline.lexicon import Lexicon
from pipeline.production import prepare
from pipeline.speech import Mode, normalize, speak
from pipeline.voices import Voice

LEXICON = Lexicon.load(REPO / "voices" / "lexicon.yaml")


@pytest.mark.parametrize(
    "written, said",
    [
        # numbers and decimals
        ("850,000 cores", "eight hundred fifty thousand cores"),
        ("2.6 trillion transistors", "two point six trillion transistors"),
        ("0.5 and .25", "zero point five and zero point two five"),
        # money
        ("$3.3 trillion", "three point three trillion dollars"),
        ("$4 billion in 2021", "four billion dollars in twenty twenty-one"),
        (
            "$78.7M, $1.1B and $185",
            "seventy-eight point seven million dollars, "
            "one point one billion dollars and one hundred eighty-five dollars",
        ),
        ("a $1 bet", "a one dollar bet"),
        # percentages
        ("83% and 9.5 %", "eighty-three percent and nine point five percent"),
        # years, decades, ordinals
        ("in 2024, and in 2005.", "in twenty twenty-four, and in two thousand five."),
        ("the 1990s", "the nineteen nineties"),
        ("the 1st, 2nd and 30th", "the first, second and thirtieth"),
        # ranges
        ("80-192 GB", "eighty to one hundred ninety-two gigabytes"),
        ("2019\u20132021", "twenty nineteen to twenty twenty-one"),
        # multiples
        ("56x larger", "fifty-six times larger"),
        ("12,862x more", "twelve thousand eight hundred sixty-two times more"),
        ("~6,000\u00d7", "about six thousand times"),
        # units and rates
        ("40 GB and 40 MB", "forty gigabytes and forty megabytes"),
        (
            "20 PB/s, 220 Pb/s, 1.2 Tb/s",
            "twenty petabytes per second, two hundred twenty "
            "petabits per second, one point two terabits per second",
        ),
        ("23 kW, 700 W, 1 W", "twenty-three kilowatts, seven hundred watts, one watt"),
        ("46,225 mm\u00b2", "forty-six thousand two hundred twenty-five square millimeters"),
        ("a 7nm process", "a seven nanometer process"),
        ("15 U", "fifteen rack units"),
        ("120T parameters", "one hundred twenty trillion parameters"),
        # symbols
        ("a 9+3 configuration", "a nine plus three configuration"),
        ("R&D and/or AI", "R and D and or AI"),
        ("input/output", "input slash output"),
        # model numbers not in any lexicon
        ("the B200 and MI300", "the B two hundred and M I three hundred"),
        # Markdown and typography
        ("It\u2019s **huge** \u2014 *really* [big](https://x.y)\u2026", "It's huge, really big..."),
    ],
)
def test_normalization(written: str, said: str) -> None:
    assert normalize(written) == said


@pytest.mark.parametrize(
    "written, said",
    [
        # The brief's own awkward figures.
        (
            "The WSE-2 covers 46,255 square millimeters",
            "The w s e two covers forty-six thousand two hundred fifty-five square millimeters",
        ),
        (
            "20 petabytes/sec of memory bandwidth, and 220 petabits/sec",
            "twenty petabytes per second of memory bandwidth, and two hundred twenty petabits "
            "per second",
        ),
        (
            "twelve standard power supplies (PSUs), in a 9+3 redundant configuration",
            "twelve standard power supplies (p s u's), in a nine plus three redundant "
            "configuration",
        ),
        ("deliver up to 23,000 watts", "deliver up to twenty-three thousand watts"),
        ("12 x 100 Gigabit Ethernet links", "twelve times one hundred Gigabit Ethernet links"),
        ("up to 1.2 Terabits per second", "up to one point two Terabits per second"),
        (
            "123 times more compute cores, 1,000 times more",
            "one hundred twenty-three times more compute cores, one thousand times more",
        ),
        (
            "The CS-2 is 26-inches (15 rack units) tall",
            "The c s two is twenty-six-inches (fifteen rack units) tall",
        ),
        (
            "Nvidia, now valued at $3.3 trillion",
            "nvidia, now valued at three point three trillion dollars",
        ),
    ],
)
def test_the_briefs_figures_in_words(written: str, said: str) -> None:
    assert speak(written, LEXICON, Mode.WORDS) == said


TERMS = sorted(LEXICON.entries)
REQUIRED = [
    "Cerebras",
    "WSE",
    "WSE-2",
    "CS-2",
    "CS-3",
    "SRAM",
    "HBM",
    "SLAC",
    "CLAIR",
    "CGC",
    "PyTorch",
    "TensorFlow",
    "NVIDIA",
    "NVLink",
    "A100",
    "H100",
    "G42",
    "CFIUS",
    "petabits",
    "petabytes",
    "terabits",
    "exaflops",
    "GPU",
    "PSU",
    "IPO",
]


def test_the_lexicon_covers_the_required_terms() -> None:
    assert set(REQUIRED) <= set(TERMS)


@pytest.fixture(scope="module")
def piper() -> PiperEngine:
    engine = load_engine(Voice.load(VOICES / "joe.yaml"))
    assert isinstance(engine, PiperEngine)
    return engine


@pytest.mark.parametrize("term", TERMS)
def test_piper_receives_the_lexicon_phonemes(term: str, piper: PiperEngine) -> None:
    entry = LEXICON.entries[term]
    text = speak(f"We said {term} twice.", LEXICON, Mode.PHONEMES)
    assert f"[[{entry.ipa}]]" in text
    phonemes = "".join(p for sentence in piper.phonemes(text) for p in sentence)
    assert entry.ipa in phonemes  # exactly the lexicon's phonemes reach the model
    assert set(entry.ipa) <= piper.phoneme_set


@pytest.mark.parametrize("term", TERMS)
def test_festival_receives_the_respelling(term: str) -> None:
    entry = LEXICON.entries[term]
    text = speak(f"We said {term} twice.", LEXICON, Mode.RESPELL)
    received = FestivalEngine.input_bytes(text)
    assert received == f"We said {entry.respell} twice.".encode("latin-1")


def test_matching_is_whole_word_and_case_aware() -> None:
    assert speak("SRAMs and GPUs", LEXICON, Mode.RESPELL) == "ess ramz and gee pee youz"
    assert speak("the gpu", LEXICON, Mode.RESPELL) == "the gpu"  # exact case: no match
    assert speak("nvidia, Nvidia, NVIDIA", LEXICON, Mode.RESPELL) == (
        "en vidia, en vidia, en vidia"  # case: any
    )
    assert speak("Cerebrasian AI-driven", LEXICON, Mode.RESPELL) == "Cerebrasian AI-driven"
    assert speak("Cerebras's chip", LEXICON, Mode.RESPELL) == "suh rebb russiz chip"
    assert speak("the CS-2 and CS-3s", LEXICON, Mode.WORDS) == "the c s two and c s threes"


def _lexicon_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "lexicon.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "text, line, message",
    [
        ("SRAM: {ipa: x, respell: ess ram, colour: red}\n", 1, "unknown field 'colour'"),
        ("# comment\nSRAM: {respell: ess ram}\n", 2, "needs a non-empty 'ipa'"),
        ("SRAM:\n  ipa: ˈɛsɹˌæm\n  respell: ess ram 2\n", 3, "must be letters and spaces"),
        ("SRAM: {ipa: x, respell: y, case: upper}\n", 1, "'case' is 'exact' or 'any'"),
        ("SRAM: ess ram\n", 1, "needs ipa and respell"),
        ("SRAM: {ipa: x\n", 1, "invalid YAML"),  # reported where the { opened
    ],
)
def test_lexicon_errors_name_the_line(tmp_path, text, line, message) -> None:
    path = _lexicon_file(tmp_path, text)
    with pytest.raises(PipelineError, match=message) as err:
        Lexicon.load(path)
    assert (err.value.path, err.value.line) == (path, line)


def test_unknown_ipa_symbols_are_refused_for_piper(tmp_path, write_script) -> None:
    lexicon = _lexicon_file(tmp_path, "# ok\nSRAM: {ipa: ˈɛs☃æm, respell: ess ram}\n")
    raw = FRONT_MATTER.replace("hosts:", f"lexicon: {lexicon}\nhosts:", 1)
    path = write_script(raw=raw + "## C\nALEX: SRAM\n")
    with pytest.raises(PipelineError, match="symbols piper cannot say: ☃") as err:
        prepare(path)
    assert (err.value.path, err.value.line) == (lexicon, 2)


def test_a_voice_lexicon_overrides_the_show(tmp_path, write_script) -> None:
    show = _lexicon_file(tmp_path, "SRAM: {ipa: ˈɛsɹˌæm, respell: ess ram}\n")
    own = tmp_path / "slt-lexicon.yaml"
    own.write_text("SRAM: {ipa: ˈɛsɹˌæm, respell: es ramm}\n", encoding="utf-8")
    voice = tmp_path / "slt.yaml"
    voice.write_text(
        (VOICES / "slt.yaml").read_text(encoding="utf-8") + "lexicon: slt-lexicon.yaml\n",
        encoding="utf-8",
    )
    raw = FRONT_MATTER.replace("hosts:", f"lexicon: {show}\nhosts:", 1)
    raw = raw.replace(str(VOICES / "slt.yaml"), str(voice))
    production = prepare(write_script(raw=raw + "## C\nALEX: SRAM.\nMAYA: SRAM.\n"))
    alex, maya = production.utterances
    assert alex.text == "[[ˈɛsɹˌæm]]."  # Piper: the show's phonemes
    assert maya.text == "es ramm."  # Festival: the voice's own respelling
    assert (alex.words, maya.words) == ("ess ram.", "es ramm.")  # words default to respell
