"""`vqpool demo`: the whole pipeline offline on a corpus it synthesises (or FSDD)."""

import argparse

from vqpool.demo import DemoSettings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the whole pipeline offline: corpus, codebooks, extraction, bench, probe, report",
        description="Synthesise a Speech-Commands-like corpus with eSpeak NG (or read FSDD), extract "
        "log-mel and pretrained GE2E frames with k-means codes, benchmark all twelve unsupervised "
        "methods with 1-NN and six methods with a linear probe, compare code sources on GE2E's frames "
        "(its own k-means, log-mel's k-means, a random untrained codec; 1-NN), and write the "
        "report with its frames x codes table. It prints one "
        "progress line per step and per probe method on stderr, and its wall time at the end; the "
        "default run takes a few minutes on two shared CPU cores, --full several times longer.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  vqpool demo --out ./vqpool-demo\n  vqpool demo --full\n"
        "  vqpool demo --corpus fsdd --root ../shared/data/fsdd --out ./vqpool-demo-fsdd",
    )
    parser.add_argument("--out", default="vqpool-demo", help="output folder (default: ./vqpool-demo)")
    parser.add_argument("--corpus", choices=("synth", "fsdd"), default="synth",
                        help="synth (default; made offline) or fsdd (needs --root)")
    parser.add_argument("--root", help="FSDD's recordings folder, with --corpus fsdd")
    parser.add_argument("--upstreams", default=",".join(DemoSettings.upstreams),
                        help="comma-separated upstreams (default: logmel,ge2e)")
    parser.add_argument("--words", default=DemoSettings.words,
                        help="synthetic words: speechcommands (35, default), commands, digits or a,b,c")
    parser.add_argument("--voices", type=int, default=DemoSettings.voices,
                        help="synthetic voices (speakers) to make (default: %(default)s)")
    parser.add_argument("--full", action="store_true",
                        help="the larger run: the heads trained for 20 epochs on batches of 128")
    parser.add_argument("--probe-epochs", type=int,
                        help=f"linear-probe epochs of the fixed methods (default: "
                        f"{DemoSettings.probe_epochs}; the paper used 200)")
    parser.add_argument("--head-epochs", type=int,
                        help=f"epochs of the trained heads sap/asp/vap (default: "
                        f"{DemoSettings.head_epochs}, with --full {DemoSettings.full().head_epochs})")
    parser.add_argument("--probe-seeds", type=int, default=DemoSettings.probe_seeds,
                        help="linear-probe seeds (default: %(default)s)")
    parser.add_argument("--threads", type=int,
                        help=f"CPU threads (default: {DemoSettings.threads}, which keeps the tables "
                        "the same on every machine; 0: torch's choice)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from vqpool.demo import run_demo
    from vqpool.progress import duration

    given = {"probe_epochs": args.probe_epochs, "head_epochs": args.head_epochs,
             "threads": args.threads}
    changes = {
        "upstreams": tuple(spec.strip() for spec in args.upstreams.split(",") if spec.strip()),
        "words": args.words,
        "voices": args.voices,
        "probe_seeds": args.probe_seeds,
        "device": args.device,
        **{name: value for name, value in given.items() if value is not None},
    }
    settings = DemoSettings.full(**changes) if args.full else DemoSettings(**changes)
    result = run_demo(args.out, corpus=args.corpus, root=args.root, settings=settings)
    print(f"vqpool demo: finished in {duration(result.seconds)} (wall time); report: "
          f"{result.report_dir / 'report.md'}")
    return 0
