"""The model-free log-mel upstream and the pretrained GE2E encoder, on real FSDD recordings."""

import itertools

import numpy as np
import pytest
import torch
from torch import nn

from vqpool.audio import load_audio
from vqpool.errors import VqpoolError
from vqpool.upstream import ge2e as ge2e_module
from vqpool.upstream import load_upstream
from vqpool.upstream.ge2e import weights_path
from vqpool.upstream.logmel import mel_filterbank

SPEAKERS = ("george", "jackson", "lucas", "nicolas")


def fsdd(root, speaker, take=4):
    """Different digits by one speaker, 16 kHz (FSDD is 8 kHz: this exercises resampling)."""
    return [
        torch.from_numpy(load_audio(root / f"{digit}_{speaker}_1.wav", 16000))
        for digit in range(take)
    ]


def padded(audio):
    return torch.nn.utils.rnn.pad_sequence(audio, batch_first=True), torch.tensor(
        [len(a) for a in audio]
    )


def loop_logmel(audio: np.ndarray) -> np.ndarray:
    """Slow reference: frame by frame with numpy's FFT, then per-utterance standardisation over all bands."""
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(400) / 400)
    filters = mel_filterbank(16000, 400, 80).double().numpy()
    frames = []
    for start in range(0, len(audio) - 400 + 1, 160):
        power = np.abs(np.fft.rfft(audio[start : start + 400] * window)) ** 2
        frames.append(np.log(np.maximum(filters @ power, 1e-10)))
    frames = np.array(frames)
    return (frames - frames.mean()) / np.sqrt(frames.var() + 1e-5)


def test_mel_filterbank_matches_librosa():
    librosa = pytest.importorskip("librosa")
    for n_mels in (40, 80):
        expected = librosa.filters.mel(sr=16000, n_fft=400, n_mels=n_mels)
        np.testing.assert_allclose(mel_filterbank(16000, 400, n_mels).numpy(), expected, atol=1e-8)


def test_logmel_matches_a_frame_loop_and_batching_changes_nothing(fsdd_root):
    upstream = load_upstream("logmel")
    assert (upstream.dim, upstream.frame_rate, upstream.min_samples, upstream.codebook_size) == (
        80,
        100,
        400,
        None,
    )
    audio = fsdd(fsdd_root, "theo", take=3) + [torch.randn(400) * 0.1]
    batch = upstream(*padded(audio))
    for i, utterance in enumerate(audio):
        n = upstream.num_frames(len(utterance))
        assert batch.frame_lengths[i] == n
        expected = torch.from_numpy(loop_logmel(utterance.double().numpy())).float()
        torch.testing.assert_close(batch.frames[i, :n], expected, atol=2e-3, rtol=1e-3)
        alone = upstream(utterance[None], torch.tensor([len(utterance)])).frames[0]
        torch.testing.assert_close(batch.frames[i, :n], alone, atol=1e-4, rtol=1e-4)
        assert not batch.frames[i, n:].any()


def resemblyzer_normalize_volume(wav: np.ndarray, target_dbfs: float = -30.0) -> np.ndarray:
    """Resemblyzer's audio.normalize_volume(wav, -30, increase_only=True), verbatim."""
    rms = np.sqrt(np.mean((wav * 32767) ** 2))
    change = target_dbfs - 20 * np.log10(rms / 32767)
    return wav if change < 0 else wav * (10 ** (change / 20))


def loop_melspectrogram(wav: np.ndarray) -> np.ndarray:
    """``librosa.feature.melspectrogram(y=wav, sr=16000, n_fft=400, hop_length=160, n_mels=40).T``
    by hand: frames centred by 200 zeros each side, periodic Hann window, power spectrum, mel bands."""
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(400) / 400)
    filters = mel_filterbank(16000, 400, 40).double().numpy()
    padded = np.pad(np.asarray(wav, dtype=np.float64), 200)
    power = [np.abs(np.fft.rfft(padded[start : start + 400] * window)) ** 2
             for start in range(0, len(padded) - 400 + 1, 160)]
    return np.array(power) @ filters.T


