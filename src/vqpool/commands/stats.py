"""`vqpool stats fit`: corpus statistics of a store's training split, for `extract --stats`."""

import argparse

DESCRIPTION = """\
Corpus statistics (code counts and code-tuple frequencies for vq-gp, vq-bp and vq-sif; the
whitening and soft-decay transforms of the AP vectors) fitted on one split of a feature store,
saved as one file. Pooling methods that need them while pooling on the fly take the file with
`vqpool extract --pooled-only ... --stats FILE`. A store with frames gives its frames and codes;
a pooled-only store gives its stored AP vectors and codes, so a first pooled-only extraction
(e.g. --pooled-only ap) can provide the statistics for a second one."""

EXAMPLE = """example:
  vqpool extract --upstream facebook/wav2vec2-base --corpus speechcommands --root data/sc \\
      --pooled-only ap,vq-lp --out stores/kws-pooled
  vqpool stats fit --store stores/kws-pooled --out kws-stats.pt
  vqpool extract --upstream facebook/wav2vec2-base --corpus speechcommands --root data/sc \\
      --pooled-only vq-gp,vq-bp,vq-sif --stats kws-stats.pt --out stores/kws-gp"""


def register(subparsers: argparse._SubParsersAction) -> None:
    text = {"description": DESCRIPTION, "epilog": EXAMPLE,
            "formatter_class": argparse.RawDescriptionHelpFormatter}
    parser = subparsers.add_parser(
        "stats", help="corpus statistics of a store's training split, for extract --pooled-only",
        **text,
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    fit = actions.add_parser(
        "fit", help="fit corpus statistics on a store's split and save them", **text
    )
    fit.add_argument("--store", required=True, help="the feature store (frames or pooled-only)")
    fit.add_argument("--split", default="train", help="the rows to fit on (default: train)")
    fit.add_argument("--out", required=True, help="the statistics file to write")
    fit.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from vqpool.pooling import CorpusStats
    from vqpool.store import FeatureStore

    stats = CorpusStats.from_store(FeatureStore(args.store), args.split)
    stats.save(args.out)
    print(
        f"{args.out}: corpus statistics ({', '.join(stats.include)}) of {stats.num_utterances} "
        f"utterances, {stats.total_frames} frames (split {args.split!r} of {args.store})"
    )
    return 0
