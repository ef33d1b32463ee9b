"""Speech encoders from the transformers library: the wav2vec 2.0 family and any other AutoModel.

Pre-training checkpoints (``Wav2Vec2ForPreTraining`` and its kin) carry the quantizer whose codes
VQ pooling was designed for: the codes are the argmax of the quantizer's linear projection of
the layer-normalised CNN features, per codebook, with no Gumbel noise and no masking. Other
encoders (HuBERT, WavLM, data2vec-audio, fine-tuned wav2vec2) give frames only; their codes come
from a k-means codebook. Loading is offline unless the caller allows a download.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from vqpool.errors import VqpoolError
from vqpool.tensors import length_mask
from vqpool.upstream.base import Hidden, Upstream
from vqpool.upstream.codes import CodeSource, QuantizerCodes
from vqpool.upstream.hub import load_config, missing_model, unloadable_weights
from vqpool.upstream.registry import register_upstream, upstream_names


def normalize_waveforms(waveforms: Tensor, lengths: Tensor) -> Tensor:
    """Zero mean, unit variance per utterance over its true samples, padding 0.

    The same formula as transformers' ``Wav2Vec2FeatureExtractor.zero_mean_unit_var_norm``.
    """
    mask = length_mask(lengths, waveforms.shape[1])
    count = lengths[:, None].to(waveforms.dtype)
    mean = (waveforms * mask).sum(dim=1, keepdim=True) / count
    variance = ((waveforms - mean).square() * mask).sum(dim=1, keepdim=True) / count
    return (waveforms - mean) / torch.sqrt(variance + 1e-7) * mask


def near_names(spec: str) -> list[str]:
    """The registered upstreams that ``spec`` looks like a typo of, closest first."""
    from difflib import get_close_matches

    names = named_upstreams()
    return get_close_matches(spec.lower(), names, n=len(names), cutoff=0.6)


def named_upstreams() -> list[str]:
    """The registered upstreams other than this module's, which takes every other name."""
    return [name for name in upstream_names() if name != TransformersUpstream.kind]


def _load(spec: str, allow_download: bool) -> tuple[Any, dict[str, Any]]:
    """The model (pre-training class when it has a quantizer) and its feature-extractor settings."""
    from transformers import AutoFeatureExtractor, AutoModel, AutoModelForPreTraining

    local_only = not allow_download
    config = load_config(spec, allow_download, near=near_names(spec), known=named_upstreams())
    pretraining = any(name.endswith("ForPreTraining") for name in config.architectures or ())
    loader = AutoModelForPreTraining if pretraining else AutoModel
    try:
        model = loader.from_pretrained(spec, local_files_only=local_only, trust_remote_code=False)
    except OSError as error:
        if Path(spec).is_dir():
            raise unloadable_weights(Path(spec), error) from None
        raise missing_model(spec, allow_download, error, near=near_names(spec), known=named_upstreams()) from error
    except ValueError as error:
        raise VqpoolError(
            f"{spec}: model type {config.model_type!r} is not a speech encoder ({error})"
        ) from error
    except Exception as error:  # damaged weights: safetensors, pickle and torch raise many types
        raise unloadable_weights(Path(spec), error) from None
    try:
        processor = AutoFeatureExtractor.from_pretrained(spec, local_files_only=local_only,
                                                         trust_remote_code=False)
        processor = processor.to_dict()
    except OSError as error:
        local = Path(spec) / "preprocessor_config.json"
        if local.is_file():  # there, but damaged: its defaults would change the frames silently
            raise VqpoolError(f"{local}: cannot read the feature extractor's settings "
                              f"({str(error).strip().splitlines()[0][:160]})") from None
        processor = {}  # no preprocessor_config.json: transformers' defaults below
    settings = {
        "do_normalize": bool(processor.get("do_normalize", True)),
        "sampling_rate": int(processor.get("sampling_rate", 16000)),
        "preprocessor_config": bool(processor),
    }
    return model, settings


