"""`vqpool extract`: audio -> frames and codes (or pooled vectors only) in a feature store."""

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from vqpool.commands.bench import add_pool_arguments, given_pool_options

if TYPE_CHECKING:
    from vqpool.pooling import CorpusStats
    from vqpool.upstream import CodesFrom

DESCRIPTION = """\
Run an upstream model over every utterance of a manifest or corpus and write a feature store:
frames and codes (or, with --pooled-only, only pooled vectors) plus each utterance's metadata.
An interrupted run resumes with --resume and writes the same bytes; under torchrun every rank
extracts its share and rank 0 merges them into one store."""

EPILOG = """examples:
  vqpool extract --upstream logmel --codebook cb.pt --manifest fsdd.csv --out stores/fsdd
  vqpool extract --upstream facebook/wav2vec2-base --allow-download --device cuda \\
      --corpus speechcommands --root data/speech_commands --out stores/kws-base
  vqpool extract --upstream facebook/wav2vec2-base --codes-from facebook/encodec_24khz \\
      --code-levels 8 --allow-download --manifest fsdd.csv --out stores/fsdd-encodec
  torchrun --standalone --nproc_per_node 4 -m vqpool.cli extract --upstream facebook/wav2vec2-base \\
      --device cuda --manifest kws.csv --out stores/kws-base     (one rank per GPU)
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "extract",
        help="audio -> frames and codes (or pooled vectors only) in a feature store",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--upstream", help="logmel, ge2e, a hub id or a local model folder")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--manifest", type=Path, help="CSV with a path column (id, label, split, speaker optional)")
    source.add_argument("--corpus", help="a corpus name (see `vqpool data`); needs --root")
    source.add_argument("--hf-dataset", metavar="PATH_OR_NAME",
                        help="a Hugging Face dataset: a save_to_disk folder, or a name in the local "
                        "cache (downloaded only with --allow-download); needs vqpool[hf]")
    source.add_argument("--cuts", type=Path, help="a lhotse CutSet manifest (cuts.jsonl.gz); needs vqpool[lhotse]")
    parser.add_argument("--root", type=Path, help="the corpus folder, in its official layout")
    parser.add_argument("--label", help="with --corpus fsdd: digit (default) or speaker")
    parser.add_argument("--split", help="with --corpus fsdd: index (default) or speaker (held-out voices)")
    parser.add_argument("--seed", type=int, help="with --corpus: the seed of drawn splits")
    parser.add_argument("--audio-column", default="audio", help="with --hf-dataset: the Audio column (default: audio)")
    parser.add_argument("--label-column",
                        help="with --hf-dataset (default: label, if present) or --cuts: where labels come from")
    parser.add_argument("--split-column",
                        help="with --hf-dataset (default: the dataset's splits) or --cuts: where splits come from")
    parser.add_argument("--task", help="the task name recorded in the store (default: the corpus's task, "
                                       "or the manifest file's name without .csv)")
    parser.add_argument("--out", type=Path, required=True, help="the store folder to write")
    parser.add_argument("--layers", default="mean", help="mean (default), last, N or a,b,c")
    parser.add_argument("--codebook", type=Path, help="k-means codebook for upstreams without a quantizer")
    codes = parser.add_argument_group(
        "codes from elsewhere", "codes aligned to the frames by time (docs/guide/extract.md)")
    codes.add_argument("--codes-from", metavar="SPEC",
                       help="a codec checkpoint (EnCodec, DAC, Mimi: folder, or hub id with --allow-download), "
                       "a k-means codebook of any upstream, a fairseq km.bin, or precomputed units "
                       "(a folder of <id>.npy / <id>.km, a .km file of `id u1 u2 ...` lines, a .npz, or "
                       "fairseq's .km labels with their .tsv)")
    codes.add_argument("--code-levels", type=int, metavar="N", help="with a codec: its first N quantizer levels (default all)")
    codes.add_argument("--code-upstream", metavar="SPEC", help="with a km.bin: the upstream it was fitted on "
                       "(default --upstream)")
    codes.add_argument("--code-layer", metavar="N", help="with a km.bin: the layer it was fitted on")
    codes.add_argument("--code-rate", type=float, metavar="HZ",
                       help="with precomputed units: units per second (default: the frames' rate)")
    codes.add_argument("--code-manifest", metavar="TSV",
                       help="with a fairseq .km label file: the .tsv manifest its lines follow "
                       "(default: the .tsv beside it)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (under torchrun: one GPU per rank)")
    parser.add_argument("--batch-seconds", type=float, default=60.0,
                        help="padded audio per batch, in seconds (default 60)")
    parser.add_argument("--pooled-only", metavar="METHODS",
                        help="comma-separated pooling methods: store their vectors, no frames")
    parser.add_argument("--stats", type=Path,
                        help="a saved CorpusStats, for --pooled-only methods that need corpus statistics")
    add_pool_arguments(parser, "with --pooled-only: ")
    parser.add_argument("--no-codes", action="store_true",
                        help="keep frames only when the upstream has no quantizer and no --codebook "
                        "(without it, such an upstream is refused: its store serves no VQ method)")
    parser.add_argument("--resume", action="store_true", help="finish an interrupted extraction")
    parser.add_argument("--on-bad-audio", choices=("error", "skip"), default="error",
                        help="stop at an unusable file (default) or skip it and list it in skipped.csv")
    parser.add_argument("--keep-audio", metavar="KINDS", default="",
                        help="keep these kinds of bad audio, with a warning, instead: silent "
                        "(all samples 0), truncated (data shorter than the header says), or both")
    parser.add_argument("--max-seconds", type=float, default=600.0,
                        help="longest utterance, by its header; longer files are bad audio "
                        "(default 600; 0: no limit)")
    parser.add_argument("--allow-download", action="store_true", help="let a hub id be downloaded")
    parser.add_argument("--merge", action="store_true",
                        help="only merge the rank-XXXXX stores already in --out (multi-machine runs)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from vqpool import distributed
    from vqpool.data import load_rows
    from vqpool.errors import VqpoolError
    from vqpool.extract import extract
    from vqpool.store import store_status

    if args.merge:
        store = distributed.merge_ranks(args.out)
        print(f"merged {len(store)} utterances into {args.out}")
        return 0
    if args.upstream is None:
        raise VqpoolError("extract needs --upstream and a source: --manifest, --corpus with --root, "
                          "--hf-dataset or --cuts")
    pool_options = given_pool_options(args)
    if pool_options and not args.pooled_only:
        given = [f"--{k}" if k in ("semantics", "a", "smoothing") else "--option" for k in pool_options]
        raise VqpoolError(f"{', '.join(dict.fromkeys(given))} only apply to pooling on the fly: add --pooled-only")
    complete = store_status(args.out) == "complete"  # reused as it is when made by this same job
    rows, corpus, task = load_rows(args.manifest, args.corpus, args.root, hf_dataset=args.hf_dataset,
                                   cuts=args.cuts, audio_column=args.audio_column,
                                   label_column=args.label_column, split_column=args.split_column,
                                   allow_download=args.allow_download, task=args.task,
                                   label=args.label, split=args.split, seed=args.seed)
    with distributed.session(args.device) as device:
        from vqpool.upstream import load_upstream

        upstream = load_upstream(args.upstream, layers=args.layers, codebook=args.codebook,
                                 codes_from=_codes_from(args), device=device,
                                 allow_download=args.allow_download)
        store = extract(
            rows, upstream, args.out,
            batch_seconds=args.batch_seconds,
            pooled_only=args.pooled_only.split(",") if args.pooled_only else None,
            stats=_stats(args.stats),
            options=pool_options,
            resume=args.resume or complete,
            on_bad_audio=args.on_bad_audio,
            keep_audio=[kind.strip() for kind in args.keep_audio.split(",") if kind.strip()],
            max_seconds=args.max_seconds or None,
            corpus=corpus,
            task=task,
            require_codes=not args.no_codes,
        )
        if distributed.rank_and_world()[0] == 0:
            print(f"{args.out} is already a complete feature store ({len(store)} utterances) of this "
                  "extraction; nothing to do" if complete else f"wrote {len(store)} utterances to {args.out}")
            if store.skipped:
                print(f"skipped {len(store.skipped)} unusable files (listed in {args.out / 'skipped.csv'})",
                      file=sys.stderr)
    return 0


def _codes_from(args: argparse.Namespace) -> "CodesFrom | None":
    from vqpool.errors import VqpoolError
    from vqpool.upstream import CodesFrom

    given = {"levels": args.code_levels, "upstream": args.code_upstream, "layer": args.code_layer,
             "rate": args.code_rate, "manifest": args.code_manifest}
    if args.codes_from is None:
        if any(value is not None for value in given.values()):
            raise VqpoolError("--code-levels, --code-upstream, --code-layer, --code-rate and "
                              "--code-manifest only apply with --codes-from")
        return None
    return CodesFrom(args.codes_from, **given)


def _stats(path: Path | None) -> "CorpusStats | None":
    if path is None:
        return None
    from vqpool.pooling import CorpusStats

    return CorpusStats.load(path)

