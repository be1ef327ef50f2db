"""Coqui TTS (the maintained ``coqui-tts`` fork): XTTS-v2 voice cloning, multi-speaker VITS,
or any local model.

A voice file picks the model one of two ways::

    engine: coqui
    model: tts_models/en/vctk/vits      # a named model from Coqui's catalogue...
    speaker: p225                       # ...and a speaker of a multi-speaker model

    engine: coqui
    model_path: my-model/model.pth      # ...or a local checkpoint and its config
    config_path: my-model/config.json

XTTS-v2 (``tts_models/multilingual/multi-dataset/xtts_v2``) clones the voice of a short
reference clip (``speaker_wav:``) and is under the Coqui Public Model License, which allows
non-commercial use only: the voice file must say ``license_accepted: CPML`` before it loads.

Named models are never downloaded during a render: one that is not in the local cache fails
at once, saying where it was looked for. ``make models`` fetches them on a networked machine.
The packages are an extra (``pip install -e '.[coqui]'``), imported only when a voice uses
this engine.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.audio import Audio
from pipeline.engines import EngineFailure
from pipeline.files import file_digest
from pipeline.lexicon import Mode
from pipeline.voices import Voice

XTTS_LICENSE = "CPML"
SEED = 0
_INSTALL_HINT = (
    "install the Coqui extra: .venv/bin/pip install -e '.[coqui]' ('make episode' does this "
    "when a voice uses Coqui)"
)


@dataclass
class CoquiEngine:
    """A loaded Coqui model and the speaker to use."""

    tts: Any
    """The ``TTS.api.TTS`` object."""

    speaker: str | None
    """Speaker of a multi-speaker model."""

    speaker_wav: Path | None
    """Reference clip for a cloning model (XTTS)."""

    language: str | None
    """Language for multilingual models."""

    rate: float
    """Speaking rate."""

    fingerprint: str = ""
    """Package version, model and reference clip hashes, speaker and pace."""

    scratch_mb_per_char: float = 3.0
    """Memory per character of a sentence being spoken, MB (taken as Piper's, whose VITS
    decoder works alike)."""

    name: str = "coqui"
    """Engine name."""

    phoneme_set: None = None
    """Coqui reads text: the lexicon gives it respellings."""

    lexicon_mode: Mode = Mode.RESPELL
    """Lexicon terms respelled."""

    @staticmethod
    def load(voice: Voice) -> CoquiEngine:
        """Check the voice's settings and licence, find the model locally, load it once."""
        settings = voice.settings
        named, local = voice.model, settings.get("model_path")
        if bool(named) == bool(local):
            raise voice.error(
                "a Coqui voice names either 'model' (from Coqui's catalogue) or "
                "'model_path' with 'config_path' (a local model), not both or neither",
                "model" if named else "engine",
            )
        is_xtts = "xtts" in (named or local or "").lower()
        if is_xtts and settings.get("license_accepted") != XTTS_LICENSE:
            raise voice.error(
                "XTTS-v2 is under the Coqui Public Model License (CPML), which allows "
                "non-commercial use only; this voice has not accepted it",
                "model",
                hint="if your show is non-commercial and you accept the CPML "
                "(https://coqui.ai/cpml), add 'license_accepted: CPML' to the voice file; "
                "otherwise use a VITS model or an offline voice",
            )
        speaker_wav = _speaker_wav(voice, required=is_xtts)
        try:
            from TTS.api import TTS
        except ImportError as exc:
            raise voice.error(
                f"Coqui TTS is not installed ({exc.name})", "engine", hint=_INSTALL_HINT
            ) from None
        if named:
            where, key = _cached_model(voice, named), "model"
        else:
            config = settings.get("config_path")
            if config is None:
                raise voice.error("'model_path' needs 'config_path' beside it", "model_path")
            where, key, config_path = voice.resolve(local), "model_path", voice.resolve(config)
            for path, name in ((where, "model_path"), (config_path, "config_path")):
                if not path.exists():
                    raise voice.error(f"{path} does not exist", name)
        try:
            if named:
                with _environment(HF_HUB_OFFLINE="1"):  # the cache only, never the network
                    tts = TTS(model_name=named, progress_bar=False)
            else:
                tts = TTS(model_path=str(where), config_path=str(config_path), progress_bar=False)
            tts = tts.to("cpu")
        except Exception as exc:
            raise voice.error(f"Coqui could not load {where}: {exc}", key) from exc
        speaker = _speaker(voice, tts)
        language = settings.get("language") or ("en" if tts.is_multi_lingual else None)
        model = f"model {named}" if named else f"config {file_digest(config_path)}"
        fingerprint = " ".join(
            [
                _model_fingerprint(where),
                model,
                f"speaker {speaker} language {language} rate {voice.rate:.6f}",
                f"reference {file_digest(speaker_wav)}" if speaker_wav else "",
            ]
        )
        return CoquiEngine(tts, speaker, speaker_wav, language, voice.rate, fingerprint)

    def warm(self) -> None:
        """Nothing to do: ``load`` has loaded the model."""

    def synthesize(self, text: str) -> Audio:
        """Speak ``text`` with the chosen speaker; the same text always gives the same audio."""
        import torch

        torch.manual_seed(SEED)  # VITS and XTTS sample noise: fix it per call, not per render
        kwargs: dict[str, Any] = {}
        model = self.tts.synthesizer.tts_model
        if hasattr(model, "length_scale"):
            model.length_scale = 1.0 / self.rate
        elif self.rate != 1.0:
            kwargs["speed"] = self.rate
        try:
            wav = self.tts.tts(
                text=text,
                speaker=self.speaker,
                speaker_wav=str(self.speaker_wav) if self.speaker_wav else None,
                language=self.language,
                **kwargs,
            )
        except Exception as exc:
            raise EngineFailure(f"Coqui failed: {exc}") from exc
        samples = np.asarray(wav, dtype=np.float32)
        return Audio(samples - samples.mean(), int(self.tts.synthesizer.output_sample_rate))


