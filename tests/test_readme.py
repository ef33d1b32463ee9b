"""The README stays true: its test command is what CI runs, and its Python example runs."""

import re
from pathlib import Path

import pytest
import torch

import tiny_models

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
PROSE = " ".join(README.split())  # for sentences, wherever their lines break


def test_ci_runs_the_readmes_test_command():
    commands = re.findall(r"```bash\n(.+?)\n```", README)
    test_command = next(c for c in commands if "pytest" in c)
    assert test_command in (REPO / ".ci" / "run").read_text()
    assert "vqpool demo" in commands[0]


# The front page keeps the quick start; the longer examples live on the docs pages.
PAGES = [README, *(path.read_text() for path in sorted((REPO / "docs").rglob("*.md")))]


def python_block(containing: str) -> str:
    return next(block for page in PAGES for block in re.findall(r"```python\n(.+?)\n```", page, re.S)
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


def test_ci_then_runs_the_e2e_tests_the_quick_run_leaves_out(pytestconfig):
    test_command = next(c for c in re.findall(r"```bash\n(.+?)\n```", README) if "pytest" in c)
    e2e_command = "python -m pytest -q -m e2e"
    assert f"`{e2e_command}` runs just those" in PROSE
    assert "tests marked `e2e`" in PROSE
    ci = [line for line in (REPO / ".ci" / "run").read_text().splitlines()
          if not line.lstrip().startswith("#")]
    quick = next(i for i, line in enumerate(ci) if test_command in line)
    assert any(e2e_command in line for line in ci[quick + 1 :])
    # The quick run is the one that leaves them out: the marker is registered, addopts
    # deselects it.
    assert any(line.startswith("e2e:") for line in pytestconfig.getini("markers"))
    addopts = pytestconfig.getini("addopts")
    assert addopts[addopts.index("-m") + 1] == "not e2e"


class Collected:
    """A plugin that keeps the test ids a run selects."""

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.ids = [item.nodeid for item in session.items]


def test_the_readmes_marker_options_select_as_it_says():
    assert '`python -m pytest -q -m ""` runs everything' in PROSE
    selected = {}
    for name, options in (("quick", []), ("everything", ["-m", ""]), ("e2e", ["-m", "e2e"])):
        plugin = Collected()
        # In this process, which has imported torch already: a fresh one would take seconds.
        code = pytest.main(["--collect-only", "-qq", "-p", "no:cacheprovider", "--rootdir",
                            str(REPO), "-c", str(REPO / "pyproject.toml"), *options,
                            str(REPO / "tests" / "test_demo.py")], plugins=[plugin])
        assert code in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED)
        selected[name] = plugin.ids
    assert selected["quick"] == []
    assert selected["everything"] == selected["e2e"] == [
        "tests/test_demo.py::test_demo_runs_end_to_end_and_resumes"]


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
