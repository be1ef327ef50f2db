"""hibari (hibari-tts): small neural voices distilled from Kokoro-82M, on onnxruntime.

The PyPI wheel ships one voice, "heart" (US English, female, from Kokoro's af_heart), with
its own text-to-phoneme front end (misaki's rules and dictionaries, ported). Its other
voices download on first use, which a render never does: one that is not already in
hibari's cache fails at once, at the voice file's line. Lexicon terms reach it as
``[term](/phonemes/)`` links in Kokoro's alphabet (``pipeline/lexicon.py``).

A voice file::

    engine: hibari
    model: heart        # a hibari voice name, or a path to a .onnx export
    rate: 1.0           # hibari's speed: 1.0 is the teacher model's pace
    threads: 1          # onnxruntime threads (the audio differs in its last bits by count)
    seed: 0             # the noise seed: the same sentence always gives the same samples
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import onnxruntime

from pipeline.audio import Audio
from pipeline.engines import EngineFailure
from pipeline.files import file_digest
from pipeline.lexicon import Mode
from pipeline.voices import Voice

DEFAULT_VOICE = "heart"
# hibari splits a sentence longer than this many phonemes at its commas, each part with
# the model's own silence around it; the parts are joined with a comma's pause instead.
CLAUSE_PAUSE_S = 0.18


@dataclass
class HibariEngine:
    """A hibari voice, loaded on first use."""

    voice_name: str
    """hibari voice name: chooses the model and the US or British front end."""

    model_path: Path
    """The voice's .onnx model."""

    speed: float
    """hibari's speed (the voice file's rate)."""

    threads: int
    """onnxruntime threads."""

    seed: int
    """Seed of the model's noise, mixed with each text's checksum."""

    phoneme_set: frozenset[str]
    """Kokoro's phonemes, as the model's vocabulary has them."""

    fingerprint: str = ""
    """Package versions, the model's hash and the settings."""

    scratch_mb_per_char: float = 0.4
    """Memory per character of a sentence being spoken, MB (about 70 MB for 200
    characters)."""

    name: str = "hibari"
    """Engine name."""

    lexicon_mode: Mode = Mode.KOKORO
    """Lexicon terms as ``[term](/phonemes/)`` links."""

    _tts: Any = field(default=None, repr=False)

    @staticmethod
    def load(voice: Voice) -> HibariEngine:
        """Check the voice: a voice hibari has on disk (never downloaded), or a .onnx file."""
        registry = _registry()
        if registry is None:
            raise voice.error(
                "hibari-tts is not installed",
                "engine",
                hint="pip install hibari-tts ('make episode' installs it)",
            )
        model = voice.model or DEFAULT_VOICE
        if model.endswith(".onnx"):
            voice_name, model_path = DEFAULT_VOICE, voice.resolve(model)
            if not model_path.is_file():
                raise voice.error(f"hibari model file {model_path} does not exist", "model")
        elif model not in registry.VOICES:
            raise voice.error(
                f"{model!r} is not a hibari voice",
                "model",
                hint=f"hibari's voices: {', '.join(registry.VOICES)} (only {DEFAULT_VOICE!r} is in "
                "the package), or a path to a .onnx file",
            )
        else:
            voice_name = model
            try:
                model_path = Path(registry.voice_path(model, download_missing=False))
            except FileNotFoundError:
                raise voice.error(
                    f"the hibari voice {model!r} is not in the package and not downloaded "
                    f"(looked in {registry.cache_dir()}); renders never download",
                    "model",
                    hint="fetch it once on a networked machine with 'make models' (and copy "
                    f"that folder here), or use the bundled voice: model: {DEFAULT_VOICE}",
                ) from None
        threads = voice.settings.get("threads", 1)
        if not isinstance(threads, int) or not 1 <= threads <= (os.cpu_count() or 1) * 4:
            raise voice.error("'threads' must be a whole number from 1 up", "threads")
        seed = voice.settings.get("seed", 0)
        if not isinstance(seed, int) or seed < 0:
            raise voice.error("'seed' must be a whole number, 0 or more", "seed")
        vocab = json.loads((Path(registry.ASSETS) / "vocab.json").read_text("utf-8"))
        fingerprint = " ".join(
            [
                f"hibari {importlib.metadata.version('hibari-tts')}",
                f"onnxruntime {onnxruntime.__version__} graph unoptimized",
                f"voice {voice_name} model {file_digest(model_path)}",
                f"speed {voice.rate:.6f} threads {threads} seed {seed}",
            ]
        )
        return HibariEngine(
            voice_name=voice_name,
            model_path=model_path,
            speed=voice.rate,
            threads=threads,
            seed=seed,
            phoneme_set=frozenset(vocab) - {" "},
            fingerprint=fingerprint,
        )

    def model(self) -> Any:
        """The ``hibari.Hibari`` model: made on first use, so a process that only plans a
        render holds no session."""
        if self._tts is None:
            from hibari import Hibari

            try:
                model, threads = str(self.model_path), self.threads
                tts = Hibari(voice=self.voice_name, model=model, threads=threads)
                tts.sess = self._session()
                self._tts = tts
            except Exception as exc:
                raise EngineFailure(
                    f"hibari cannot load {self.model_path} (reinstall hibari-tts): {exc}"
                ) from exc
        return self._tts

    def _session(self) -> Any:
        """The model's onnxruntime session as hibari makes it, without the memory arena,
        which keeps the largest sentence's buffers for good (a worker held 270 MB after 15
        turns, against 233 MB without; the samples the same), as Piper's does. hibari
        cannot be given a session: it makes its own (0.1 s), and this one replaces it."""
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = self.threads
        options.log_severity_level = 3
        options.enable_cpu_mem_arena = False
        # Graph optimisations make the session in 0.21 s instead of 0.07 and speak no
        # faster (measured here): a worker that speaks one edited turn waits for them.
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
        providers = ["CPUExecutionProvider"]
        return onnxruntime.InferenceSession(str(self.model_path), options, providers=providers)

    def warm(self) -> None:
        """Load the model (a damaged one fails here)."""
        self.model()

    def phonemes(self, text: str) -> list[str]:
        """What hibari's front end makes of ``text``: Kokoro phonemes, one string per part."""
        return list(self.model().phonemize(text))

    def synthesize(self, text: str) -> Audio:
        """Speak ``text`` (a sentence): the same text always gives the same samples."""
        tts = self.model()
        # The noise seed depends on the text only, not on what was said before it.
        rng_seed = [self.seed, zlib.crc32(text.encode("utf-8"))]
        try:
            parts = [
                Audio(np.asarray(part, dtype=np.float32), tts.sample_rate).trim()
                for part in tts.stream(text, speed=self.speed, seed=rng_seed)
            ]
        except Exception as exc:
            raise EngineFailure(f"hibari failed: {exc}") from exc
        parts = [part for part in parts if len(part.samples)]
        if not parts:
            return Audio(np.zeros(0, dtype=np.float32), tts.sample_rate)
        pause = np.zeros(round(CLAUSE_PAUSE_S * tts.sample_rate), dtype=np.float32)
        joined = [parts[0].samples]
        for part in parts[1:]:
            joined += [pause, part.samples]
        return Audio(np.concatenate(joined), tts.sample_rate)


def _registry() -> ModuleType | None:
    """hibari's voice registry (``hibari/voices.py``, which needs only the standard
    library), loaded on its own: the package's ``__init__`` imports the synthesizer and
    with it scipy (0.3-0.45 s), which a render that speaks in workers never needs here.
    None if hibari is not installed."""
    package = importlib.util.find_spec("hibari")
    if package is None or package.origin is None:
        return None
    spec = importlib.util.spec_from_file_location(
        "_hibari_voices", Path(package.origin).with_name("voices.py")
    )
    if spec is None or spec.loader is None:
        return None
    registry = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(registry)
    return registry


def download(voice: Voice) -> Path:
    """Fetch a hibari voice that is not in the package (``make models``; needs the network)."""
    from hibari.voices import VOICES, voice_path

    model = voice.model or DEFAULT_VOICE
    if model not in VOICES:
        raise voice.error(f"{model!r} is not a hibari voice", "model")
    try:
        return Path(voice_path(model))
    except RuntimeError as exc:
        raise voice.error(
            str(exc), "model", hint="this needs the network; offline, use model: heart"
        ) from exc
