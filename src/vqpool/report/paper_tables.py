"""The paper's own figures (Tables 1 and 2 of Park et al., Interspeech 2023), shipped as package data.

The CSVs are also the single source of the paper's layout: their row order is the method order
of our tables and their spelling ("VQ-LP", "SoftDecay") is how methods are labelled.
"""

import csv
from collections.abc import Mapping
from functools import cache
from importlib.resources import files
from typing import Any

from vqpool.evaluate.results import header_summary
from vqpool.paper import paper_upstream

# The paper's corpus for each of its tasks: the same task on another corpus is not comparable.
PAPER_CORPORA = {"kws": "speechcommands", "sid": "voxceleb1", "ic": "fluent", "er": "iemocap"}
PAPER_TASKS = tuple(PAPER_CORPORA)
PROTOCOLS = {"1nn": "table1_unsupervised.csv", "probe": "table2_supervised.csv"}
PROTOCOL_TITLES = {
    "1nn": "Unsupervised, 1-nearest-neighbour (paper Table 1)",
    "probe": "Supervised, linear probe (paper Table 2)",
}
# Known misprints (paper README), noted under any table that shows the row beside ours.
CAVEATS = {
    ("probe", "base", "sp"): "the paper's base SP row (Table 2) looks mis-printed: its AVG 79.18 "
    "is not the mean of its tasks (78.23), and its KWS, IC and ER equal the SAP row's.",
}
PAPER_UPSTREAM_TITLES = {
    "base": "wav2vec 2.0 base",
    "large": "wav2vec 2.0 large (LS-960)",
    "xlsr": "XLS-R 300M",
}


@cache
def _read(protocol: str) -> tuple[dict[str, str], ...]:
    text = files("vqpool.report").joinpath("paper").joinpath(PROTOCOLS[protocol]).read_text("utf-8")
    return tuple(csv.DictReader(text.splitlines()))


@cache
def method_order(protocol: str) -> tuple[str, ...]:
    """Method ids in the paper's row order for ``protocol``; other protocols' methods follow."""
    ordered = (
        [protocol, *(p for p in PROTOCOLS if p != protocol)]
        if protocol in PROTOCOLS
        else list(PROTOCOLS)
    )
    methods: dict[str, None] = {}
    for name in ordered:
        methods.update((row["method"].lower(), None) for row in _read(name))
    return tuple(methods)


@cache
def _labels() -> dict[str, str]:
    return {row["method"].lower(): row["method"] for name in PROTOCOLS for row in _read(name)}


def method_label(method: str) -> str:
    """The paper's spelling of a method id (``vq-lp`` -> ``VQ-LP``); unknown ids stay as they are."""
    return _labels().get(method, method)


def task_label(task: str) -> str:
    """Paper tasks in capitals as in the paper's columns; other corpora keep their own name."""
    return task.upper() if task in PAPER_TASKS else task


def paper_upstream_of(row: Mapping[str, Any]) -> tuple[str | None, str]:
    """The paper's name for a result row's upstream, or ``None`` and why it is not comparable
    (the rule of :func:`vqpool.paper.paper_upstream`, on what the row's store header shows:
    rows of every vqpool version, see :func:`vqpool.evaluate.results.header_summary`)."""
    shown = header_summary(row.get("store_header") or {})
    return paper_upstream(row.get("upstream"), dim=shown["dim"], num_layers=shown["num_layers"],
                          declared=row.get("paper_upstream"))


def paper_task_mismatch(task: str, corpus: str | None) -> str | None:
    """Why the paper has no figure for ``task`` on ``corpus``; ``None`` when it has."""
    if task not in PAPER_CORPORA:
        return f"{task} is not one of the paper's tasks"
    if corpus != PAPER_CORPORA[task]:
        return f"{task_label(task)} ran on {corpus or 'an unnamed corpus'}, not the paper's {PAPER_CORPORA[task]}"
    return None


def paper_figures(protocol: str, paper_upstream: str | None, method: str) -> dict[str, float]:
    """The paper's accuracies ``{task: percent, "avg": printed AVG}``; empty when it has none."""
    if protocol not in PROTOCOLS or paper_upstream is None:
        return {}
    for row in _read(protocol):
        if row["upstream"] == paper_upstream and row["method"].lower() == method:
            return {
                column.lower(): float(value)
                for column, value in row.items()
                if column not in ("upstream", "method")
            }
    return {}
