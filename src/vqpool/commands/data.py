"""`vqpool data`: corpora -> manifests (``prepare``), and the synthetic demo corpus (``synth``)."""

import argparse
from pathlib import Path

from vqpool.data import CORPORA, label_map_path, prepare, read_manifest, summarize, write_prepared

PREPARE_EPILOG = """\
corpora and the layout --root expects:
  speechcommands  the 35 word folders, validation_list.txt, testing_list.txt (_background_noise_ excluded)
  voxceleb1       iden_split.txt and wav/idNNNNN/VIDEO/NNNNN.wav
  fluent          data/{train,valid,test}_data.csv and the wavs/ they list
  iemocap         Session1..Session5 with dialog/EmoEvaluation/*.txt and sentences/wav/
  fsdd            {digit}_{speaker}_{index}.wav  (--label digit|speaker, --split index|speaker)
  folder          one sub-folder per label (or train/validation/test, each with label folders)
  csv             --root is your CSV (path,label[,split,speaker,id])
  synth           a corpus written by `vqpool data synth`

example:
  vqpool data prepare speechcommands --root data/speech_commands_v0.02 --out manifests/kws.csv
  vqpool data prepare fsdd --root data/fsdd/recordings --split speaker --out manifests/fsdd.csv
"""

SYNTH_EPILOG = """\
example:
  vqpool data synth --out data/synth --voices 24 --seed 0
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "data",
        help="write a corpus manifest, or synthesise a small spoken-commands corpus",
        epilog="example:\n  vqpool data prepare fsdd --root data/fsdd --out fsdd.csv",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    prepare = actions.add_parser(
        "prepare",
        help="write the manifest (id,path,label,split,speaker) and label map of a corpus",
        description="Read a corpus in its official layout and write its manifest CSV (paths "
        "relative to the manifest when under its folder), a sorted label map beside it, and the "
        "counts per split and label. Nothing is dropped silently.",
        epilog=PREPARE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    prepare.add_argument("corpus", choices=CORPORA)
    prepare.add_argument(
        "--root", type=Path, required=True, help="the corpus, in its official layout"
    )
    prepare.add_argument(
        "--out", type=Path, required=True, help="manifest CSV to write (label map beside it)"
    )
    prepare.add_argument("--label", help="fsdd: digit (default) or speaker")
    prepare.add_argument("--split", help="fsdd: index (default) or speaker (held-out voices)")
    prepare.add_argument(
        "--seed", type=int, help="fsdd --split speaker, folder, csv: seeds the split"
    )

    synth = actions.add_parser(
        "synth",
        help="speak a Speech-Commands-like corpus with eSpeak NG (offline)",
        description="Speak every word in many eSpeak NG voices (accents x variants, each its own "
        "speaker) as 16 kHz WAVs in Speech Commands' layout, with speaker-disjoint splits, a "
        "manifest and a label map; the same seed gives the same bytes.",
        epilog=SYNTH_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    synth.add_argument("--out", type=Path, required=True, help="new folder for the corpus")
    synth.add_argument("--seed", type=int, default=0, help="seeds voices' splits and takes (default 0)")
    synth.add_argument(
        "--words",
        default="speechcommands",
        help="speechcommands (35), commands (10), digits (10) or comma-separated words",
    )
    synth.add_argument("--voices", type=int, default=24, help="speakers (3 to 96; default 24)")
    synth.add_argument(
        "--repeats", type=int, default=4, help="takes per word and voice (default 4)"
    )
    synth.add_argument("--workers", type=int, help="processes (default: the CPUs available)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.action == "prepare":
        rows = prepare(args.corpus, args.root, label=args.label, split=args.split, seed=args.seed)
        manifest = write_prepared(rows, args.out)
    else:
        from vqpool.data.synth import synthesize  # numpy, soxr: only when synthesising

        manifest = synthesize(args.out, seed=args.seed, words=args.words, voices=args.voices,
                              repeats=args.repeats, workers=args.workers)  # fmt: skip
        rows = read_manifest(manifest)
    print(summarize(rows))
    print(f"\nwrote {manifest} and {label_map_path(manifest)}")
    return 0
