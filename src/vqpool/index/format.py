"""The index folder's layout, which the writer and the reader share.

The folder (written whole to a temporary folder, then swapped into place):

- ``index.json``: the header: the store, its upstream (spec, layers, codebook), the method and
  its options, the statistics file, the kind of index and its parameters, the recall measured;
- ``vectors.faiss``: the FAISS index of the L2-normalised vectors, row r under id r;
- ``rows.csv``: ``row,id,label,split,speaker,path`` of every indexed utterance;
- ``stats.pt``: the `CorpusStats` the vectors were pooled with (methods that need them), so
  that queries are pooled identically;
- ``codebook.pt``: a copy of the store's k-means codebook (upstreams without a quantizer), so
  that audio queries get the codes the store's utterances got.
"""

FORMAT, VERSION = "vqpool-index", 1
HEADER, FAISS_FILE, ROWS, STATS, CODEBOOK = (
    "index.json", "vectors.faiss", "rows.csv", "stats.pt", "codebook.pt")
ROW_COLUMNS = ("row", "id", "label", "split", "speaker", "path")
