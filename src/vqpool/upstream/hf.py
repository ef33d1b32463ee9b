"""Speech encoders from the transformers library: the wav2vec 2.0 family and any other AutoModel.

Pre-training checkpoints (``Wav2Vec2ForPreTraining`` and its kin) carry the quantizer whose codes
VQ pooling was designed for: the codes are the argmax of the quantizer's linear projection of
the layer-normalised CNN features, per codebook, with no Gumbel noise and no masking. Other
encoders (HuBERT, WavLM, data2vec-audio, fine-tuned wav2vec2) give frames only; their codes come
from a k-means codebook. Loading is offline unless the caller allows a download.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from vqpool.errors import ParameterError, VqpoolError
from vqpool.tensors import length_mask
from vqpool.upstream.base import Hidden, Upstream


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
    """The built-in upstreams that ``spec`` looks like a typo of, closest first."""
    from difflib import get_close_matches

    from vqpool.upstream import BUILTIN_UPSTREAMS

    return get_close_matches(spec.lower(), BUILTIN_UPSTREAMS, n=len(BUILTIN_UPSTREAMS), cutoff=0.6)


def _missing_model(spec: str, allow_download: bool, error: Exception, parameter: str = "upstream") -> VqpoolError:
    from huggingface_hub.constants import HF_HUB_CACHE, HF_HUB_OFFLINE

    if spec.startswith((".", "/", "~")) or spec.count("/") > 1:  # a path, not "namespace/name"
        return VqpoolError(f"{spec}: no such model directory")
    from vqpool.upstream import BUILTIN_UPSTREAMS

    near = near_names(spec) if parameter == "upstream" else []  # codes_from names no upstream
    guess = (f"{spec!r} is not a built-in upstream: did you mean {' or '.join(near)}? (The "
             f"built-in upstreams are {' and '.join(BUILTIN_UPSTREAMS)}; any other name is taken "
             "for a transformers model.) As a model, ") if near else ""
    model = "it" if near else f"model {spec!r}"
    if allow_download and not HF_HUB_OFFLINE:
        return ParameterError(parameter, f"{guess}{model} could not be downloaded from the "
                              f"Hugging Face hub: {error}")
    how = (
        "unset HF_HUB_OFFLINE and allow downloads ({allow_download}) to fetch it"
        if HF_HUB_OFFLINE
        else "allow downloads ({allow_download}) to fetch it once"
    )
    return ParameterError(
        parameter, f"{guess}{model} is neither a local directory nor in the Hugging Face "
        f"cache ({HF_HUB_CACHE}). Download it into that cache ({how}, or run `hf download {spec}`), "
        "or pass the path of a directory holding its config.json, weights and "
        "preprocessor_config.json."
    )


WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
           "pytorch_model.bin.index.json")


def _unloadable_weights(folder: Path, error: Exception) -> VqpoolError:
    """One line naming the weights file that could not be loaded, and why."""
    found = [folder / name for name in WEIGHTS if (folder / name).is_file()]
    where = found[0] if found else folder
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    if "weights_only" in str(error) or "Unpickl" in type(error).__name__:
        why = ("it holds Python objects besides tensors, and loading those could run any code; "
               "vqpool loads tensors only: use the model's safetensors file, or a copy from its source")
    else:
        why = f"damaged or not a weights file ({type(error).__name__}: {text[:160]})"
    return VqpoolError(f"{where}: cannot load the model's weights: {why}")


def refuse_custom_code(spec: str, parameter: str = "upstream") -> None:
    """A model folder whose config maps to its own Python code (``auto_map``) is refused: vqpool
    never runs code that comes with a model (transformers would ask on stdin)."""
    config = Path(spec) / "config.json"
    try:
        mapped = config.is_file() and "auto_map" in json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError):
        return  # transformers names what is wrong with the file
    if mapped:
        raise ParameterError(parameter, f"{spec!r} needs its own Python code (auto_map in "
                             f"{config}); vqpool runs no code from a model folder")


def load_config(spec: str, allow_download: bool, parameter: str = "upstream") -> Any:
    """A transformers model's config from a folder, or the hub (cache only unless downloads are
    allowed); what is missing is said in one error naming ``parameter``."""
    from transformers import AutoConfig

    refuse_custom_code(spec, parameter)
    try:
        return AutoConfig.from_pretrained(spec, local_files_only=not allow_download,
                                          trust_remote_code=False)
    except (OSError, ValueError) as error:
        if Path(spec).is_dir():
            raise VqpoolError(f"{spec}: not a transformers model directory ({error})") from error
        raise _missing_model(spec, allow_download, error, parameter) from error


def _load(spec: str, allow_download: bool) -> tuple[Any, dict[str, Any]]:
    """The model (pre-training class when it has a quantizer) and its feature-extractor settings."""
    from transformers import AutoFeatureExtractor, AutoModel, AutoModelForPreTraining

    local_only = not allow_download
    config = load_config(spec, allow_download)
    pretraining = any(name.endswith("ForPreTraining") for name in config.architectures or ())
    loader = AutoModelForPreTraining if pretraining else AutoModel
    try:
        model = loader.from_pretrained(spec, local_files_only=local_only, trust_remote_code=False)
    except OSError as error:
        if Path(spec).is_dir():
            raise _unloadable_weights(Path(spec), error) from None
        raise _missing_model(spec, allow_download, error) from error
    except ValueError as error:
        raise VqpoolError(
            f"{spec}: model type {config.model_type!r} is not a speech encoder ({error})"
        ) from error
    except Exception as error:  # damaged weights: safetensors, pickle and torch raise many types
        raise _unloadable_weights(Path(spec), error) from None
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
        if self.quantizer is not None:
            self.num_codebooks = self.quantizer.num_groups
            self.codebook_size = self.quantizer.num_vars
        super().__init__(**options)
        # fp32 whatever the checkpoint's dtype; eval() disables dropout, masking and Gumbel noise.
        self.model.float().to(self.device).eval()

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
        if self.quantizer is not None and self.codebook is None and self.code_source is None:
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
