"""Users' own pooling methods: `vqpool.register_method`, and plugin packages that ship methods
through the ``vqpool.methods`` entry point, taken by name by pool, extract, bench, probe and report."""

import csv
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import vqpool
from vqpool import plugins
from vqpool.cli import main
from vqpool.errors import VqpoolError
from vqpool.evaluate.results import read_results
from vqpool.pooling import (
    METHODS,
    CorpusStats,
    frame_weights,
    get_method,
    method_names,
    pool,
    registry,
)
from vqpool.pooling import options as pool_options

# The plugin's whole source: what a researcher with a new pooling idea writes. Its weights are a
# generalised vq-lp, ``w_t ∝ (sum_g n_g(q_t^g))^-power``, counted here by brute force.
PLUGIN = '''
import torch
import vqpool


def lp_power(lengths, codes, stats=None, *, power):
    batch, length, groups = codes.shape
    mask = torch.arange(length, device=codes.device)[None] < lengths[:, None]
    same = (codes[:, :, None, :] == codes[:, None, :, :]) & mask[:, None, :, None]
    counts = same.sum(dim=(2, 3)).float()  # [B, L]: sum over codebooks of n_g(q_t^g)
    weights = torch.where(mask, counts.clamp_min(1).pow(-power), 0.0)
    return weights / weights.sum(1, keepdim=True)


def register():
    vqpool.register_method("lp-power", weights=lp_power, needs_codes=True,
                           options={"power": 1.0}, description="vq-lp with a power")
'''


