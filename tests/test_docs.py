"""The method documentation is the project's own: in the repository, cited, complete, and the
one every message, docstring and the README points to."""

import re
from pathlib import Path

import pytest

from vqpool.pooling import method_names

REPO = Path(__file__).resolve().parents[1]
METHODS_DOC = REPO / "docs" / "methods.md"


def test_every_pointer_leads_to_the_projects_own_methods_page():
    assert METHODS_DOC.is_file()
    sources = [*(REPO / "src").rglob("*.py"), REPO / "README.md"]
    stale = [str(path.relative_to(REPO)) for path in sources
             if "METHODS.md" in path.read_text(encoding="utf-8")]
    assert stale == []  # the spec file lies outside the repository and the wheel
    assert "docs/methods.md" in (REPO / "README.md").read_text(encoding="utf-8")


def test_the_methods_page_cites_the_paper_and_covers_every_method_and_protocol():
    text = METHODS_DOC.read_text(encoding="utf-8")
    assert "Park, Choi, Heo and Park" in text and "Interspeech 2023" in text
    assert "Unsupervised Speech Representation Pooling Using Vector Quantization" in text
    for method in method_names(trained=None):  # the built-ins, as the registry lists them
        assert re.search(rf"`{re.escape(method)}`", text), method
    for words in ('semantics="reference"', "1-nearest-neighbour", "linear probe",
                  "iden_split.txt", "testing_list.txt", "leaving one session out", "bootstrap"):
        assert words in text, words
    # every "section N" a docstring or message cites exists on the page
    sections = {int(n) for n in re.findall(r"^## (\d+)\.", text, re.M)}
    cited = {int(n) for path in (REPO / "src").rglob("*.py")
             for n in re.findall(r"docs/methods\.md sections? (\d+)", path.read_text())}
    assert cited and cited <= sections


def test_the_readme_says_what_the_constraints_file_pins():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    pins = (REPO / "constraints.txt").read_text().split()
    assert pins == ["torch==2.13.0"]
    assert "pins the CPU build" not in readme  # it pins a version, not a build
    assert "pins the PyTorch *version*" in readme
    assert "download.pytorch.org/whl/cpu" in readme and "download.pytorch.org/whl/cu" in readme


def test_the_wheel_ships_the_methods_page(tmp_path):
    """Docstrings and messages cite docs/methods.md, which lies outside the package: the wheel
    carries it as data (installed to <prefix>/share/doc/vqpool/methods.md)."""
    import shutil
    import subprocess
    import sys
    import zipfile

    pytest.importorskip("setuptools")
    tree = tmp_path / "tree"  # a copy: building in the checkout would leave build/ behind
    tree.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE", "CITATION.cff"):
        shutil.copy(REPO / name, tree / name)
    shutil.copytree(REPO / "docs", tree / "docs")
    shutil.copytree(REPO / "src", tree / "src", ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(tmp_path / "dist"), str(tree)], check=True, capture_output=True)
    (wheel,) = (tmp_path / "dist").glob("vqpool-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        shipped = [name for name in archive.namelist() if name.endswith("/methods.md")]
        assert shipped == ["vqpool-0.1.0.data/data/share/doc/vqpool/methods.md"]
        assert archive.read(shipped[0]) == METHODS_DOC.read_bytes()


def test_every_docs_page_is_in_the_site_and_every_readme_link_leads_somewhere():
    import yaml

    def pages(nav):
        for entry in nav:
            for value in entry.values():
                yield from pages(value) if isinstance(value, list) else [value]

    config = yaml.safe_load((REPO / "mkdocs.yml").read_text())
    in_nav = set(pages(config["nav"]))
    on_disk = {str(p.relative_to(REPO / "docs")) for p in (REPO / "docs").rglob("*.md")}
    assert on_disk == in_nav
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    links = re.findall(r"\]\(([^)#]+?)(?:#[^)]*)?\)", readme)
    local = [link for link in links if "://" not in link]
    assert any(link.startswith("docs/") for link in local)
    assert [link for link in local if not (REPO / link).exists()] == []
