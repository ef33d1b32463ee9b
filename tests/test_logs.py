"""The library logs its notes; the command line shows each one as a line on stderr."""

import logging

import pytest

import corpus_trees
from vqpool.cli import main
from vqpool.commands.logs import StderrLines, show_library_logs


@pytest.fixture
def vqpool_logger():
    """The ``vqpool`` logger, put back as it was (handlers and level) afterwards."""
    logger = logging.getLogger("vqpool")
    handlers, level = list(logger.handlers), logger.level
    logger.handlers = [h for h in handlers if not isinstance(h, StderrLines)]
    logger.setLevel(logging.NOTSET)
    yield logger
    logger.handlers, logger.level = handlers, level


def test_library_notes_are_silent_until_the_cli_shows_them(vqpool_logger, capsys):
    note = logging.getLogger("vqpool.data.common")
    note.info("fsdd: ignored 1 file")
    assert capsys.readouterr().err == ""  # a library configures no handler
    assert show_library_logs() is vqpool_logger and show_library_logs() is vqpool_logger
    assert sum(isinstance(h, StderrLines) for h in vqpool_logger.handlers) == 1
    note.info("fsdd: ignored %d file", 1)
    note.debug("not shown")
    assert capsys.readouterr().err == "fsdd: ignored 1 file\n"  # the message alone, once


def test_a_cli_run_shows_what_a_recipe_left_out(vqpool_logger, tmp_path, capsys):
    root = tmp_path / "mine"
    for label in ("cough", "laugh"):
        for index in range(5):
            corpus_trees.tone(root / label / f"{index}.wav")
    (root / "laugh" / "notes.txt").write_text("recorded at home\n")
    assert main(["data", "prepare", "folder", "--root", str(root), "--out", str(tmp_path / "m.csv")]) == 0
    err = capsys.readouterr().err
    assert "folder: ignored 1 file (not audio)" in err.splitlines()[0]
