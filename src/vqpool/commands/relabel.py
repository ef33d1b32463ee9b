"""`vqpool relabel`: new labels, splits and metadata for a store, without extracting again."""

import argparse
from pathlib import Path

EPILOG = """example:
  vqpool relabel stores/fsdd --manifest fsdd.csv      (fsdd.csv edited: labels or splits changed)
  vqpool relabel stores/fsdd --corpus fsdd --root data/fsdd --label speaker
The rows must be those the store was extracted from (same ids and files, same order)."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "relabel",
        help="take a manifest's new labels, splits and metadata into a store (no re-extraction)",
        description="Replace the metadata of every utterance of a store (label, split, speaker and "
        "any other column) with the rows' own, keeping its frames and codes. Refused unless the "
        "rows name the same ids and audio files, in the same order, as when the store was "
        "extracted; the result is the store a fresh extraction of these rows would write.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("store", type=Path, metavar="STORE", help="the feature store folder")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--manifest", type=Path, help="the manifest CSV with the new metadata")
    source.add_argument("--corpus", help="a corpus name (see `vqpool data`); needs --root")
    parser.add_argument("--root", type=Path, help="the corpus folder, in its official layout")
    parser.add_argument("--label", help="with --corpus fsdd: digit (default) or speaker")
    parser.add_argument("--split", help="with --corpus fsdd: index (default) or speaker")
    parser.add_argument("--seed", type=int, help="with --corpus: the seed of drawn splits")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from vqpool.data import load_rows
    from vqpool.relabel import relabel

    rows = load_rows(args.manifest, args.corpus, args.root, label=args.label, split=args.split,
                     seed=args.seed).rows
    changed = relabel(args.store, rows)
    print(f"{args.store}: new metadata for {changed} utterances" if changed
          else f"{args.store}: the rows' metadata is already the store's; nothing to change")
    return 0
