"""`vqpool index build`: a FAISS index over a store's pooled vectors (`vqpool search` reads it)."""

import argparse

from vqpool.defaults import DEFAULT_METHOD

DESCRIPTION = """\
Pool every utterance of a feature store with one pooling method (corpus statistics fitted on the
training split, as `vqpool bench` does), L2-normalise the vectors and index them with FAISS, in a
folder that also holds the utterances' ids, labels, splits and paths, the statistics, a copy of
the store's codebook, and a header naming the store, upstream, method and options, so that
`vqpool search` pools an audio query exactly as the store's utterances were. --kind flat (the
default) searches exactly; ivf and hnsw are approximate, for large corpora: their recall@10
against exact search is measured on held-out rows and printed. Needs pip install 'vqpool[faiss]'."""

EPILOG = """examples:
  vqpool index build --store stores/fsdd-ge2e --method vq-lp --out fsdd.index
  vqpool index build --store stores/vox1 --method vq-lp --kind hnsw --ef-search 128 --out vox1.index
  vqpool index build --store stores/vox1 --method ap --kind ivf --nlist 4096 --nprobe 64 --out vox1-ivf.index
  vqpool search --index fsdd.index ../shared/data/fsdd/3_jackson_0.wav"""


def add_pooling_arguments(parser: argparse.ArgumentParser) -> None:
    """How the store's vectors are pooled: shared by `index build` and `export`."""
    from vqpool.commands.bench import add_pool_arguments

    parser.add_argument("--store", required=True, help="feature store folder (from `vqpool extract`)")
    parser.add_argument("--split", default="train",
                        help="the split corpus statistics are fitted on (default: train)")
    parser.add_argument("--splits", default="all",
                        help="the rows to take: 'all' (default) or splits, e.g. train,validation")
    parser.add_argument("--stats", help="a corpus statistics file (`vqpool stats fit`) to use "
                        "instead of fitting them on --split")
    add_pool_arguments(parser, "", " (default: paper, or what a pooled-only store was pooled "
                       "with; likewise for --a and --smoothing)")
    parser.add_argument("--device", default="cpu", help="torch device for pooling (default: cpu)")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")


def pooling_options(args: argparse.Namespace) -> dict:
    from vqpool.commands.bench import given_pool_options

    return {"split": args.split, "splits": args.splits, "stats": args.stats,
            "options": given_pool_options(args), "device": args.device,
            "overwrite": args.overwrite}


def register(subparsers: argparse._SubParsersAction) -> None:
    text = {"description": DESCRIPTION, "epilog": EPILOG,
            "formatter_class": argparse.RawDescriptionHelpFormatter}
    parser = subparsers.add_parser("index", help="a FAISS index over a store's pooled vectors "
                                   "(for vqpool search)", **text)
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    build = actions.add_parser("build", help="pool a store with one method and index it", **text)
    add_pooling_arguments(build)
    build.add_argument("--method", default=DEFAULT_METHOD, help=f"the pooling method (default: {DEFAULT_METHOD})")
    build.add_argument("--out", required=True, help="the index folder to write")
    build.add_argument("--kind", default="flat", help="flat (exact, default), ivf or hnsw")
    build.add_argument("--nlist", type=int, help="ivf: inverted lists (default: ~4 sqrt(N))")
    build.add_argument("--nprobe", type=int, help="ivf: lists searched (default: nlist / 256, at least 8)")
    build.add_argument("--hnsw-m", type=int, help="hnsw: links per vector (default: 32)")
    build.add_argument("--ef-construction", type=int, help="hnsw: build-time candidates (default: 40)")
    build.add_argument("--ef-search", type=int, help="hnsw: search-time candidates (default: 64)")
    build.add_argument("--recall-queries", type=int, default=1000,
                       help="ivf/hnsw: held-out rows the recall@10 is measured on (default: 1000)")
    build.set_defaults(run=run, flags={"method": "--method"})  # one method, not --methods


def run(args: argparse.Namespace) -> int:
    from vqpool.index import build

    index = build(args.store, args.out, args.method, kind=args.kind, nlist=args.nlist,
                  nprobe=args.nprobe, hnsw_m=args.hnsw_m, ef_construction=args.ef_construction,
                  ef_search=args.ef_search, recall_queries=args.recall_queries,
                  **pooling_options(args))
    print(f"{args.out}: {len(index)} {index.method} vectors ({index.dim}-dimensional), "
          f"index {index.params.describe()}, built in {index.header['build_seconds']:.1f} s")
    return 0
