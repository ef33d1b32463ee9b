"""No code from a model folder runs: a folder whose config maps to its own Python code is refused
in one line, even with "y" waiting on stdin for transformers' question."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vqpool.errors import ParameterError
from vqpool.upstream import load_upstream

REPO = Path(__file__).resolve().parents[2]


def custom_code_folder(root: Path, marker: Path) -> Path:
    folder = root / "custom-model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({
        "model_type": "payload-model", "architectures": ["PayloadModel"],
        "auto_map": {"AutoConfig": "payload.PayloadConfig", "AutoModel": "payload.PayloadModel"},
    }))
    (folder / "payload.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    return folder


def test_load_upstream_refuses_a_folder_with_its_own_code(tmp_path: Path) -> None:
    marker = tmp_path / "payload-ran"
    folder = custom_code_folder(tmp_path, marker)
    with pytest.raises(ParameterError, match="runs no code from a model folder") as caught:
        load_upstream(str(folder))
    assert caught.value.parameter == "upstream" and "\n" not in str(caught.value)
    with pytest.raises(ParameterError, match="runs no code") as caught:
        load_upstream("logmel", codes_from=str(folder))
    assert caught.value.parameter == "codes_from"
    assert not marker.exists()


def test_the_cli_refuses_it_with_yes_on_stdin(tmp_path: Path, fsdd_root: Path) -> None:
    marker = tmp_path / "payload-ran"
    folder = custom_code_folder(tmp_path, marker)
    wav = sorted(fsdd_root.glob("*.wav"))[0]
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"id,path\nu0,{wav}\n")
    done = subprocess.run(
        [sys.executable, "-m", "vqpool", "extract", "--upstream", str(folder), "--manifest",
         str(manifest), "--out", str(tmp_path / "store")],
        input="y\n", capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    assert done.returncode != 0
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    assert "--upstream" in done.stderr and "runs no code from a model folder" in done.stderr
    assert not marker.exists()
