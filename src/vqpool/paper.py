"""Which of the paper's upstreams a model is: the one rule evaluation and the report share.

It sits at the bottom of the package (it imports nothing of vqpool) so that ``evaluate`` can
stamp result rows with it and ``report`` can check them with it, and ``report`` imports
``evaluate``, never the reverse.
"""

from pathlib import Path

# The paper's upstreams (../shared/paper/README.md), recognised by hub id or a local folder's name.
PAPER_HUB_IDS = {
    "facebook/wav2vec2-base": "base",
    "facebook/wav2vec2-large": "large",
    "facebook/wav2vec2-xls-r-300m": "xlsr",
}
# What a local copy's store header must show (Upstream.describe()): hidden size, and hidden
# states returned (CNN/projection output + transformer blocks). A name alone proves nothing.
PAPER_SIZES = {"base": (768, 13), "large": (1024, 25), "xlsr": (1024, 25)}
_FOLDER_NAMES = {hub_id.split("/")[1]: name for hub_id, name in PAPER_HUB_IDS.items()}


def paper_upstream(
    spec: str | None, *, dim: int | None, num_layers: int | None, declared: str | None = None
) -> tuple[str | None, str]:
    """The paper's name for an upstream, or ``None`` and why it is not comparable.

    ``dim`` and ``num_layers`` are what the store header shows of the model (``None`` when it
    shows nothing); ``declared`` is a paper name claimed for it (a result row's
    ``paper_upstream``). A hub id of the paper's models is theirs. Anything else (a local folder
    named like one, or a declared name) must also show the model's size.
    """
    if spec is None:
        return None, "the results do not name their upstream"
    folder = _FOLDER_NAMES.get(Path(spec.rstrip("/")).name)
    name = PAPER_HUB_IDS.get(spec) or declared or folder
    how = "named like" if name == folder else "declared as"
    if name not in PAPER_SIZES:
        return None, (
            f"{spec} is not one of the paper's upstreams ({', '.join(PAPER_HUB_IDS)}, "
            "or a local copy of one)"
        )
    if spec in PAPER_HUB_IDS and dim is None and num_layers is None:
        return name, ""
    hidden, layers = PAPER_SIZES[name]
    if dim != hidden or num_layers not in (None, layers):
        shown = "no model size" if dim is None else f"{dim}-dim frames"
        shown += f" from {num_layers} hidden states" if num_layers is not None else ""
        return None, (
            f"{spec} is {how} the paper's {name} model, but its store header shows {shown}, "
            f"not {hidden}-dim from {layers}"
        )
    return name, ""