class TransformersUpstream(Upstream):
    kind = "transformers"

    def __init__(self, spec: str, *, allow_download: bool = False, **options) -> None:
        self.name = spec
        model, self.preprocessing = _load(spec, allow_download)
        self.encoder = model.base_model  # Wav2Vec2Model inside Wav2Vec2ForPreTraining
        self.quantizer = getattr(model, "quantizer", None)
        config = model.config
        if not hasattr(self.encoder, "feature_extractor"):
            raise VqpoolError(f"{spec}: {type(model).__name__} is not a speech encoder with a CNN")
        if getattr(config, "add_adapter", False):
            raise VqpoolError(f"{spec}: an adapter (add_adapter=True) changes the frame rate")
        self.config = config
        self.model = model
        self.sample_rate = self.preprocessing["sampling_rate"]
        self.frame_rate = self.sample_rate / float(torch.tensor(config.conv_stride).prod())
        # The transformer's input and every block's output: 13 for base, 25 for large.
        self.num_layers = config.num_hidden_layers + 1
        self.layer_dim = config.hidden_size
        self.named_dims = {"cnn": config.conv_dim[-1]}
        # Group norm in the first conv normalises over time, so zero padding changes the frames.
        self.pads_safely = getattr(config, "feat_extract_norm", "group") == "layer"
        self.min_samples = self._receptive_field()
        super().__init__(**options)
        # fp32 whatever the checkpoint's dtype; eval() disables dropout, masking and Gumbel noise.
        self.model.float().to(self.device).eval()

    def own_codes(self) -> CodeSource | None:
        if self.quantizer is None:
            return None
        return QuantizerCodes(self, self.quantizer.num_groups, self.quantizer.num_vars)

    def _receptive_field(self) -> int:
        """Samples one output frame sees: the shortest input that gives a frame."""
        size = 1
        layers = zip(self.config.conv_kernel, self.config.conv_stride, strict=True)
        for kernel, stride in reversed(list(layers)):
            size = (size - 1) * stride + kernel
        return size

    def num_frames(self, num_samples: Tensor | int) -> Tensor | int:
        frames = self.model._get_feat_extract_output_lengths(torch.as_tensor(num_samples))
        return frames if isinstance(num_samples, Tensor) else int(frames)

    def _forward(self, waveforms: Tensor, lengths: Tensor) -> Hidden:
        if self.preprocessing["do_normalize"]:
            waveforms = normalize_waveforms(waveforms, lengths)
        # Models that do not pad safely only ever see equal lengths: no mask, as transformers
        # documents for wav2vec2-base.
        attention_mask = (
            length_mask(lengths, waveforms.shape[1]).long() if self.pads_safely else None
        )
        captured: dict[str, Tensor] = {}
        hook = self.encoder.feature_extractor.register_forward_hook(
            lambda _module, _inputs, output: captured.update(cnn=output.transpose(1, 2))
        )
        try:
            outputs = self.encoder(
                waveforms, attention_mask=attention_mask, output_hidden_states=True
            )
        finally:
            hook.remove()
        # transformers 4 returned last_hidden_state as the final hidden state (after the final
        # layer norm of stable-layer-norm models: large, XLS-R); transformers 5 returns it before
        # that norm. Keep the version-independent definition.
        layers = [*outputs.hidden_states[:-1], outputs.last_hidden_state]
        codes = None
        if self.codes is not None and self.codes.kind == "quantizer":  # not replaced
            logits = self.quantizer.weight_proj(outputs.extract_features)
            shape = (self.quantizer.num_groups, self.quantizer.num_vars)
            codes = logits.unflatten(-1, shape).argmax(dim=-1)
        return Hidden(layers=layers, codes=codes, named=captured)

    def describe(self) -> dict[str, Any]:
        import transformers

        description = super().describe()
        description["versions"]["transformers"] = transformers.__version__
        description["model"] = {
            "class": type(self.model).__name__,
            "model_type": self.config.model_type,
            "name_or_path": self.config.name_or_path,
            "feat_extract_norm": getattr(self.config, "feat_extract_norm", None),
            **self.preprocessing,
        }
        return description


register_upstream(
    TransformersUpstream.kind,
    lambda spec, *, allow_download, **options: TransformersUpstream(spec, allow_download=allow_download, **options),
    fallback=True, builtin=True,
    description="any transformers speech encoder with a CNN front end (hub id or folder): "
                "wav2vec 2.0 with its quantizer, HuBERT, WavLM, data2vec-audio, ...")
