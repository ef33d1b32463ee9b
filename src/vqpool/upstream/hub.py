"""Loading transformers models offline-first, with one-line errors: configs, missing models,
damaged weights, and model folders that would run their own code (refused)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vqpool.errors import ParameterError, VqpoolError


def missing_model(spec: str, allow_download: bool, error: Exception, parameter: str = "upstream",
                  *, near: Sequence[str] = (), known: Sequence[str] = ()) -> VqpoolError:
    """What to say of a model that is neither a folder nor in the cache; ``near`` are the
    upstream names among ``known`` that ``spec`` looks like a typo of."""
    from huggingface_hub.constants import HF_HUB_CACHE, HF_HUB_OFFLINE

    if spec.startswith((".", "/", "~")) or spec.count("/") > 1:  # a path, not "namespace/name"
        return VqpoolError(f"{spec}: no such model directory")
    guess = (f"{spec!r} is not a registered upstream: did you mean {' or '.join(near)}? (The "
             f"registered upstreams are {', '.join(known)}; any other name is taken "
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


def unloadable_weights(folder: Path, error: Exception) -> VqpoolError:
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


def load_config(spec: str, allow_download: bool, parameter: str = "upstream", *,
                near: Sequence[str] = (), known: Sequence[str] = ()) -> Any:
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
        raise missing_model(spec, allow_download, error, parameter, near=near, known=known) from error
