"""`vqpool demo`: the whole pipeline offline on a corpus it synthesises (or FSDD)."""

import argparse

from vqpool.demo import DemoSettings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the whole pipeline offline: corpus, codebooks, extraction, bench, probe, report",
        description="Synthesise a Speech-Commands-like corpus with eSpeak NG (or read FSDD), extract "
        "log-mel and pretrained GE2E frames with k-means codes, benchmark all twelve unsupervised "
        "methods with 1-NN and six methods with a linear probe, and write the report.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  vqpool demo --out ./vqpool-demo\n"
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
    parser.add_argument("--probe-epochs", type=int, default=DemoSettings.probe_epochs,
                        help="linear-probe epochs (default: %(default)s; the paper used 200)")
    parser.add_argument("--probe-seeds", type=int, default=DemoSettings.probe_seeds,
                        help="linear-probe seeds (default: %(default)s)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from vqpool.demo import run_demo

    settings = DemoSettings(
        upstreams=tuple(spec.strip() for spec in args.upstreams.split(",") if spec.strip()),
        words=args.words,
        voices=args.voices,
        probe_epochs=args.probe_epochs,
        probe_seeds=args.probe_seeds,
        device=args.device,
    )
    run_demo(args.out, corpus=args.corpus, root=args.root, settings=settings)
    return 0