def _cached_model(voice: Voice, name: str) -> Path:
    """The local folder of a named model, or one clear error saying how to get it."""
    from TTS.utils.manage import ModelManager

    manager = ModelManager(progress_bar=False)
    try:
        item, full_name, _ = manager._set_model_item(name)
    except Exception:
        raise voice.error(
            f"{name!r} is not in Coqui's model catalogue",
            "model",
            hint="see 'tts --list_models', or give model_path and config_path",
        ) from None
    folder = Path(manager.output_prefix) / full_name
    if "repo_id" in item:  # XTTS and others live in the Hugging Face cache instead
        from huggingface_hub import constants, snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError

        try:
            return Path(snapshot_download(item["repo_id"], local_files_only=True))
        except LocalEntryNotFoundError:
            repo = item["repo_id"].replace("/", "--")
            folder = Path(constants.HF_HUB_CACHE) / f"models--{repo}"
    elif folder.is_dir():
        return folder
    raise voice.error(
        f"the Coqui model {name!r} is not downloaded (looked in {folder})",
        "model",
        hint="fetch it once on a networked machine with 'make models' (and copy that folder "
        "here), or switch this host to an offline voice such as voices/joe.yaml (Piper) or "
        "voices/slt.yaml (Festival)",
    )


def _model_fingerprint(where: Path) -> str:
    """The package version and the digest of every model file at ``where``."""
    import importlib.metadata

    model_files = sorted(
        p
        for p in ([where] if where.is_file() else where.rglob("*"))
        if p.is_file() and p.suffix in (".pth", ".pt", ".json", ".safetensors")
    )
    return " ".join(
        [
            f"coqui {importlib.metadata.version('coqui-tts')}",
            *(f"{p.name} {file_digest(p)}" for p in model_files),
        ]
    )


def download(voice: Voice) -> Path:
    """Fetch a named model into the local cache (``make models``); needs the network."""
    import requests
    from TTS.utils.manage import ModelManager

    if voice.model is None:
        return voice.resolve(str(voice.settings.get("model_path", "")))  # local: nothing to fetch
    if "xtts" in voice.model.lower() and voice.settings.get("license_accepted") != XTTS_LICENSE:
        raise voice.error(
            "accept the CPML ('license_accepted: CPML') before fetching XTTS", "model"
        )
    # The voice file accepted the licence, so Coqui need not ask on the terminal.
    agreed = {"COQUI_TOS_AGREED": "1"} if "xtts" in voice.model.lower() else {}
    try:
        with _environment(**agreed):
            model_path, _, _ = ModelManager(progress_bar=True).download_model(voice.model)
    except (requests.RequestException, OSError) as exc:
        raise voice.error(
            f"could not download {voice.model!r}: {exc}",
            "model",
            hint="this needs the network; on an offline machine use an offline voice",
        ) from exc
    return Path(model_path)


@contextlib.contextmanager
def _environment(**values: str) -> Iterator[None]:
    """Environment variables set for the length of a call into Coqui, then put back."""
    previous = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _speaker_wav(voice: Voice, required: bool) -> Path | None:
    value = voice.settings.get("speaker_wav")
    if value is None:
        if required:
            raise voice.error(
                "XTTS clones a voice: give 'speaker_wav', a reference clip of the host",
                "model",
                hint="6 to 30 seconds of clean speech, one speaker, no music (see voices/)",
            )
        return None
    path = voice.resolve(value)
    if not path.is_file():
        raise voice.error(f"reference clip {path} does not exist", "speaker_wav")
    return path


def _speaker(voice: Voice, tts: Any) -> str | None:
    speakers = list(tts.speakers or []) if tts.is_multi_speaker else []
    if voice.speaker is None:
        if speakers and voice.settings.get("speaker_wav") is None:
            raise voice.error(
                "this Coqui model has several speakers: choose one with 'speaker'",
                "engine",
                hint=f"speakers: {', '.join(map(str, speakers[:20]))}"
                + (" ..." if len(speakers) > 20 else ""),
            )
        return None
    if str(voice.speaker) not in map(str, speakers):
        raise voice.error(
            f"speaker {voice.speaker!r} is not in this model",
            "speaker",
            hint=f"speakers: {', '.join(map(str, speakers[:20])) or 'none (one speaker)'}",
        )
    return str(voice.speaker)
