"""`vqpool verify`: read every byte of a store and list every damaged entry."""

import argparse
import sys
from pathlib import Path

EPILOG = """example:
  vqpool verify stores/fsdd-ge2e
Exit status 0 when every store is exactly as written, 1 when a problem was found."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "verify",
        help="check every byte of a feature store against its checksums",
        description="Read every array of a feature store and compare it with the CRC-32 its "
        "index line recorded; check the index lines, that no utterance appears twice, that "
        "the header is the one the store was sealed with and that every entry fits it. Every "
        "problem is listed, one per line.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("stores", nargs="+", type=Path, metavar="STORE", help="feature store folder(s)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from vqpool.store import FeatureStore, verify

    failed = False
    for store in args.stores:
        problems = verify(store, progress=sys.stderr.isatty())
        for problem in problems:
            print(problem)
        if problems:
            failed = True
            print(f"{store}: {len(problems)} problem{'s' * (len(problems) > 1)} found", file=sys.stderr)
        else:
            opened = FeatureStore(store, allow_partial=True)
            state = "complete" if opened.complete else "unfinished"
            print(f"{store}: all {len(opened)} utterances intact ({state} store)")
    return 1 if failed else 0
