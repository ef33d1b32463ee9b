"""`vqpool probe`: the supervised linear-probe benchmark over a feature store."""

import argparse

from vqpool.commands.bench import add_common_arguments, common_options, method_list

EPILOG = """example:
  vqpool probe --store feats/fluent-base --methods ap,sp,vq-lp,sap,asp,vap --seeds 3
  vqpool probe --store feats/speechcommands-base --methods vq-lp --epochs 20 --device cuda
Defaults per task (docs/methods.md section 6): lr 1e-2 for kws, else 1e-3; batch 4096 kws, 512 ic/er,
128 sid; 200 epochs (50 sid). Other tasks: lr 1e-3, batch 512, 200 epochs."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "probe",
        help="supervised linear-probe benchmark over a store (paper Table 2)",
        description="Train a linear classifier on each method's pooled vectors (sap/asp/vap: the "
        "head is trained jointly on the frames) with cross-entropy and Adam; keep the epoch with "
        "the best validation accuracy and report its test accuracy, mean and std over seeds.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_common_arguments(parser)
    parser.add_argument("--methods",
                        help="comma-separated methods and heads, or 'all' (default: the paper's "
                        "Table 2, ap,sp,vq-lp,sap,asp,vap)")
    parser.add_argument("--seeds", type=int, default=3, help="training runs per method (default: 3)")
    parser.add_argument("--epochs", type=int, help="epochs (default: the task's)")
    parser.add_argument("--lr", type=float, help="Adam learning rate (default: the task's)")
    parser.add_argument("--batch-size", type=int, help="utterances per batch (default: the task's)")
    parser.add_argument("--patience", type=int,
                        help="stop after this many epochs without a better validation accuracy")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from vqpool.evaluate.probe import run_probe
    from vqpool.evaluate.results import format_table

    methods = None if args.methods is None else method_list(args.methods)
    rows = run_probe(args.store, methods, seeds=args.seeds, lr=args.lr,
                     batch_size=args.batch_size, epochs=args.epochs, patience=args.patience,
                     **common_options(args))
    print(format_table(rows))
    return 0
