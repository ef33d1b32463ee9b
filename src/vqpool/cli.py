"""The ``vqpool`` command line: parses arguments and calls the API (no logic of its own).

Each verb lives in ``vqpool.commands.<verb>`` with ``register(subparsers)`` and ``run(args)``.
"""

import argparse
import errno
import os
import sys
from importlib import import_module

from vqpool._version import __version__
from vqpool.commands.logs import show_library_logs
from vqpool.errors import VqpoolError

VERBS = ("demo", "data", "extract", "verify", "relabel", "codebook", "stats", "bench", "probe",
         "report", "reproduce", "index", "search", "export")

# Library errors name Python parameters; the command line shows the flag a user types instead.
FLAGS = {
    "a": "--a",
    "allow_download": "--allow-download",
    "audio_column": "--audio-column",
    "batch_seconds": "--batch-seconds",
    "batch_size": "--batch-size",
    "chunk": "--chunk",
    "codebook": "--codebook",
    "codebook_size": "--size",
    "codes_from": "--codes-from",
    "codes_from.layer": "--code-layer",
    "codes_from.levels": "--code-levels",
    "codes_from.manifest": "--code-manifest",
    "codes_from.rate": "--code-rate",
    "corpus": "--corpus",
    "cuts": "--cuts",
    "device": "--device",
    "epochs": "--epochs",
    "folds": "--fold",
    "hf_dataset": "--hf-dataset",
    "keep_audio": "--keep-audio",
    "label_column": "--label-column",
    "layers": "--layers",
    "lr": "--lr",
    "max_points": "--max-points",
    "max_seconds": "--max-seconds",
    "method": "--methods",
    "no_codes": "--no-codes",
    "methods": "--methods",
    "num_codebooks": "--codebooks",
    "on_bad_audio": "--on-bad-audio",
    "options": "--option",
    "patience": "--patience",
    "pooled_only": "--pooled-only",
    "results": "--results",
    "resume": "--resume",
    "root": "--root",
    "roots": "--roots",
    "search": "--search",
    "seeds": "--seeds",
    "semantics": "--semantics",
    "smoothing": "--smoothing",
    "split": "--split",
    "split_column": "--split-column",
    "stats": "--stats",
    "task": "--task",
    "upstream": "--upstream",
    # index build, search, export
    "ef_construction": "--ef-construction", "ef_search": "--ef-search", "format": "--format",
    "hnsw_m": "--hnsw-m", "k": "-k", "kind": "--kind", "nlist": "--nlist", "nprobe": "--nprobe",
    "out": "--out", "overwrite": "--overwrite", "queries": "QUERY",
    "recall_queries": "--recall-queries", "splits": "--splits",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vqpool",
        description="Pool speech representations into utterance vectors without training, "
        "and benchmark every pooling method.",
    )
    parser.add_argument("--version", action="version", version=f"vqpool {__version__}")
    subparsers = parser.add_subparsers(dest="verb", metavar="VERB")
    for verb in VERBS:
        import_module(f"vqpool.commands.{verb}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    show_library_logs()
    if not sys.stderr.isatty():
        # Other libraries' bars (transformers' "Loading weights", hub downloads, datasets) would
        # write carriage-return lines into a log; vqpool's own progress writes plain lines there.
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.verb is None:
        parser.print_help()
        return 2
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except VqpoolError as error:
        print(f"vqpool {args.verb}: error: {describe(error, getattr(args, 'flags', None))}",
              file=sys.stderr)
        return 1
    except OSError as error:
        cause = disk_error(error)
        if cause is None:
            raise
        print(f"vqpool {args.verb}: error: {describe_disk_error(cause, args)}", file=sys.stderr)
        return 1


FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
READ_ONLY = (errno.EROFS, errno.EACCES, errno.EPERM)
# The flag naming where a verb writes, when it is not --out.
OUTPUT_FLAGS = {"bench": "--results", "probe": "--results", "reproduce": "--work"}


def disk_error(error: BaseException | None) -> OSError | None:
    """The disk-full or read-only error behind ``error`` (or among the errors it was raised
    while handling), if there is one."""
    while error is not None:
        if isinstance(error, OSError) and error.errno in FULL + READ_ONLY:
            return error
        error = error.__cause__ or error.__context__
    return None


def describe_disk_error(error: OSError, args: argparse.Namespace) -> str:
    """One line: the path, what went wrong and what to do."""
    flag = OUTPUT_FLAGS.get(args.verb, "--out")
    target = error.filename or getattr(args, flag.lstrip("-"), None) or "the output"
    if error.errno in FULL:
        if args.verb == "extract":
            todo = ("free space (or choose another --out), then run the same command with "
                    "--resume: finished utterances are kept")
        else:
            todo = f"free space or write elsewhere ({flag} PATH), then run it again"
        return f"{target}: {os.strerror(error.errno).lower()}; {todo}"
    return (f"{target}: cannot write there ({os.strerror(error.errno).lower()}); "
            f"choose a writable {flag} PATH")


def describe(error: VqpoolError, flags: dict[str, str] | None = None) -> str:
    """The error as a command-line user reads it: with flags in place of parameter names
    (an option a registered method declares is ``--option NAME=VALUE``). ``flags`` holds a
    verb's own spellings where they differ from `FLAGS` (``parser.set_defaults(flags=...)``)."""
    from vqpool.pooling.options import is_declared  # imports no torch

    table = {**FLAGS, **(flags or {})}
    return error.render(lambda name: table.get(name) or (f"--option {name}" if is_declared(name) else name))

if __name__ == "__main__":
    sys.exit(main())
