import subprocess
import sys

from vqpool import __version__
from vqpool.cli import VERBS, main


def test_version_and_help_list_every_verb(capsys):
    assert main([]) == 2
    listing = capsys.readouterr().out
    for verb in VERBS:
        assert verb in listing
    result = subprocess.run(
        [sys.executable, "-m", "vqpool.cli", "--version"], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == f"vqpool {__version__}"