def reference_mel(reference: str, wav: np.ndarray) -> np.ndarray:
    """Resemblyzer's mel frames ``[T, 40]``: by the frame loop, or by librosa itself."""
    if reference == "librosa":
        librosa = pytest.importorskip("librosa")
        # Resemblyzer's audio.wav_to_mel_spectrogram, verbatim.
        return librosa.feature.melspectrogram(
            y=wav, sr=16000, n_fft=400, hop_length=160, n_mels=40
        ).T
    return loop_melspectrogram(wav)


# librosa.feature imports numba code that compiles on first use in a fresh environment (17 s of
# CPU on an idle 2-core machine, minutes on a busy one), so the librosa references are e2e tests;
# the frame loop checks the same frames in the default run.
REFERENCES = ["frame-loop", pytest.param("librosa", marks=pytest.mark.e2e)]


@pytest.mark.parametrize("reference", REFERENCES)
def test_ge2e_mel_frames_match_librosa(fsdd_root, reference):
    upstream = load_upstream("ge2e")
    audio = fsdd(fsdd_root, "lucas", take=1)[0]
    mel = upstream.mel_power(audio[None])[0]
    expected = reference_mel(reference, audio.numpy())
    assert mel.shape == expected.shape == (upstream.num_frames(len(audio)), 40)
    tolerance = 1e-6 * float(expected.max())
    torch.testing.assert_close(mel, torch.from_numpy(expected).float(), rtol=1e-3, atol=tolerance)


@pytest.mark.parametrize("reference", REFERENCES)
def test_ge2e_frames_are_resemblyzers_pipeline(fsdd_root, reference):
    state = torch.load(weights_path(), map_location="cpu", weights_only=True)["model_state"]
    lstm = nn.LSTM(40, 256, 3, batch_first=True)  # resemblyzer's VoiceEncoder.lstm
    lstm.load_state_dict({k.removeprefix("lstm."): v for k, v in state.items() if "lstm." in k})
    upstream = load_upstream("ge2e", layers="last")
    for audio in fsdd(fsdd_root, "george", take=2):
        wav = resemblyzer_normalize_volume(audio.double().numpy())
        mel = reference_mel(reference, wav)
        with torch.no_grad():
            expected = lstm(torch.from_numpy(mel.astype(np.float32))[None])[0][0]
        frames = upstream(audio[None], torch.tensor([len(audio)])).frames[0]
        torch.testing.assert_close(frames, expected, atol=1e-4, rtol=1e-4)


def test_ge2e_separates_real_speakers_and_batching_changes_nothing(fsdd_root):
    upstream = load_upstream("ge2e", layers="last")
    audio = [utterance for speaker in SPEAKERS for utterance in fsdd(fsdd_root, speaker)]
    speakers = [speaker for speaker in SPEAKERS for _ in range(4)]
    out = upstream(*padded(audio))
    vectors = torch.stack(
        [out.frames[i, :n].mean(0) for i, n in enumerate(out.frame_lengths.tolist())]
    )
    vectors = torch.nn.functional.normalize(vectors, dim=1)
    similarity = vectors @ vectors.T
    same, different = [], []
    for i, j in itertools.combinations(range(len(audio)), 2):
        (same if speakers[i] == speakers[j] else different).append(float(similarity[i, j]))
    # Real learned speaker features: the same speaker saying different digits is closer.
    assert np.mean(same) > np.mean(different) + 0.05
    for i in (0, 7, 13):
        alone = upstream(audio[i][None], torch.tensor([len(audio[i])]))
        torch.testing.assert_close(
            out.frames[i, : alone.frames.shape[1]], alone.frames[0], atol=1e-4, rtol=1e-4
        )


def test_ge2e_default_frames_average_the_three_layers(fsdd_root):
    audio = fsdd(fsdd_root, "nicolas", take=1)[0][None]
    lengths = torch.tensor([audio.shape[1]])
    layers = [load_upstream("ge2e", layers=str(i))(audio, lengths).frames for i in range(3)]
    torch.testing.assert_close(
        load_upstream("ge2e")(audio, lengths).frames, torch.stack(layers).mean(0)
    )


def test_ge2e_without_the_wheel_says_how_to_install(monkeypatch):
    monkeypatch.setattr(ge2e_module.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(VqpoolError, match=r"pip install 'vqpool\[ge2e\]'"):
        load_upstream("ge2e")
