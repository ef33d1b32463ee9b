"""`vqpool report`: the paper's tables (its own figures beside ours) and figures, from results, audio or a store."""

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from vqpool.commands.bench import add_pool_arguments, given_pool_options
from vqpool.errors import VqpoolError

if TYPE_CHECKING:
    from vqpool.report import Drawn

EPILOG = """examples:
  vqpool report results.jsonl --out vqpool-report
  vqpool report --weights speech.wav --upstream facebook/wav2vec2-base --methods ap,vq-squash-and,vq-lp
  vqpool report --weights speech.wav --upstream logmel --codebook logmel-codebook --stats train.stats
  vqpool report --tsne features/ --methods ap,vq-lp --classes yes,no,up --split test
"""


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report",
        help="tables in the paper's layout with its figures beside ours, plots (bars, frame weights, t-SNE)",
        description="Markdown/CSV/JSON tables and PNG bar charts from results files; the paper's "
        "Figure 3 (frame weights over a waveform) for any audio file; its Figure 2 (t-SNE) from a "
        "store. report.md embeds every figure in the output folder. The paper's own figures are "
        "shown beside ours only for its upstreams, tasks and corpora.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "results",
        nargs="*",
        type=Path,
        metavar="RESULTS",
        help="JSON-lines results of vqpool bench/probe (STORE/results.jsonl); of the rows of one "
        "store and settings, the newest per (protocol, upstream, task, method) wins",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("vqpool-report"),
        help="output folder (default: ./vqpool-report)",
    )
    parser.add_argument(
        "--methods",
        type=_names,
        help="comma-separated methods to draw (default: a few for --weights, ap,vq-lp for --tsne)",
    )
    parser.add_argument(
        "--stats",
        type=Path,
        help="corpus statistics file (CorpusStats.save) for vq-sif/vq-gp/vq-bp/whitening/softdecay",
    )
    add_pool_arguments(parser)
    weights = parser.add_argument_group("frame weights of one utterance (paper Figure 3)")
    weights.add_argument("--weights", type=Path, metavar="AUDIO", help="audio file to draw")
    weights.add_argument(
        "--upstream", help="upstream spec: logmel, ge2e, a hub id or a local model folder"
    )
    weights.add_argument(
        "--codebook", type=Path, help="k-means codebook for upstreams without a quantizer"
    )
    weights.add_argument(
        "--device", default="cpu", help="torch device for the upstream (default: cpu)"
    )
    weights.add_argument("--label", help="the utterance's label, named in the figure's title")
    tsne = parser.add_argument_group("t-SNE map of pooled vectors (paper Figure 2)")
    tsne.add_argument("--tsne", type=Path, metavar="STORE", help="feature store to pool and map")
    tsne.add_argument(
        "--classes", type=_names, help="comma-separated labels to show (default: all)"
    )
    tsne.add_argument("--split", default="test",
                      help="split to map, beside the train split 1-NN searches (default: test)")
    tsne.add_argument(
        "--max-points", type=int, default=1000, help="at most this many utterances (default: 1000)"
    )
    tsne.add_argument(
        "--seed", type=int, default=0, help="seed for the subset and t-SNE (default: 0)"
    )
    parser.set_defaults(run=run)


def _print_drawn(what: str, drawn: "Drawn") -> None:
    for method, why in drawn.skipped.items():
        print(f"skipped {method}: {why}", file=sys.stderr)
    print(f"{what} ({', '.join(drawn.methods)}): {drawn.png}")


def run(args: argparse.Namespace) -> int:
    if not (args.results or args.weights or args.tsne):
        raise VqpoolError("nothing to report: give RESULTS files, --weights AUDIO or --tsne STORE")
    if args.weights is not None and not args.upstream:
        raise VqpoolError("--weights needs --upstream")
    from vqpool import report  # matplotlib and torch load only when a report is made
    pool_options = given_pool_options(args)

    if args.tsne is not None:
        report.check_tsne_points(args.max_points)
    # Figures first, so that report.md (written last) embeds them.
    if args.weights is not None:
        drawn = report.draw_frame_weights(
            args.weights,
            args.upstream,
            args.out / f"weights-{args.weights.stem}.png",
            args.methods,
            codebook=args.codebook,
            stats=args.stats,
            device=args.device,
            label=args.label,
            **pool_options,
        )
        _print_drawn("frame weights", drawn)
    if args.tsne is not None:
        drawn = report.draw_tsne(
            args.tsne,
            report.tsne_png(args.out, args.tsne, args.split),
            args.methods,
            split=args.split,
            classes=args.classes,
            max_points=args.max_points,
            seed=args.seed,
            stats=args.stats,
            **pool_options,
        )
        _print_drawn("t-SNE", drawn)
    if args.results:
        files = report.write_report(args.results, args.out)
        for line in report.skipped_lines(files.results.skipped):
            print(f"vqpool report: {line}", file=sys.stderr)
        for table in files.tables:
            print(report.to_text(table), end="\n\n")
        for compared in files.frames_codes:
            print(report.frames_codes_text(compared), end="\n\n")
        if files.results.superseded:
            print(
                f"{len(files.results.superseded)} older result row(s) superseded by newer runs of "
                "the same store and settings (newest timestamp wins)"
            )
        print(f"report: {files.markdown}\ntables: {files.csv}\nresults: {files.json}")
        if files.frames_codes_csv is not None:
            print(f"frames x codes: {files.frames_codes_csv}")
        print("bars: " + ", ".join(map(str, files.bars)))
        if files.figures:
            print("figures: " + ", ".join(map(str, files.figures)))
    elif (files := report.update_report(args.out)) is not None:  # a figure added to a report
        print(f"report: {files.markdown} (updated: it shows the new figure)")
    return 0
