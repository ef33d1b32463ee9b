"""`vqpool search`: the utterances of an index nearest to audio files, ids or vectors."""

import argparse
import json

DESCRIPTION = """\
Find the utterances of an index (`vqpool index build`) most similar (cosine) to each query. A
query is an audio file, run through the store's upstream, codebook, statistics and pooling
method exactly as the store's utterances were; an utterance id of the index; or a .npy file
holding a vector (or one vector per row). An utterance of the index finds itself first."""

EPILOG = """examples:
  vqpool search --index fsdd.index ../shared/data/fsdd/3_jackson_0.wav -k 5
  vqpool search --index fsdd.index 3_jackson_0 7_theo_12 --json
  vqpool search --index vox1.index query.npy --ef-search 256"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "search", help="nearest utterances of an index to audio files, ids or vectors",
        description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--index", required=True, help="the index folder (`vqpool index build`)")
    parser.add_argument("queries", nargs="+", metavar="QUERY",
                        help="an audio file, an utterance id of the index, or a .npy vector file")
    parser.add_argument("-k", type=int, default=10, help="neighbours per query (default: 10)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    parser.add_argument("--nprobe", type=int, help="ivf: lists searched (default: the index's)")
    parser.add_argument("--ef-search", type=int, help="hnsw: candidates (default: the index's)")
    parser.add_argument("--device", default="cpu", help="torch device for audio queries (default: cpu)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from vqpool.index import Index

    index = Index.load(args.index)
    vectors, names = index.query_vectors(args.queries, device=args.device)
    hits = index.search(vectors, args.k, nprobe=args.nprobe, ef_search=args.ef_search)
    results = []
    for name, scores, rows in zip(names, hits.scores, hits.rows, strict=True):
        found = [{"rank": rank, "id": index.rows[row]["id"], "label": index.rows[row]["label"],
                  "split": index.rows[row]["split"], "speaker": index.rows[row]["speaker"],
                  "path": index.rows[row]["path"], "cosine": round(float(score), 6)}
                 for rank, (score, row) in enumerate(zip(scores, rows, strict=True), 1) if row >= 0]
        results.append({"query": name, "hits": found})
    if args.json:
        print(json.dumps({"index": str(args.index), "method": index.method, "results": results},
                         indent=2))
        return 0
    for number, result in enumerate(results):
        if number:
            print()
        print(f"query: {result['query']}  ({index.method}, {index.params.describe()})")
        print(format_hits(result["hits"]))
    return 0


def format_hits(hits: list[dict]) -> str:
    """A plain table: rank, id, label, cosine."""
    rows = [("rank", "id", "label", "cosine")] + [
        (str(h["rank"]), h["id"], h["label"], f"{h['cosine']:.4f}") for h in hits]
    widths = [max(len(row[c]) for row in rows) for c in range(4)]
    lines = ["  ".join(cell.rjust(w) if c in (0, 3) else cell.ljust(w)
                       for c, (cell, w) in enumerate(zip(row, widths, strict=True))).rstrip()
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
