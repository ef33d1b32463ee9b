"""`vqpool export`: a store's pooled vectors as NumPy, Parquet or a Hugging Face dataset."""

import argparse

DESCRIPTION = """\
Pool a feature store's utterances with each method (corpus statistics fitted on the training
split, as `vqpool bench` does) and write one row per utterance (id, label, split, speaker and a
float32 vector per method): --format npy writes a folder of <method>.npy arrays (memory-mapped)
with ids.csv; parquet one file with a fixed-size float32 list column per method (pandas,
pyarrow, datasets); hf a Hugging Face dataset (datasets.load_from_disk). Rows are pooled and
written a chunk at a time, and the output appears under its name only once complete.
Parquet and hf need pip install 'vqpool[export]'."""

EPILOG = """examples:
  vqpool export --store stores/fsdd-ge2e --methods ap,vq-lp --format npy --out fsdd-vectors
  vqpool export --store stores/fsdd-ge2e --methods all --format parquet --out fsdd.parquet
  vqpool export --store stores/fsdd-ge2e --methods vq-lp --format hf --out fsdd-hf
  python -c "import datasets; print(datasets.load_from_disk('fsdd-hf'))\""""


def register(subparsers: argparse._SubParsersAction) -> None:
    from vqpool.commands.index import add_pooling_arguments
    from vqpool.defaults import DEFAULT_METHOD

    parser = subparsers.add_parser(
        "export", help="pooled vectors as NumPy, Parquet or a Hugging Face dataset",
        description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_pooling_arguments(parser)
    parser.add_argument("--methods", default=f"ap,{DEFAULT_METHOD}",
                        help=f"comma-separated methods, or 'all' (default: ap,{DEFAULT_METHOD})")
    parser.add_argument("--format", required=True, help="npy, parquet or hf")
    parser.add_argument("--out", required=True, help="the folder (npy, hf) or file (parquet) to write")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from vqpool.commands.bench import method_list
    from vqpool.commands.index import pooling_options
    from vqpool.export import export

    print(export(args.store, method_list(args.methods), args.format, args.out,
                 **pooling_options(args)))
    return 0
