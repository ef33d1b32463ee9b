"""`vqpool bench`: the unsupervised 1-NN benchmark of pooling methods over a feature store."""

import argparse

EPILOG = """example:
  vqpool bench --store feats/speechcommands-base --methods all
  vqpool bench --store feats/iemocap-base --methods ap,vq-lp,vq-sif --a 1e-4 --fold 1
Results are appended to STORE/results.jsonl (or --results); `vqpool report` turns them into tables."""


def add_pool_arguments(parser: argparse.ArgumentParser, scope: str = "", defaults: str = "") -> None:
    """The pooling options every verb that pools takes (``scope`` prefixes their help)."""
    parser.add_argument("--semantics", help=f"{scope}paper or reference, the reference "
                        f"implementation's partition semantics{defaults or ' (default: paper)'}")
    parser.add_argument("--a", type=float, help=f"{scope}vq-sif parameter a (default: 1e-3)")
    parser.add_argument("--smoothing", type=float,
                        help=f"{scope}added to every corpus code count (default: 1)")
    parser.add_argument("--option", action="append", default=[], metavar="NAME=VALUE",
                        help=f"{scope}an option of a registered pooling method (repeatable)")


def given_pool_options(args: argparse.Namespace) -> dict:
    """The pooling options given on the command line, registered methods' ones included."""
    given = {k: v for k in ("semantics", "a", "smoothing") if (v := getattr(args, k)) is not None}
    return {**given, **method_options(args.option)}


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """Options shared by `bench` and `probe`."""
    parser.add_argument("--store", required=True, help="feature store folder (from `vqpool extract`)")
    parser.add_argument("--task", help="task name (default: the store's task or corpus)")
    parser.add_argument("--fold", default="all",
                        help="fold number(s), counted from 1, comma separated, or 'all' (default)")
    add_pool_arguments(parser, "", " (default: paper, or what a pooled-only store was pooled "
                       "with; likewise for --a and --smoothing)")
    parser.add_argument("--include-validation", action="store_true",
                        help="fit corpus statistics on training + validation (the reference "
                        "implementation's choice; default: training only)")
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cuda (default: cpu)")
    parser.add_argument("--results", help="JSON-lines file to append to (default: STORE/results.jsonl)")


def common_options(args: argparse.Namespace) -> dict:
    return {
        "task": args.task,
        "folds": args.fold,
        "options": given_pool_options(args),
        "include_validation": args.include_validation,
        "device": args.device,
        "results": args.results,
    }


def method_options(pairs: list[str]) -> dict[str, str]:
    """``--option NAME=VALUE`` pairs; pooling parses each value to its option's type."""
    from vqpool.errors import VqpoolError

    options = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise VqpoolError(f"--option {pair!r}: write NAME=VALUE, e.g. --option power=0.5")
        options[name.strip()] = value.strip()
    return options


def method_list(text: str) -> list[str] | str:
    return "all" if text == "all" else [m.strip() for m in text.split(",") if m.strip()]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="unsupervised 1-NN benchmark of pooling methods over a store (paper Table 1)",
        description="Pool the training and test splits with each method (corpus statistics from "
        "the training split only) and classify each test vector by its most cosine-similar "
        "training vector (exact search). Multi-fold corpora report the mean of their folds.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_common_arguments(parser)
    parser.add_argument("--methods", default="all", help="'all' (default) or a comma-separated list")
    parser.add_argument("--chunk", type=int, help="test vectors per similarity block (default: auto)")
    parser.add_argument("--search", default="auto",
                        help="1-NN backend: faiss (needs pip install 'vqpool[faiss]'), matmul, or "
                        "auto (default: faiss when installed and --device is cpu); the same answers")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from vqpool.evaluate.bench import run_bench
    from vqpool.evaluate.results import format_table

    rows = run_bench(args.store, method_list(args.methods), chunk=args.chunk, search=args.search,
                     **common_options(args))
    print(format_table(rows))
    return 0
