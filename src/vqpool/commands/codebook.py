"""`vqpool codebook fit`: a k-means codebook for an upstream without a quantizer."""

import argparse

EXAMPLE = """example:
  vqpool codebook fit --upstream facebook/hubert-base-ls960 --manifest train.csv \\
      --out hubert.codebook --layer 6
  vqpool extract --upstream facebook/hubert-base-ls960 --codebook hubert.codebook ..."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "codebook",
        help="fit a k-means codebook for an upstream without a quantizer",
        description="k-means codebooks give codes (G codes of V values per frame, product "
        "quantization) to upstreams without a quantizer: HuBERT, WavLM, logmel, ge2e, ...",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EXAMPLE,
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    fit = actions.add_parser(
        "fit",
        help="fit on a random sample of a manifest's training frames and save the codebook",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EXAMPLE,
    )
    fit.add_argument(
        "--upstream", required=True, help="logmel, ge2e, a hub id or a local model directory"
    )
    fit.add_argument(
        "--manifest", required=True, help="CSV with a path column (and optional split)"
    )
    fit.add_argument("--out", required=True, help="codebook file to write")
    fit.add_argument("--codebooks", type=int, help="G, chunks of the vector (default 2; with --layers: "
                     "chunks per layer, default 1)")
    fit.add_argument(
        "--size", type=int, default=320, help="V, centroids per codebook (default 320)"
    )
    which = fit.add_mutually_exclusive_group()
    which.add_argument(
        "--layer",
        default="mean",
        help="what to quantize: mean, last, N, a,b,c (their mean), or cnn (a transformers model's "
        "CNN output); default mean",
    )
    which.add_argument(
        "--layers", metavar="A,B,C",
        help="one codebook per layer instead (G = number of layers): e.g. 6,9,12; use the codebook "
        "with `extract --codebook` on this upstream or `--codes-from` on any other",
    )
    fit.add_argument(
        "--max-frames",
        type=int,
        default=200_000,
        help="frames sampled for k-means (default 200000)",
    )
    fit.add_argument("--seed", type=int, default=0, help="seeds the frame sample and k-means (default 0)")
    fit.add_argument(
        "--split", default="train", help="rows of this split when the manifest has a split column"
    )
    fit.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    fit.add_argument(
        "--allow-download", action="store_true", help="fetch a hub model missing from the cache"
    )
    fit.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from vqpool.data import read_manifest, rows_of_split
    from vqpool.upstream import load_upstream
    from vqpool.upstream.codebook import fit_codebook

    rows = rows_of_split(read_manifest(args.manifest), args.split, where=args.manifest)
    upstream = load_upstream(args.upstream, device=args.device, allow_download=args.allow_download)
    codebook = fit_codebook(
        upstream,
        [row["path"] for row in rows],
        layer=args.layer,
        layers=None if args.layers is None else args.layers.split(","),
        num_codebooks=args.codebooks,
        codebook_size=args.size,
        max_frames=args.max_frames,
        seed=args.seed,
    )
    path = codebook.save(args.out)
    settings = codebook.settings
    print(
        f"{path}: {codebook.num_codebooks} x {codebook.codebook_size} centroids over "
        f"{codebook.dim}-dim {args.upstream} layer{'s' if args.layers else ''} "
        f"{args.layers or args.layer!r}, fitted on "
        f"{settings['num_frames']} frames of {settings['num_utterances']} utterances; "
        f"mean squared error per codebook {', '.join(f'{e:.4g}' for e in settings['mean_squared_error'])}"
    )
    return 0
