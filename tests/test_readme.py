"""The README stays true: its test command is what CI runs, and its Python example runs."""

import re
from pathlib import Path

import torch

import tiny_models

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()


def test_ci_runs_the_readmes_test_command():
    commands = re.findall(r"```bash\n(.+?)\n```", README)
    test_command = next(c for c in commands if "pytest" in c)
    assert test_command in (REPO / ".ci" / "run").read_text()
    assert "vqpool demo" in commands[0]


def python_block(containing: str) -> str:
    return next(block for block in re.findall(r"```python\n(.+?)\n```", README, re.S)
                if containing in block)


def test_encoder_example_opens_the_python_section(tmp_path, monkeypatch, fsdd_root):
    python = README.split("## Python", 1)[1]
    example = re.search(r"```python\n(.+?)\n```", python, re.S).group(1)
    assert "vqpool.Encoder(" in example and len(example.strip().splitlines()) == 3
    model = tiny_models.make_wav2vec2_pretraining(tmp_path / "wav2vec2", norm="group")
    files = [str(fsdd_root / "0_george_0.wav"), str(fsdd_root / "1_jackson_3.wav")]
    monkeypatch.chdir(tmp_path)
    code = (example.replace('"facebook/wav2vec2-base"', repr(str(model)))
            .replace('device="cuda"', 'device="cpu"').replace('["a.wav", "b.flac"]', repr(files)))
    namespace: dict = {}
    exec("import vqpool\n" + code, namespace)
    vectors = namespace["vectors"]
    assert vectors.shape == (2, 32) and (tmp_path / "enc.vqpool").is_file()
    import numpy as np

    np.testing.assert_array_equal(namespace["encoder"].encode(files), vectors)


def test_python_example_runs_on_a_local_checkpoint(tmp_path):
    example = python_block("load_upstream")
    model = tiny_models.make_wav2vec2_pretraining(tmp_path / "wav2vec2", norm="group")
    namespace: dict = {}
    exec(example.replace('"facebook/wav2vec2-base"', repr(str(model))), namespace)
    vectors, weights = namespace["vectors"], namespace["weights"]
    assert vectors.shape == (2, 32) and torch.isfinite(vectors).all()
    assert torch.allclose(weights.sum(1), torch.ones(2))


def test_own_method_example_runs(monkeypatch):
    from vqpool.pooling import options, registry

    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.setattr(options, "_DECLARED", dict(options._DECLARED))
    example = python_block("register_method")
    generator = torch.Generator().manual_seed(0)
    codes = torch.randint(0, 4, (3, 8, 2), generator=generator)
    namespace = {"frames": torch.randn(3, 8, 5, generator=generator), "codes": codes,
                 "frame_lengths": torch.tensor([8, 5, 2])}
    exec(example, namespace)
    assert namespace["vectors"].shape == (3, 5)
    # power 1 over one codebook is vq-lp of that codebook.
    frames, lengths = namespace["frames"], namespace["frame_lengths"]
    torch.testing.assert_close(
        namespace["vqpool"].pool(frames, lengths, codes, method="vq-count"),
        namespace["vqpool"].pool(frames, lengths, codes[..., :1], method="vq-lp"),
    )
