"""The paper's two tables for one upstream in one call: prepare, extract, bench, probe, report.

Each task's store is written under ``work_dir`` and resumed when it is already (partly) there, so
a run stopped after hours of extraction loses only the batch in flight. Progress lines go to
this module's logger (INFO: ``vqpool reproduce`` shows them on stderr); the tables are printed to
stdout, as the command's output.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from vqpool.errors import ParameterError, VqpoolError

log = logging.getLogger(__name__)

CORPUS_OF_TASK = {"kws": "speechcommands", "sid": "voxceleb1", "ic": "fluent", "er": "iemocap"}


def reproduce(
    upstream: str,
    roots: Mapping[str, str | os.PathLike],
    work_dir: str | os.PathLike,
    *,
    tasks: Sequence[str] = tuple(CORPUS_OF_TASK),
    layers: str = "mean",
    codebook: str | os.PathLike | None = None,
    device: str = "cpu",
    seeds: int = 3,
    batch_seconds: float = 60.0,
    allow_download: bool = False,
    on_bad_audio: str = "error",
) -> Path:
    """Run both protocols of docs/methods.md section 6 on ``tasks``; return the report folder.

    ``roots`` maps each task (kws, sid, ic, er) to its corpus folder in the official layout.
    """
    from vqpool.data import prepare
    from vqpool.evaluate import run_bench, run_probe
    from vqpool.extract import extract
    from vqpool.report import to_text, write_report
    from vqpool.upstream import load_upstream

    unknown = [task for task in tasks if task not in CORPUS_OF_TASK]
    if unknown:
        raise VqpoolError(f"unknown task(s) {', '.join(unknown)}; choose from {', '.join(CORPUS_OF_TASK)}")
    stray = [task for task in roots if task not in CORPUS_OF_TASK]
    if stray:
        raise ParameterError("roots", f"names {', '.join(stray)}, not a task; tasks: {', '.join(CORPUS_OF_TASK)}")
    missing = [task for task in tasks if task not in roots]
    if missing:
        raise ParameterError("roots", f"has no entry for {', '.join(missing)} (e.g. kws=/data/speech_commands)")
    absent = [f"{task}={roots[task]}" for task in tasks if not Path(roots[task]).is_dir()]
    if absent:
        raise VqpoolError(f"corpus folder not found: {', '.join(absent)}")
    work = Path(work_dir)
    results = work / "results.jsonl"
    model = load_upstream(
        upstream, layers=layers, codebook=codebook, device=device, allow_download=allow_download
    )
    if model.num_codebooks is None:
        raise ParameterError("codebook", f"is needed: {upstream} has no quantizer (fit one with `vqpool codebook fit`)")
    for task in tasks:
        corpus = CORPUS_OF_TASK[task]
        log.info("[vqpool reproduce] %s: %s at %s", task, corpus, roots[task])
        rows = prepare(corpus, roots[task])
        store = extract(
            rows, model, work / f"store-{task}", resume=True, corpus=corpus, task=task,
            batch_seconds=batch_seconds, on_bad_audio=on_bad_audio,
        )
        run_bench(store, "all", task=task, results=results, device=device)
        run_probe(store, task=task, seeds=seeds, results=results, device=device)
    files = write_report([results], work / "report")
    for table in files.tables:
        print(to_text(table), end="\n\n")
    return work / "report"
