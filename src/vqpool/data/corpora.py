"""The corpus registry: a name -> its recipe module, its task, and one ``prepare`` for all."""

import inspect
import os
from importlib import import_module
from pathlib import Path

from vqpool.data.common import Row
from vqpool.errors import VqpoolError

# Recipe modules; ``csv`` lives in ``custom`` so as not to read like the standard library.
RECIPES = {
    "speechcommands": "speechcommands",
    "voxceleb1": "voxceleb1",
    "fluent": "fluent",
    "iemocap": "iemocap",
    "fsdd": "fsdd",
    "folder": "folder",
    "csv": "custom",
    "synth": "synth",
}
CORPORA = tuple(RECIPES)
# The paper's four tasks by their column names; other corpora name their own task.
TASK_OF_CORPUS = {
    "speechcommands": "kws",
    "voxceleb1": "sid",
    "fluent": "ic",
    "iemocap": "er",
    "fsdd": "fsdd-digit",
    "folder": "folder",
    "csv": "csv",
    "synth": "synth",
}


def task_of(name: str, **options: object) -> str:
    """The task a corpus prepared with ``options`` poses: FSDD's depends on its label."""
    if name == "fsdd" and options.get("label") == "speaker":
        return "fsdd-speaker"
    return TASK_OF_CORPUS[name]


def prepare(name: str, root: str | os.PathLike, **options: object) -> list[Row]:
    """Manifest rows (id, path, label, split, speaker[, session]) of corpus ``name`` at ``root``.

    ``options`` are the recipe's own (fsdd: label, split, seed; folder, csv: seed); an option
    a recipe does not take is an error rather than silently ignored. ``None`` means "not given",
    so command lines can pass their optional flags straight through.
    """
    options = {key: value for key, value in options.items() if value is not None}
    if name not in RECIPES:
        raise VqpoolError(f"unknown corpus {name!r}; choose from {', '.join(CORPORA)}")
    recipe = import_module(f"vqpool.data.{RECIPES[name]}").prepare
    accepted = list(inspect.signature(recipe).parameters)[1:]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise VqpoolError(
            f"corpus {name} has no option {', '.join(unknown)} "
            f"(its options: {', '.join(accepted) or 'none'})"
        )
    rows = recipe(Path(root).absolute(), **options)
    if not rows:
        raise VqpoolError(f"{root}: no utterances found for corpus {name}")
    seen: set[str] = set()
    for row in rows:
        if row["id"] in seen:
            raise VqpoolError(f"{root}: utterance {row['id']!r} appears twice")
        seen.add(row["id"])
    return rows