@pytest.fixture
def clean_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts from the built-in methods, with the plugins not yet looked for."""
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.setattr(pool_options, "_DECLARED", dict(pool_options._DECLARED))
    monkeypatch.setattr(plugins, "_loaded", set())


def write_plugin(site: Path, source: str = PLUGIN, entry: str = "vqpool_lp_power:register") -> Path:
    """An installed plugin distribution, as pip lays one out: the module and its dist-info."""
    (site / "vqpool_lp_power").mkdir(parents=True)
    (site / "vqpool_lp_power" / "__init__.py").write_text(textwrap.dedent(source))
    info = site / "vqpool_lp_power-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: vqpool-lp-power\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[vqpool.methods]\nlp-power = {entry}\n")
    return site


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_registry: None) -> Path:
    site = write_plugin(tmp_path / "site")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delitem(sys.modules, "vqpool_lp_power", raising=False)
    return site


def batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    frames = torch.randn(5, 9, 4, generator=generator)
    lengths = torch.tensor([9, 7, 4, 2, 1])
    codes = torch.randint(0, 3, (5, 9, 2), generator=generator)
    return frames, lengths, codes


def test_a_registered_method_pools_by_name_with_its_options(clean_registry: None) -> None:
    namespace: dict = {}
    exec(PLUGIN, namespace)
    namespace["register"]()
    frames, lengths, codes = batch()
    # power 1 is vq-lp (counted by scatter in vqpool, by brute force in the plugin); 0 is ap.
    torch.testing.assert_close(pool(frames, lengths, codes, "lp-power"),
                               pool(frames, lengths, codes, "vq-lp"))
    torch.testing.assert_close(vqpool.pool(frames, lengths, codes, "lp-power", power=0),
                               pool(frames, lengths, codes, "ap"))
    weights = frame_weights(lengths, codes, "lp-power", power=2.0)
    lp = frame_weights(lengths, codes, "vq-lp")
    torch.testing.assert_close(weights, (lp**2) / (lp**2).sum(1, keepdim=True))
    assert weights[3, 2:].eq(0).all()  # padding
    assert "lp-power" in method_names() and "lp-power" not in METHODS  # METHODS: the paper's
    record = get_method("lp-power")
    assert record.needs_codes and not record.needs_stats and record.options == {"power"}
    with pytest.raises(VqpoolError, match="power must be a float; got 'x'"):
        pool(frames, lengths, codes, "lp-power", power="x")
    with pytest.raises(VqpoolError, match="codes are needed by method 'lp-power'"):
        pool(frames, lengths, None, "lp-power")


def test_registration_mistakes_are_refused(clean_registry: None) -> None:
    def uniform(lengths, codes, stats=None):
        mask = torch.arange(int(lengths.max()))[None] < lengths[:, None]
        return mask / mask.sum(1, keepdim=True)

    with pytest.raises(VqpoolError, match="'vq-lp' is a built-in pooling method"):
        vqpool.register_method("vq-lp", weights=uniform)
    vqpool.register_method("uniform", weights=uniform)
    with pytest.raises(VqpoolError, match="'uniform' is already registered; pass replace=True"):
        vqpool.register_method("uniform", weights=uniform)
    vqpool.register_method("uniform", weights=uniform, replace=True)
    with pytest.raises(VqpoolError, match="weights or pool: give exactly one"):
        vqpool.register_method("neither")
    with pytest.raises(VqpoolError, match="declares 'a', a built-in pooling option"):
        vqpool.register_method("clash", weights=uniform, options={"a": 1.0})
    with pytest.raises(VqpoolError, match="must be a non-empty string without commas"):
        vqpool.register_method("a,b", weights=uniform)
    # Without codes the weights span the longest utterance and are padded to the frames' length.
    frames, lengths, _ = batch()
    padded = torch.cat([frames, torch.randn(5, 3, 4)], dim=1)
    torch.testing.assert_close(pool(padded, lengths, None, "uniform"), pool(frames, lengths, None, "ap"))


@pytest.mark.parametrize(("broken", "message"), [
    (lambda m: m * 2.0, "do not sum to 1"),
    (lambda m: torch.ones_like(m) / m.shape[1], "non-zero weights on padding"),
    (lambda m: m[:, :-1], "weights of shape"),
    (lambda m: -m, "negative or non-finite"),
    (lambda m: m.tolist(), "not a float tensor"),
])
def test_a_method_that_breaks_the_weights_contract_is_named(clean_registry: None, broken,
                                                             message: str) -> None:
    def weights(lengths, codes, stats=None):
        mask = (torch.arange(codes.shape[1])[None] < lengths[:, None]).float()
        return broken(mask / mask.sum(1, keepdim=True))

    vqpool.register_method("broken", weights=weights, needs_codes=True)
    frames, lengths, codes = batch()
    with pytest.raises(VqpoolError, match=f"pooling method 'broken' returned .*{message}"):
        pool(frames, lengths, codes, "broken")


def test_a_pool_function_method(clean_registry: None) -> None:
    def max_mean(frames, lengths, codes, stats=None):
        mask = torch.arange(frames.shape[1])[None, :, None] < lengths[:, None, None]
        peak = frames.masked_fill(~mask, float("-inf")).amax(1)
        return torch.cat([peak, pool(frames, lengths, None, "ap")], dim=1)

    vqpool.register_method("max-mean", pool=max_mean, output_factor=2)
    frames, lengths, codes = batch()
    out = pool(frames, lengths, codes, "max-mean")
    expected = torch.stack([frames[b, :n].amax(0) for b, n in enumerate(lengths.tolist())])
    torch.testing.assert_close(out[:, :4], expected)
    assert vqpool.pooling.output_dim("max-mean", 4) == 8
    with pytest.raises(VqpoolError, match="has no frame weights"):
        frame_weights(lengths, codes, "max-mean")


def test_statistics_reach_a_method_that_needs_them(clean_registry: None) -> None:
    def rare_first(lengths, codes, stats=None):
        counts = stats.code_counts[0].float()[codes[..., 0]] + 1
        mask = torch.arange(codes.shape[1])[None] < lengths[:, None]
        weights = torch.where(mask, 1 / counts, 0.0)
        return weights / weights.sum(1, keepdim=True)

    vqpool.register_method("rare-first", weights=rare_first, needs_codes=True, needs_stats=True)
    frames, lengths, codes = batch()
    stats = CorpusStats.fit([batch(1)], codebook_size=3, progress=False)
    with pytest.raises(VqpoolError, match="stats is needed by method 'rare-first'"):
        pool(frames, lengths, codes, "rare-first")
    # Only the first codebook counts, with smoothing 1: vq-gp of that codebook alone.
    first = codes[..., :1]
    torch.testing.assert_close(
        pool(frames, lengths, codes, "rare-first", stats),
        pool(frames, lengths, first, "vq-gp", CorpusStats.fit([batch(1)[:2] + (batch(1)[2][..., :1],)],
                                                              codebook_size=3, progress=False)),
    )


def test_a_plugin_entry_point_is_loaded_on_first_use(plugin: Path) -> None:
    assert "lp-power" not in registry._REGISTRY
    frames, lengths, codes = batch()
    torch.testing.assert_close(pool(frames, lengths, codes, "lp-power"), pool(frames, lengths, codes, "vq-lp"))
    assert "lp-power" in method_names()


def test_a_broken_plugin_is_reported_not_fatal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               clean_registry: None,
                                               caplog: pytest.LogCaptureFixture) -> None:
    site = write_plugin(tmp_path / "site", "def register():\n    raise RuntimeError('oops')\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delitem(sys.modules, "vqpool_lp_power", raising=False)
    with caplog.at_level(logging.WARNING, logger="vqpool"):
        assert method_names() == METHODS
    assert "pooling plugin lp-power (vqpool_lp_power:register) failed to load: RuntimeError: oops" in caplog.text
    with pytest.raises(VqpoolError, match="'lp-power' is not a pooling method"):
        get_method("lp-power")


@pytest.fixture
def manifest(fsdd_root: Path, tmp_path: Path) -> Path:
    """Digits 0-2 of one speaker: 8 train, 1 validation, 2 test recordings each."""
    path = tmp_path / "digits.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "path", "label", "split"])
        for digit in range(3):
            for k in range(11):
                split = "train" if k < 8 else "validation" if k < 9 else "test"
                writer.writerow([f"{digit}_george_{k}", fsdd_root / f"{digit}_george_{k}.wav", digit, split])
    return path


@pytest.fixture
def codebook(tmp_path: Path) -> Path:
    from vqpool.upstream.codebook import KMeansCodebook

    # Random centroids quantize log-mel frames well enough here, without k-means' time.
    generator = torch.Generator().manual_seed(0)
    centroids = [torch.randn(8, 40, generator=generator) for _ in range(2)]
    return KMeansCodebook(centroids, {"upstream": "logmel", "layer": "mean"}).save(tmp_path / "cb.codebook")


def test_a_plugin_method_goes_through_every_verb(plugin: Path, manifest: Path, codebook: Path,
                                                 tmp_path: Path, capsys: pytest.CaptureFixture,
                                                 fsdd_root: Path) -> None:
    frames_store, pooled_store = tmp_path / "frames", tmp_path / "pooled"
    common = ["--upstream", "logmel", "--codebook", str(codebook), "--manifest", str(manifest)]
    assert main(["extract", *common, "--out", str(frames_store)]) == 0
    assert main(["extract", *common, "--out", str(pooled_store), "--pooled-only", "lp-power",
                 "--option", "power=0.5"]) == 0
    results = tmp_path / "results.jsonl"

    assert main(["bench", "--store", str(frames_store), "--results", str(results)]) == 0  # all
    assert main(["bench", "--store", str(frames_store), "--methods", "lp-power", "--option",
                 "power=0", "--results", str(results)]) == 0
    assert main(["bench", "--store", str(pooled_store), "--methods", "lp-power",
                 "--results", str(results)]) == 0
    assert main(["probe", "--store", str(frames_store), "--methods", "ap,lp-power", "--seeds", "1",
                 "--epochs", "2", "--results", str(results)]) == 0
    rows = read_results(results)
    bench = [row for row in rows if row["protocol"] == "1nn"]
    assert [row["method"] for row in bench[:13]] == [*METHODS, "lp-power"]
    by_method = {row["method"]: row for row in bench[:13]}
    assert by_method["lp-power"]["accuracy"] == by_method["vq-lp"]["accuracy"]  # power 1 is vq-lp
    assert bench[13]["settings"]["power"] == 0 and bench[13]["accuracy"] == by_method["ap"]["accuracy"]
    assert bench[14]["settings"]["power"] == 0.5  # the pooled-only store's recorded option
    assert [row["method"] for row in rows if row["protocol"] == "probe"] == ["ap", "lp-power"]
    # A stored method refuses another value of its own option.
    capsys.readouterr()
    assert main(["bench", "--store", str(pooled_store), "--methods", "lp-power", "--option",
                 "power=2", "--results", str(results)]) == 1
    assert "lp-power was pooled at extraction with power=0.5, not the requested 2.0" in capsys.readouterr().err

    report = tmp_path / "report"
    audio = fsdd_root / "1_george_3.wav"
    assert main(["report", str(results), "--out", str(report), "--weights", str(audio),
                 "--upstream", "logmel", "--codebook", str(codebook), "--methods", "vq-lp,lp-power",
                 "--tsne", str(frames_store), "--split", "train"]) == 0
    assert "lp-power" in (report / "report.md").read_text()
    assert (report / f"weights-{audio.stem}.png").is_file() and (report / "tsne-frames-train.png").is_file()


def test_a_fresh_process_finds_the_plugin(plugin: Path, manifest: Path, codebook: Path,
                                          tmp_path: Path) -> None:
    store = tmp_path / "store"
    main(["extract", "--upstream", "logmel", "--codebook", str(codebook), "--manifest", str(manifest),
          "--out", str(store)])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(plugin), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-m", "vqpool.cli", "bench", "--store", str(store), "--methods", "ap,lp-power",
         "--results", str(tmp_path / "r.jsonl")],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "lp-power" in done.stdout


def test_users_methods_get_int64_codes_whatever_they_were_given(clean_registry: None) -> None:
    """vqpool works in int32 inside; users' methods are promised int64 (their arithmetic on
    codes, such as q0 * V + q1, must not overflow), from weights and pool functions alike."""
    seen = []

    def uniform(lengths, codes, stats=None):
        seen.append(codes.dtype)
        mask = torch.arange(codes.shape[1])[None] < lengths[:, None]
        return mask / mask.sum(1, keepdim=True)

    def first_frame(frames, lengths, codes, stats=None):
        seen.append(codes.dtype)
        return frames[:, 0]

    vqpool.register_method("uniform-weights", weights=uniform, needs_codes=True)
    vqpool.register_method("first-frame", pool=first_frame, needs_codes=True)
    frames, lengths, codes = batch()
    for dtype in (torch.int16, torch.int32, torch.int64):
        pool(frames, lengths, codes.to(dtype), "uniform-weights")
        pool(frames, lengths, codes.to(dtype), "first-frame")
    assert seen == [torch.int64] * 6
