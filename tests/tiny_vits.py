"""A tiny two-speaker VITS model with random weights, saved as a real Coqui checkpoint.

About 355,000 parameters: nothing it says is words, but it goes through Coqui's real
loading and inference path. Inference noise is off, so its output is deterministic and
depends only on the text and the speaker.
"""

from __future__ import annotations

import json
from pathlib import Path

SPEAKERS = ("ada", "bob")


def build_tiny_vits(folder: Path) -> tuple[Path, Path]:
    """Write ``model.pth``, ``config.json`` and ``speakers.json`` into ``folder``."""
    import torch
    from TTS.config.shared_configs import BaseAudioConfig
    from TTS.tts.configs.vits_config import VitsArgs, VitsConfig
    from TTS.tts.models.vits import Vits

    folder.mkdir(parents=True, exist_ok=True)
    speakers = folder / "speakers.json"
    speakers.write_text(json.dumps({name: i for i, name in enumerate(SPEAKERS)}), "utf-8")
    args = VitsArgs(
        hidden_channels=32,
        hidden_channels_ffn_text_encoder=64,
        num_layers_text_encoder=1,
        num_layers_posterior_encoder=1,
        num_layers_flow=1,
        use_sdp=False,
        resblock_kernel_sizes_decoder=[3],
        resblock_dilation_sizes_decoder=[[1, 3, 5]],
        upsample_rates_decoder=[8, 8, 4],
        upsample_initial_channel_decoder=32,
        upsample_kernel_sizes_decoder=[16, 16, 8],
        use_speaker_embedding=True,
        speakers_file=str(speakers),
        speaker_embedding_channels=16,
        init_discriminator=False,
        inference_noise_scale=0.0,
        inference_noise_scale_dp=0.0,
    )
    config = VitsConfig(
        model_args=args,
        audio=BaseAudioConfig(sample_rate=22_050),
        use_phonemes=False,  # characters in, so no phonemizer is needed
        text_cleaner="english_cleaners",
        use_speaker_embedding=True,
        speakers_file=str(speakers),
    )
    torch.manual_seed(1)
    model = Vits(config)
    model_path, config_path = folder / "model.pth", folder / "config.json"
    torch.save({"model": model.state_dict()}, model_path)
    config.save_json(str(config_path))
    return model_path, config_path
