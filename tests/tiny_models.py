"""Tiny randomly initialised speech models, saved like hub checkpoints for the user's code path.

Each builder writes ``config.json``, the weights and ``preprocessor_config.json`` into ``directory``
and returns it; pass the directory to ``vqpool.upstream.load_upstream``. The CNN keeps
wav2vec 2.0's kernels and strides (400-sample receptive field, one frame per 20 ms at 16 kHz);
every width is tiny so a forward pass takes milliseconds.
"""

from pathlib import Path

import torch
from transformers import (
    HubertConfig,
    HubertModel,
    Wav2Vec2Config,
    Wav2Vec2FeatureExtractor,
    Wav2Vec2ForPreTraining,
    WavLMConfig,
    WavLMModel,
)

TINY = dict(
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=48,
    conv_dim=(16,) * 7,
    num_conv_pos_embeddings=16,
    num_conv_pos_embedding_groups=2,
)


def _save(model, directory: str | Path, do_normalize: bool, attention_mask: bool) -> Path:
    directory = Path(directory)
    model.save_pretrained(directory)
    Wav2Vec2FeatureExtractor(
        feature_size=1,
        sampling_rate=16000,
        padding_value=0.0,
        do_normalize=do_normalize,
        return_attention_mask=attention_mask,
    ).save_pretrained(directory)
    return directory


def make_wav2vec2_pretraining(
    directory: str | Path, norm: str = "group", do_normalize: bool | None = None, seed: int = 0
) -> Path:
    """``Wav2Vec2ForPreTraining`` with a 2 x 8 quantizer; ``norm="group"`` is base-like (no input
    normalisation by default), ``"layer"`` is large/XLS-R-like (stable layer norm, normalised input)."""
    layer = norm == "layer"
    torch.manual_seed(seed)
    config = Wav2Vec2Config(
        **TINY,
        feat_extract_norm=norm,
        do_stable_layer_norm=layer,
        conv_bias=layer,
        num_codevector_groups=2,
        num_codevectors_per_group=8,
        codevector_dim=16,
        proj_codevector_dim=16,
        architectures=["Wav2Vec2ForPreTraining"],
    )
    return _save(
        Wav2Vec2ForPreTraining(config),
        directory,
        layer if do_normalize is None else do_normalize,
        layer,
    )


def make_hubert(directory: str | Path, do_normalize: bool = False, seed: int = 0) -> Path:
    """``HubertModel`` (group-norm CNN, like hubert-base): frames only, no quantizer."""
    torch.manual_seed(seed)
    config = HubertConfig(**TINY, feat_extract_norm="group", architectures=["HubertModel"])
    return _save(HubertModel(config), directory, do_normalize, False)


def make_wavlm(directory: str | Path, do_normalize: bool = True, seed: int = 0) -> Path:
    """``WavLMModel`` with a layer-norm CNN and stable layer norm (like wavlm-large)."""
    torch.manual_seed(seed)
    config = WavLMConfig(
        **TINY,
        feat_extract_norm="layer",
        do_stable_layer_norm=True,
        conv_bias=True,
        num_buckets=16,
        max_bucket_distance=50,
        architectures=["WavLMModel"],
    )
    return _save(WavLMModel(config), directory, do_normalize, True)


def _random_codebooks(model, seed: int) -> None:
    """Codecs zero their codebooks at initialisation (they are learned); random ones make the
    tiny codecs give varied codes."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, buffer in model.named_buffers():
            if name.endswith("codebook.embed_sum"):
                buffer.copy_(torch.randn(buffer.shape, generator=generator))
        for module in model.modules():  # Mimi caches embed_sum / cluster_usage
            if hasattr(module, "_embed"):
                module._embed = None


def make_encodec(directory: str | Path, seed: int = 0) -> Path:
    """``EncodecModel`` at 24 kHz like encodec_24khz (causal, no chunks): hop 320 (75 Hz),
    8 levels of 16 codes at its largest bandwidth; the demo's random codec."""
    from vqpool.demo import save_random_encodec

    return save_random_encodec(directory, seed=seed)


def make_dac(directory: str | Path, seed: int = 0) -> Path:
    """``DacModel`` at 16 kHz like dac_16khz (not causal): hop 320 (50 Hz), 4 levels of 16."""
    from transformers import DacConfig, DacModel

    torch.manual_seed(seed)
    config = DacConfig(encoder_hidden_size=4, decoder_hidden_size=8, n_codebooks=4, codebook_size=16,
                       codebook_dim=4, downsampling_ratios=[2, 4, 5, 8], sampling_rate=16000)
    model = DacModel(config).eval()
    _random_codebooks(model, seed)
    model.save_pretrained(directory)
    return Path(directory)


def make_mimi(directory: str | Path, seed: int = 0) -> Path:
    """``MimiModel`` at 24 kHz like kyutai/mimi: 12.5 Hz (hop 1920), 4 levels of 16 codes
    (one semantic, three acoustic)."""
    from transformers import MimiConfig, MimiModel

    torch.manual_seed(seed)
    config = MimiConfig(hidden_size=16, num_filters=4, codebook_size=16, codebook_dim=8, num_quantizers=4,
                        vector_quantization_hidden_dimension=8, upsample_groups=16, num_hidden_layers=1,
                        intermediate_size=16, num_attention_heads=2, num_key_value_heads=2,
                        sliding_window=16, max_position_embeddings=256)
    model = MimiModel(config).eval()
    _random_codebooks(model, seed)
    model.save_pretrained(directory)
    return Path(directory)
