"""Messages that lead somewhere: a mistyped upstream, a missing file, the stop at bad audio, a
store that is not there, and progress that counts to what it will really see."""

import pytest
import torch

from vqpool.cli import main
from vqpool.data import write_manifest
from vqpool.errors import BadAudioError, ParameterError
from vqpool.extract import extract
from vqpool.upstream import load_upstream
from vqpool.upstream.codebook import frames_in, sample_frames


def test_a_mistyped_upstream_suggests_the_builtin_names_before_hub_advice(tmp_path, capsys):
    with pytest.raises(ParameterError) as caught:
        load_upstream("logmell")
    message = str(caught.value)
    assert message.startswith("upstream 'logmell' is not a registered upstream: did you mean logmel?")
    assert "registered upstreams are logmel, ge2e;" in message
    assert message.index("did you mean") < message.index("Hugging Face")
    rows = [{"id": "a", "path": "a.wav", "label": "x", "split": "train"}]
    write_manifest(rows, tmp_path / "m.csv")
    assert main(["extract", "--upstream", "GE2", "--manifest", str(tmp_path / "m.csv"),
                 "--out", str(tmp_path / "s")]) == 1
    assert "--upstream 'GE2' is not a registered upstream: did you mean ge2e?" in capsys.readouterr().err
    # a name like no built-in gets the hub advice alone
    with pytest.raises(ParameterError) as caught:
        load_upstream("facebook/wav2vec2-nothing")
    assert "did you mean" not in str(caught.value) and "Hugging Face" in str(caught.value)


def test_a_missing_file_says_so_and_the_stop_says_skipping_is_possible(fsdd_root, tmp_path, capsys):
    missing = tmp_path / "gone.wav"
    rows = [{"id": "ok", "path": str(fsdd_root / "0_jackson_0.wav"), "label": "0",
             "split": "train"},
            {"id": "gone", "path": str(missing), "label": "1", "split": "test"}]
    with pytest.raises(BadAudioError) as caught:
        extract(rows, load_upstream("logmel"), tmp_path / "s", progress=False)
    assert str(caught.value).startswith(f"{missing}: no such file (")
    assert "on_bad_audio='skip' skips such files" in str(caught.value)  # the library's spelling
    write_manifest(rows, tmp_path / "m.csv")
    assert main(["extract", "--upstream", "logmel", "--no-codes", "--manifest", str(tmp_path / "m.csv"),
                 "--out", str(tmp_path / "cli")]) == 1
    error = capsys.readouterr().err
    assert f"{missing}: no such file" in error and "--on-bad-audio skip skips such files" in error
    assert "--" not in str(caught.value)  # no library message names a flag
    # Drawing one file has nothing to skip to: no such advice there.
    assert main(["report", "--weights", str(missing), "--upstream", "logmel",
                 "--out", str(tmp_path / "r")]) == 1
    error = capsys.readouterr().err
    assert error == f"vqpool report: error: {missing}: no such file\n"


def test_a_store_that_is_not_there_says_so(tmp_path, capsys):
    assert main(["bench", "--store", str(tmp_path / "nowhere")]) == 1
    assert capsys.readouterr().err == (
        f"vqpool bench: error: {tmp_path / 'nowhere'}: no such folder (a feature store is a folder "
        "that extraction writes)\n")
    (tmp_path / "empty").mkdir()
    assert main(["probe", "--store", str(tmp_path / "empty")]) == 1
    assert "not a feature store" in capsys.readouterr().err  # there, but not a store


def test_the_codebook_progress_counts_the_frames_it_will_see(fsdd_root):
    upstream = load_upstream("logmel")
    paths = [fsdd_root / f"{digit}_jackson_0.wav" for digit in range(4)]
    order = list(range(len(paths)))
    everything = frames_in(upstream, paths, order, 10**9)
    frames, used = sample_frames(upstream, paths, layer="mean", max_frames=10**9, progress=False)
    assert everything == frames.shape[0] and used == 4  # fewer frames than asked: all of them
    assert frames_in(upstream, paths, order, 100) == 100  # more than asked: the sample's size
    with pytest.raises(BadAudioError, match="gone.wav: no such file$"):
        frames_in(upstream, [fsdd_root / "gone.wav"], [0], 100)
    assert torch.is_tensor(frames)


def test_an_upstream_without_codes_is_stopped_until_codes_or_no_codes_are_chosen(fsdd_root, tmp_path, capsys):
    """Codes are never dropped quietly: without a codebook, a log-mel store would serve no VQ method."""
    rows = [{"id": f"{d}", "path": str(fsdd_root / f"{d}_jackson_0.wav"), "label": str(d),
             "split": "train" if d < 3 else "test"} for d in range(4)]
    write_manifest(rows, tmp_path / "m.csv")
    args = ["extract", "--upstream", "logmel", "--manifest", str(tmp_path / "m.csv")]
    assert main([*args, "--out", str(tmp_path / "s")]) == 1
    error = capsys.readouterr().err
    assert "error: --codebook is needed: upstream logmel has no quantizer" in error
    assert "vqpool codebook fit --upstream logmel" in error and "--codes-from" in error
    assert "pass --no-codes" in error and len(error.strip().splitlines()) == 1
    assert not (tmp_path / "s").exists()  # refused before anything was written
    with pytest.raises(ParameterError, match="codebook is needed: .* pass no_codes"):
        extract(rows, load_upstream("logmel"), tmp_path / "api", require_codes=True, progress=False)
    assert main([*args, "--no-codes", "--out", str(tmp_path / "frames")]) == 0
    assert main(["bench", "--store", str(tmp_path / "frames"), "--methods", "all",
                 "--results", str(tmp_path / "r.jsonl")]) == 0
    assert "leaving out vq-squash-and" in capsys.readouterr().err  # the chosen store says so
