"""wav2vec 2.0 / HuBERT / WavLM upstreams on tiny random models, against literal recomputations."""

import numpy as np
import pytest
import torch
from transformers import AutoFeatureExtractor, AutoModel, Wav2Vec2ForPreTraining

from tiny_models import make_hubert, make_wav2vec2_pretraining, make_wavlm
from vqpool.errors import VqpoolError
from vqpool.upstream import load_upstream

LENGTHS = [6000, 4000, 2437, 400]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return {
        "group": make_wav2vec2_pretraining(root / "group", norm="group"),
        "layer": make_wav2vec2_pretraining(root / "layer", norm="layer"),
        "hubert": make_hubert(root / "hubert"),
        "wavlm": make_wavlm(root / "wavlm"),
    }


def waveforms(lengths, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return [0.1 * torch.randn(n, generator=generator) + 0.05 for n in lengths]


def padded(audio):
    return torch.nn.utils.rnn.pad_sequence(audio, batch_first=True), torch.tensor(
        [len(a) for a in audio]
    )


def reference(directory, audio):
    """What a transformers user writes: the feature extractor, then the model, one utterance."""
    processor = AutoFeatureExtractor.from_pretrained(directory)
    model = Wav2Vec2ForPreTraining.from_pretrained(directory).eval()
    inputs = processor(audio.numpy(), sampling_rate=16000, return_tensors="pt")
    with torch.no_grad():
        out = model.wav2vec2(inputs.input_values, output_hidden_states=True)
        # The quantizer input by hand: CNN -> layer norm of the feature projection -> weight_proj.
        cnn = model.wav2vec2.feature_extractor(inputs.input_values).transpose(1, 2)
        logits = model.quantizer.weight_proj(model.wav2vec2.feature_projection.layer_norm(cnn))
    groups, size = model.config.num_codevector_groups, model.config.num_codevectors_per_group
    codes = logits.reshape(1, -1, groups, size).argmax(-1)[0]
    layers = [*out.hidden_states[:-1], out.last_hidden_state]
    return [layer[0] for layer in layers], codes, cnn[0]


@pytest.mark.parametrize("norm", ["group", "layer"])
def test_wav2vec2_frames_and_codes_match_a_literal_computation(models, norm):
    upstream = load_upstream(str(models[norm]))
    assert (upstream.num_codebooks, upstream.codebook_size, upstream.num_layers) == (2, 8, 3)
    assert upstream.pads_safely == (norm == "layer")
    for audio in waveforms([5000, 1234]):
        layers, codes, cnn = reference(models[norm], audio)
        out = upstream(audio[None], torch.tensor([len(audio)]))
        assert out.frame_lengths.tolist() == [len(codes)] == [upstream.num_frames(len(audio))]
        torch.testing.assert_close(out.frames[0], torch.stack(layers).mean(0), atol=1e-5, rtol=1e-5)
        assert torch.equal(out.codes[0], codes)
        assert out.codes.dtype == torch.int64 and codes.unique().numel() > 2
        for spec, expected in [
            ("last", layers[-1]),
            ("-1", layers[-1]),
            ("0", layers[0]),
            ("0,2", (layers[0] + layers[2]) / 2),
            ("cnn", cnn),
        ]:
            torch.testing.assert_close(
                upstream(audio[None], torch.tensor([len(audio)]), layers=spec).frames[0],
                expected,
                atol=1e-5,
                rtol=1e-5,
            )


def test_last_layer_is_after_the_final_layer_norm(models):
    # Stable-layer-norm models (large, XLS-R): the last frames are the normalised ones.
    upstream = load_upstream(str(models["layer"]), layers="last")
    model = Wav2Vec2ForPreTraining.from_pretrained(models["layer"]).eval()
    audio = waveforms([3000])[0]
    inputs = AutoFeatureExtractor.from_pretrained(models["layer"])(
        audio.numpy(), sampling_rate=16000, return_tensors="pt"
    )
    with torch.no_grad():
        hidden = model.wav2vec2.feature_projection(
            model.wav2vec2.feature_extractor(inputs.input_values).transpose(1, 2)
        )[0]
        encoder = model.wav2vec2.encoder
        hidden = hidden + encoder.pos_conv_embed(hidden)
        for block in encoder.layers:
            hidden = block(hidden)
            hidden = hidden[0] if isinstance(hidden, tuple) else hidden  # a tuple in transformers 4
        expected = encoder.layer_norm(hidden)[0]
    torch.testing.assert_close(
        upstream(audio[None], torch.tensor([len(audio)])).frames[0], expected, atol=1e-5, rtol=1e-5
    )


@pytest.mark.parametrize("name", ["group", "layer", "hubert", "wavlm"])
def test_batched_equals_one_by_one(models, name):
    upstream = load_upstream(str(models[name]))
    audio = waveforms(LENGTHS)
    batch = upstream(*padded(audio))
    assert batch.frame_lengths.tolist() == [upstream.num_frames(n) for n in LENGTHS]
    for i, utterance in enumerate(audio):
        alone = upstream(utterance[None], torch.tensor([len(utterance)]))
        n = int(alone.frame_lengths[0])
        torch.testing.assert_close(batch.frames[i, :n], alone.frames[0], atol=1e-4, rtol=1e-4)
        assert not batch.frames[i, n:].any()
        if alone.codes is not None:
            assert torch.equal(batch.codes[i, :n], alone.codes[0])


def test_group_norm_padding_would_change_frames(models):
    # Why pads_safely is False: feeding the padded batch to the model at once changes frames.
    model = Wav2Vec2ForPreTraining.from_pretrained(models["group"]).eval()
    short, long = waveforms([2000, 6000])
    with torch.no_grad():
        alone = model.wav2vec2(short[None]).last_hidden_state[0]
        padded_batch = model.wav2vec2(padded([short, long])[0]).last_hidden_state[0, : len(alone)]
    assert not torch.allclose(alone, padded_batch, atol=1e-3)
    upstream = load_upstream(str(models["group"]))
    equal = waveforms([3000, 3000, 3000], seed=1)
    batch = upstream(*padded(equal))
    for i, utterance in enumerate(equal):
        torch.testing.assert_close(
            batch.frames[i],
            upstream(utterance[None], torch.tensor([3000])).frames[0],
            atol=1e-4,
            rtol=1e-4,
        )


def test_do_normalize_makes_frames_invariant_to_gain_and_offset(models, tmp_path):
    audio = waveforms([4000])[0]
    lengths = torch.tensor([4000])
    normalized = load_upstream(
        str(make_wav2vec2_pretraining(tmp_path / "n", norm="group", do_normalize=True))
    )
    raw = load_upstream(str(models["group"]))
    for upstream, invariant in [(normalized, True), (raw, False)]:
        a = upstream(audio[None], lengths).frames
        b = upstream((3 * audio + 0.2)[None], lengths).frames
        assert torch.allclose(a, b, atol=1e-4) == invariant


def test_hubert_needs_a_codebook_for_codes(models):
    upstream = load_upstream(str(models["hubert"]), layers="1")
    assert upstream.num_codebooks is None and upstream.codebook_size is None
    out = upstream(*padded(waveforms([3000])))
    model = AutoModel.from_pretrained(models["hubert"]).eval()
    with torch.no_grad():
        expected = model(waveforms([3000])[0][None], output_hidden_states=True).hidden_states[1][0]
    assert out.codes is None
    torch.testing.assert_close(out.frames[0], expected, atol=1e-5, rtol=1e-5)


def test_bad_layers_and_inputs_are_clear_errors(models):
    for spec in ["3", "-4", "first", "1,x", ""]:
        with pytest.raises(VqpoolError, match="layers"):
            load_upstream(str(models["hubert"]), layers=spec)
    upstream = load_upstream(str(models["hubert"]))
    with pytest.raises(VqpoolError, match="400 samples"):
        upstream(torch.zeros(1, 399), torch.tensor([399]))


def test_missing_model_says_what_to_do(tmp_path):
    with pytest.raises(VqpoolError) as error:
        load_upstream("example-org/no-such-speech-model")
    message = str(error.value)
    assert "example-org/no-such-speech-model" in message and "allow downloads (allow_download)" in message
    from vqpool.cli import describe

    assert "allow downloads (--allow-download)" in describe(error.value)
    assert "cache" in message and "local" in message
    with pytest.raises(VqpoolError, match="no such model directory"):
        load_upstream(str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(VqpoolError, match="not a transformers model directory"):
        load_upstream(str(tmp_path / "empty"))


def test_describe_is_json_and_names_the_model(models):
    import json

    description = json.loads(
        json.dumps(load_upstream(str(models["layer"]), layers="last").describe())
    )
    assert description["layers"] == "last" and description["codes"] == "quantizer"
    assert description["model"]["do_normalize"] is True and description["versions"]["transformers"]
    assert np.isclose(description["frame_rate"], 50.0)
