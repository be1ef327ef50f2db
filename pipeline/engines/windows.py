"""A VITS model (Piper's) split before its decoder, so that a sentence is decoded a window
of frames at a time: its memory no longer grows with the sentence.

A process speaking a 312-character sentence whole peaked at 538 MB (the decoder holds about
2 KB per output sample); in windows, at 307 MB, as fast, the samples the same within 1e-6. The split
needs the ``onnx`` package, whose import takes 0.7-1 s (ml_dtypes), so the two halves are
kept in the user's cache, under the model's SHA-256, and a worker loads them directly."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime

from pipeline.files import read_json_record, write_bytes, write_json

FRAMES = 100
"""Frames each window gives (1.2 s at Piper's 22,050 Hz and 256 samples a frame)."""

CONTEXT = 16
"""Frames decoded each side of a window and dropped: the decoder's convolutions reach 12-15
frames (measured: 10 frames changed samples by 1e-6, 15 by none)."""

DECODER_WEIGHT = "dec.conv_pre.weight"
"""The weight of the decoder's first layer (VITS's ``dec.conv_pre``): its node's first
input is the latent the decoder decodes."""

SPLIT_FORMAT = 1
"""Bumped when the split changes; part of the cached halves' record."""


@dataclass(frozen=True)
class Halves:
    """A model's two halves: text to latent frames, and frames to samples."""

    front: Path | bytes
    """The encoder, durations and flow: the model's inputs to the decoder's inputs."""

    decoder: Path | bytes
    """The decoder: latent frames (and any other decoder input) to samples."""

    latent: str
    """The decoder input that runs along time (batch, channels, frames)."""

    @staticmethod
    def load(model_path: Path, digest: str, cache: Path | None = None) -> Halves | None:
        """The halves of the model at ``model_path`` (SHA-256 ``digest``): from ``cache``
        (default: ``default_cache()``) if there, else split now and kept there (or only in
        memory if it cannot be written). None: the model has no VITS decoder to split at."""
        folder = (cache or default_cache()) / digest
        record = read_json_record(folder / "split.json", dict)
        if record and record.get("format") == SPLIT_FORMAT:
            if record.get("latent") is None:
                return None  # split before: nothing to split at
            if all((folder / name).is_file() for name in ("front.onnx", "decoder.onnx")):
                return Halves(folder / "front.onnx", folder / "decoder.onnx", record["latent"])
        split = _split(model_path)
        try:
            if split is not None:
                write_bytes(folder / "front.onnx", split.front)  # type: ignore[arg-type]
                write_bytes(folder / "decoder.onnx", split.decoder)  # type: ignore[arg-type]
            latent = split.latent if split else None
            write_json(folder / "split.json", {"format": SPLIT_FORMAT, "latent": latent})
        except OSError:
            return split
        return split and Halves(folder / "front.onnx", folder / "decoder.onnx", split.latent)


@dataclass(frozen=True)
class WindowedSession:
    """The whole model's ``run``, made of its halves: the decoder is given ``FRAMES`` of
    the latent at a time, with ``CONTEXT`` frames each side."""

    front: onnxruntime.InferenceSession
    """The front half's session."""

    decoder: onnxruntime.InferenceSession
    """The decoder's session."""

    latent: str
    """The decoder input that runs along time."""

    @staticmethod
    def load(halves: Halves, options: onnxruntime.SessionOptions) -> WindowedSession:
        """Sessions for both halves, with ``options``."""
        sessions = [
            onnxruntime.InferenceSession(
                half if isinstance(half, bytes) else str(half),
                sess_options=options,
                providers=["CPUExecutionProvider"],
            )
            for half in (halves.front, halves.decoder)
        ]
        return WindowedSession(*sessions, halves.latent)

    def run(self, _names: object, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """The model's output for ``feeds`` (shape (1, 1, samples)), as ``InferenceSession.run``."""
        front = {item.name for item in self.front.get_inputs()}
        (latent,) = self.front.run([self.latent], {k: v for k, v in feeds.items() if k in front})
        given = {
            item.name: feeds[item.name]
            for item in self.decoder.get_inputs()
            if item.name != self.latent
        }
        frames = latent.shape[-1]
        pieces = []
        for start in range(0, frames, FRAMES):
            end = min(frames, start + FRAMES)
            low, high = max(0, start - CONTEXT), min(frames, end + CONTEXT)
            window = np.ascontiguousarray(latent[..., low:high])
            (samples,) = self.decoder.run(None, {**given, self.latent: window})
            samples = samples.reshape(-1)
            hop = len(samples) // (high - low)
            pieces.append(samples[(start - low) * hop : (end - low) * hop])
        audio = np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
        return [audio.reshape(1, 1, -1)]


def default_cache() -> Path:
    """Where split models are kept: ``$XDG_CACHE_HOME/life-is-artificial/vits`` (by
    default ``~/.cache``): derived from installed models, shared by every project."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "life-is-artificial" / "vits"


def _split(model_path: Path) -> Halves | None:
    """Cut the model where its decoder starts: the decoder is every node the output needs
    from the latent on, its inputs the latent and any of the model's inputs it reads."""
    # 0.7-1 s to import (ml_dtypes): only when a model is first split.
    import onnx
    import onnx.utils

    model = onnx.load(str(model_path))
    graph = model.graph
    weights = {init.name for init in graph.initializer}
    latent = next((node.input[0] for node in graph.node if DECODER_WEIGHT in node.input), None)
    if latent is None:
        return None
    made = {out: node for node in graph.node for out in node.output}
    output = graph.output[0].name
    needed, seen, stack = [latent], {latent, *weights}, [output]
    while stack:
        node = made[stack.pop()]
        for name in node.input:
            if name and name not in seen:
                seen.add(name)
                # A graph input the decoder reads (a speaker id) is fed to it directly.
                (stack if name in made else needed).append(name)
    inputs = [item.name for item in graph.input]
    if not set(needed) <= {latent, *inputs} or set(needed) & {"input", "input_lengths"}:
        return None  # the decoder reads more of the sentence than its latent frames
    extractor = onnx.utils.Extractor(model)
    front = extractor.extract_model(inputs, [latent])
    decoder = extractor.extract_model(needed, [output])
    return Halves(front.SerializeToString(), decoder.SerializeToString(), latent)
