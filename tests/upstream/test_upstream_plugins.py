"""Users' own upstreams and code sources: a plugin distribution registers them through the
``vqpool.upstreams`` and ``vqpool.code_sources`` entry points, and extract, Encoder and bench
take them by name, with no change to vqpool."""

import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

import vqpool
from vqpool import plugins
from vqpool.cli import main
from vqpool.errors import ParameterError
from vqpool.evaluate.results import read_results
from vqpool.manifest import write_manifest
from vqpool.store import FeatureStore
from vqpool.upstream import codes as code_registry
from vqpool.upstream import registry as upstream_registry

# What a researcher with a new front end and a new tokenizer writes: frames of 4 statistics of
# each 10 ms of 16 kHz audio, and codes that say which of 4 loudness bins a 20 ms span falls in.
PLUGIN = '''
from fractions import Fraction

import torch
import vqpool
from vqpool.upstream import Upstream
from vqpool.upstream.base import Hidden
from vqpool.upstream.codes import CodeSource

HOP = 160


def window_stats(waveforms, hop):
    windows = waveforms[:, : waveforms.shape[1] // hop * hop].unflatten(1, (-1, hop))
    return torch.stack([windows.mean(-1), windows.abs().mean(-1), windows.std(-1),
                        windows.abs().amax(-1)], dim=-1)


class WindowStats(Upstream):
    name = kind = "window-stats"
    sample_rate, frame_rate = 16000, 100.0
    num_layers, layer_dim, named_dims, min_samples = 1, 4, {}, HOP

    def num_frames(self, num_samples):
        return num_samples // HOP

    def _forward(self, waveforms, lengths):
        return Hidden(layers=[window_stats(waveforms, HOP)])


class LoudnessBins(CodeSource):
    kind = name = "loudness-bins"
    sample_rate, rate = 16000, Fraction(50)
    num_codebooks, codebook_size = 1, 4

    def __init__(self, request):
        self.request = request

    def codes(self, waveforms, lengths, ids=None):
        level = window_stats(waveforms, 320)[..., 1]  # mean |x| of each 20 ms
        bins = torch.bucketize(level.contiguous(), torch.tensor([0.01, 0.03, 0.1]))
        return bins[..., None], lengths // 320


def register_upstream():
    vqpool.register_upstream("window-stats", lambda spec, *, allow_download, **options: WindowStats(**options),
                             description="four statistics of every 10 ms")


def register_codes():
    vqpool.register_code_source("loudness-bins", lambda request, context: LoudnessBins(request),
                                description="four loudness bins every 20 ms")
'''


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The plugin installed as pip lays a distribution out, with both registries as they were
    before and not yet looked for plugins."""
    site = tmp_path / "site"
    (site / "vqpool_loudness").mkdir(parents=True)
    (site / "vqpool_loudness" / "__init__.py").write_text(textwrap.dedent(PLUGIN))
    info = site / "vqpool_loudness-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: vqpool-loudness\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[vqpool.upstreams]\nwindow-stats = vqpool_loudness:register_upstream\n\n"
        "[vqpool.code_sources]\nloudness-bins = vqpool_loudness:register_codes\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delitem(sys.modules, "vqpool_loudness", raising=False)
    for registry in (upstream_registry.UPSTREAMS, code_registry.registry.CODE_SOURCES):
        monkeypatch.setattr(registry, "entries", dict(registry.entries))
    monkeypatch.setattr(plugins, "_loaded", set())
    return site


def expected_vq_lp(path: Path) -> np.ndarray:
    """vq-lp by hand: the fp16 frames of each 10 ms, each weighted by 1 / (how many frames of the
    utterance share its loudness bin), the bins of 20 ms spans taken at each frame's centre."""
    wave, rate = soundfile.read(path, dtype="float32")
    import soxr

    wave = soxr.resample(wave, rate, 16000, quality="HQ").astype(np.float32)
    n = len(wave) // 160
    windows = wave[: n * 160].reshape(n, 160)
    frames = np.stack([windows.mean(1), np.abs(windows).mean(1), windows.std(1, ddof=1),
                       np.abs(windows).max(1)], axis=1).astype(np.float16).astype(np.float64)
    spans = wave[: len(wave) // 320 * 320].reshape(-1, 320)
    bins = np.digitize(np.abs(spans).mean(1), [0.01, 0.03, 0.1], right=True)
    codes = bins[np.minimum(np.arange(n) // 2, len(bins) - 1)]  # centre (2t+1)/200 s lies in span t // 2
    counts = np.array([np.sum(codes == code) for code in codes])
    weights = (1 / counts) / np.sum(1 / counts)
    return weights @ frames


def test_the_encoder_takes_a_plugin_upstream_and_code_source_by_name(plugin: Path, fsdd_root: Path) -> None:
    files = [fsdd_root / "0_george_0.wav", fsdd_root / "1_jackson_3.wav"]
    encoder = vqpool.Encoder("window-stats", "vq-lp", codes_from="loudness-bins")
    vectors = encoder.encode([str(f) for f in files])
    assert encoder.upstream.codes.kind == "loudness-bins" and encoder.upstream.num_codebooks == 1
    np.testing.assert_allclose(vectors, np.stack([expected_vq_lp(f) for f in files]), rtol=1e-4, atol=1e-6)
    described = encoder.upstream.describe()
    assert described["spec"] == "window-stats" and described["code_source"]["kind"] == "loudness-bins"


def test_extract_and_bench_take_them_by_name(plugin: Path, fsdd_root: Path, tmp_path: Path) -> None:
    manifest = tmp_path / "digits.csv"
    write_manifest([{"id": f"{digit}_george_{k}", "path": str(fsdd_root / f"{digit}_george_{k}.wav"),
                     "label": str(digit), "split": "train" if k < 4 else "test"}
                    for digit in range(3) for k in range(6)], manifest)
    store, results = tmp_path / "store", tmp_path / "results.jsonl"
    assert main(["extract", "--upstream", "window-stats", "--codes-from", "loudness-bins",
                 "--manifest", str(manifest), "--out", str(store)]) == 0
    opened = FeatureStore(store)
    assert opened.header.upstream.spec == "window-stats" and opened.num_codebooks == 1
    assert opened.header.upstream.code_source["kind"] == "loudness-bins"
    assert main(["bench", "--store", str(store), "--methods", "ap,vq-lp", "--results", str(results)]) == 0
    rows = read_results(results)
    assert [row["method"] for row in rows] == ["ap", "vq-lp"]
    # The stored vq-lp vector of one utterance is the hand-made one.
    row = next(i for i, meta in enumerate(opened.meta) if meta["id"] == "0_george_0")
    frames, codes = opened.array(row, "frames"), opened.array(row, "codes")
    weights = torch.tensor([1.0 / int((codes == c).sum()) for c in codes[:, 0]], dtype=torch.float64)
    mine = (weights / weights.sum()) @ torch.as_tensor(frames.astype(np.float64))
    np.testing.assert_allclose(mine.numpy(), expected_vq_lp(fsdd_root / "0_george_0.wav"), rtol=1e-4, atol=1e-6)


def test_names_are_listed_and_built_ins_are_kept(plugin: Path) -> None:
    assert "window-stats" in vqpool.upstream.upstream_names()
    assert "loudness-bins" in code_registry.code_source_names()
    with pytest.raises(ParameterError, match="'logmel' is a built-in upstream"):
        vqpool.register_upstream("logmel", lambda spec, **options: None)
    with pytest.raises(ParameterError, match="'units' is a built-in code source"):
        vqpool.register_code_source("units", lambda request, context: None)
