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
