"""`vqpool reproduce`: the paper's Tables 1 and 2 for one upstream, from the corpora to the report."""

import argparse


def _roots(text: str) -> dict[str, str]:
    roots = {}
    for item in text.split(","):
        task, sep, root = item.partition("=")
        if not sep or not task.strip() or not root.strip():
            raise argparse.ArgumentTypeError(f"--roots takes task=folder pairs separated by commas, not {item!r}")
        if task.strip() in roots:
            raise argparse.ArgumentTypeError(f"--roots names {task.strip()} twice")
        roots[task.strip()] = root.strip()
    return roots


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "reproduce",
        help="prepare, extract, bench, probe and report the paper's tables for one upstream",
        description="For each task: prepare its corpus, extract frames and codes (resumable), run "
        "the 1-NN benchmark of every unsupervised method and the linear probe of ap, sp, vq-lp, "
        "sap, asp and vap with the paper's hyper-parameters, then write the report beside the "
        "paper's own figures. Expect a GPU and the disk budget of docs/reproduce.md.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  vqpool reproduce --upstream facebook/wav2vec2-base --tasks kws,ic \\\n"
        "      --roots kws=/data/speech_commands_v0.02,ic=/data/fluent_speech_commands_dataset \\\n"
        "      --work runs/base --device cuda --allow-download",
    )
    parser.add_argument("--upstream", required=True, help="a hub id or local wav2vec 2.0 pre-training checkpoint")
    parser.add_argument("--tasks", default="kws,sid,ic,er", help="comma-separated tasks (default: kws,sid,ic,er)")
    parser.add_argument("--roots", required=True, type=_roots,
                        help="task=folder pairs: kws=Speech Commands v0.02, sid=VoxCeleb1, ic=Fluent, er=IEMOCAP")
    parser.add_argument("--work", default="vqpool-reproduce", help="folder for stores, results and report")
    parser.add_argument("--layers", default="mean", help="frames: mean (default), last, N or a,b,c")
    parser.add_argument("--codebook", help="k-means codebook, for models without a quantizer")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--seeds", type=int, default=3, help="linear-probe seeds (default: 3)")
    parser.add_argument("--batch-seconds", type=float, default=60.0, help="audio seconds per extraction batch")
    parser.add_argument("--on-bad-audio", choices=("error", "skip"), default="error",
                        help="stop at an unusable file (default) or skip it and list it in skipped.csv")
    parser.add_argument("--allow-download", action="store_true", help="let the hub id be downloaded")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from vqpool.reproduce import reproduce

    report = reproduce(
        args.upstream,
        args.roots,
        args.work,
        tasks=[task.strip() for task in args.tasks.split(",") if task.strip()],
        layers=args.layers,
        codebook=args.codebook,
        device=args.device,
        seeds=args.seeds,
        batch_seconds=args.batch_seconds,
        allow_download=args.allow_download,
        on_bad_audio=args.on_bad_audio,
    )
    print(f"report: {report}/report.md")
    return 0
