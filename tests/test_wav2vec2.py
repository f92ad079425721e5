"""Wav2Vec2 CTC: shared layers, weights, config, features, tokenizer, parity and transcription.

Weights are seeded random (no wav2vec2 checkpoint offline): transformers `Wav2Vec2ForCTC` built
under torch.manual_seed(0), saved with save_pretrained to a cache folder outside the repo,
converted by our converter. The recognised text is garbage; token identity is what is checked.
"""

from __future__ import annotations

import json

import mlx.core as mx
import numpy as np
import pytest
import soundfile as sf
import torch

from mlx_impl.layers.conv_positions import ConvPositionalEmbedding
from mlx_impl.layers.group_norm import GroupNorm
from mlx_impl.stt import SpeechToText, Transcription
from mlx_impl.wav2vec2 import config as C
from mlx_impl.wav2vec2.convert import convert
from mlx_impl.wav2vec2.features import normalize
from mlx_impl.wav2vec2.tokenizer import BASE_960H_VOCAB, CTCTokenizer
from mlx_impl.wav2vec2.transcribe import Wav2Vec2Transcriber, greedy_ids
from parity.models import wav2vec2 as W
from reference import wav2vec2 as R
from tests.helpers_weights import assert_load_reports, cut_and_drop, rewrite_checkpoint
from tests.helpers import (
    BAD_AUDIO_ARRAYS,
    assert_bad_audio_files_raise,
    assert_close,
    assert_spec_passes,
)
from weights import wav2vec2 as WW
from weights.weight_norm import fold_weight_norm

FP32 = W.FP32


def _mx(a: np.ndarray) -> mx.array:
    return mx.array(np.ascontiguousarray(a, dtype=np.float32))


# ---------------------------------------------------------------------------------------------
# shared layers, op level


@pytest.mark.parametrize("groups,channels,frames,scale,offset", [
    (16, 16, 20678, 1.5, 0.0),  # wav2vec2 conv 0: one group per channel, ~1 s of frames
    (16, 16, 33000, 3.0, 5.0),  # longer, offset mean (cancellation in the variance)
    (4, 16, 1000, 1.0, -2.0),  # several channels per group
    (1, 8, 7, 1.0, 0.0),  # shorter than one summation block
])
def test_group_norm_matches_torch(groups, channels, frames, scale, offset):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((2, channels, frames)) * scale + offset).astype(np.float32)
    w = (1 + 0.1 * rng.standard_normal(channels)).astype(np.float32)
    b = (0.1 * rng.standard_normal(channels)).astype(np.float32)
    want = torch.nn.functional.group_norm(torch.from_numpy(x), groups, torch.from_numpy(w),
                                          torch.from_numpy(b), 1e-5).numpy()
    gn = GroupNorm(groups, channels)
    gn.weight, gn.bias = _mx(w), _mx(b)
    got = np.array(gn(_mx(x.transpose(0, 2, 1)))).transpose(0, 2, 1)
    # measured max abs 3.6e-6 vs float64 on 20678 frames (torch 2.0e-6); outputs up to ~5
    assert_close(f"GroupNorm({groups}, {channels}) T={frames}", got, want, atol=1e-5)


@pytest.mark.parametrize("dims,kernel,groups,frames", [(32, 16, 4, 50), (48, 15, 3, 40),
                                                       (64, 128, 16, 200)])
def test_conv_positional_embedding_matches_transformers(dims, kernel, groups, frames):
    from transformers import Wav2Vec2Config
    from transformers.models.wav2vec2.modeling_wav2vec2 import Wav2Vec2PositionalConvEmbedding

    torch.manual_seed(0)
    up = Wav2Vec2PositionalConvEmbedding(Wav2Vec2Config(
        hidden_size=dims, num_conv_pos_embeddings=kernel,
        num_conv_pos_embedding_groups=groups)).eval()
    with torch.no_grad():  # g is initialised to ||v||: make it differ so the fold is exercised
        up.conv.parametrizations.weight.original0.mul_(
            1 + 0.3 * torch.rand(up.conv.parametrizations.weight.original0.shape))
    sd = {k: v.numpy() for k, v in up.state_dict().items()}
    folded = fold_weight_norm(sd["conv.parametrizations.weight.original0"],
                              sd["conv.parametrizations.weight.original1"], dim=2)
    assert_close("folded weight vs torch's parametrized weight", folded,
                 up.conv.weight.detach().numpy(), atol=1e-7, rtol=1e-6)
    x = np.random.default_rng(1).standard_normal((1, frames, dims)).astype(np.float32)
    with torch.no_grad():
        want = up(torch.from_numpy(x)).numpy()
    ours = ConvPositionalEmbedding(dims, kernel, groups)
    ours.load_weights([("conv.weight", _mx(folded.transpose(0, 2, 1))),
                       ("conv.bias", _mx(sd["conv.bias"]))], strict=True)
    got = np.array(ours(_mx(x)))
    assert got.shape == (1, frames, dims)
    assert_close(f"ConvPositionalEmbedding k={kernel}", got, want, atol=2e-6)


# ---------------------------------------------------------------------------------------------
# config, weights, converter


def test_base_config_is_transformers_default_and_960h():
    from transformers import Wav2Vec2Config

    default = Wav2Vec2Config().to_dict()
    for k, v in W.BASE_960H_CONFIG.items():
        want = list(default[k]) if isinstance(default[k], (list, tuple)) else default[k]
        assert (list(v) if isinstance(v, tuple) else v) == want, k
    assert C.Wav2Vec2Config.from_dict(W.BASE_960H_CONFIG) == C.BASE_960H
    assert C.BASE_960H.samples_per_frame == 320 and C.BASE_960H.min_samples == 400
    assert C.BASE_960H.num_frames(16000) == 49 and C.BASE_960H.num_frames(399) == 0


def test_config_rejects_missing_and_unsupported():
    d = dict(W.BASE_960H_CONFIG)
    del d["conv_kernel"]
    with pytest.raises(ValueError, match="missing \\['conv_kernel'\\]"):
        C.Wav2Vec2Config.from_dict(d)
    with pytest.raises(ValueError, match="hidden_act='relu' is not supported"):
        C.Wav2Vec2Config.from_dict(dict(W.BASE_960H_CONFIG, hidden_act="relu"))
    with pytest.raises(ValueError, match="adapters"):
        C.Wav2Vec2Config.from_dict(dict(W.BASE_960H_CONFIG, add_adapter=True))


@pytest.fixture(scope="module")
def tiny_folder():
    return W.checkpoint(W.TEST_TINY_CONFIG)


def test_checkpoint_is_transformers_5_layout_and_loads_strictly(tiny_folder):
    from safetensors.numpy import load_file

    raw = load_file(str(tiny_folder / "model.safetensors"))
    assert f"{WW.POS_CONV}.parametrizations.weight.original0" in raw
    assert raw[f"{WW.POS_CONV}.parametrizations.weight.original0"].shape == (1, 1, 16)
    w = WW.load(tiny_folder)
    assert w.vocab == BASE_960H_VOCAB
    assert not any("parametrizations" in k or "masked_spec_embed" in k for k in w.state)
    # the same model from the old (weight_g, weight_v) layout folds to the same kernel
    old = {k.replace("parametrizations.weight.original0", "weight_g")
           .replace("parametrizations.weight.original1", "weight_v"): v for k, v in raw.items()}
    again = WW.from_transformers(old)
    assert np.array_equal(again[f"{WW.POS_CONV}.weight"], w.state[f"{WW.POS_CONV}.weight"])
    # the layer-norm gains and biases were perturbed away from 1 / 0 (a swap would show)
    assert np.abs(w.state["wav2vec2.encoder.layer_norm.weight"] - 1).max() > 0.05
    assert np.abs(w.state["wav2vec2.encoder.layers.0.attention.k_proj.bias"]).max() > 0.01


def test_weights_and_converter_reject_bad_keys(tiny_folder, tmp_path):
    w = WW.load(tiny_folder)
    with pytest.raises(ValueError, match="not Wav2Vec2ForCTC weights"):
        convert(dict(w.state, **{"wav2vec2.encoder.extra.weight": np.zeros(3)}))
    from mlx_impl.wav2vec2.load import load

    # a wrong-shaped kernel and a missing key: reported together
    k = "wav2vec2.feature_extractor.conv_layers.0.conv.weight"  # Conv1d (32, 1, 10)
    folder = rewrite_checkpoint(tiny_folder, tmp_path / "bad", cut_and_drop(k, 8, "lm_head.bias"))
    assert_load_reports(load, folder, ("wav2vec2.feature_extractor.conv_layers.0.conv.weight",
                                       (32, 10, 1), (32, 8, 1)), "lm_head.bias")


def test_folder_reader_errors(tiny_folder, tmp_path):
    """weights.hf_safetensors.read_folder (shared with Parakeet) names the missing piece."""
    with pytest.raises(WW.WeightsError, match="got no such directory"):
        WW.load(tmp_path / "absent")
    with pytest.raises(WW.WeightsError, match="has no config.json"):
        WW.load(tmp_path)
    (tmp_path / "config.json").write_text((tiny_folder / "config.json").read_text())
    with pytest.raises(WW.WeightsError, match="no model.safetensors nor pytorch_model.bin"):
        WW.load(tmp_path)
    (tmp_path / "config.json").write_text("[1, 2]")
    with pytest.raises(WW.WeightsError, match="expected a JSON object"):
        WW.load(tmp_path)


def test_key_bias_drop_is_softmax_invariant(tiny_folder):
    """convert() drops attention.k_proj.bias: check that the reference does not depend on it."""
    ref = R.Wav2Vec2Reference(tiny_folder)
    _, audio = W.read_clip("espeak_en_fox")
    audio = audio[:32000]
    before = ref({"audio": audio})["logits"]
    with torch.no_grad():
        for layer in ref.model.wav2vec2.encoder.layers:
            layer.attention.k_proj.bias.zero_()
    after = ref({"audio": audio})["logits"]
    assert np.abs(before).max() > 0.1
    # fp32 rounding only (measured 6e-8); a real dependence would be of order the logits
    assert_close("logits without key bias", after, before, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# features and tokenizer against transformers


def test_feature_normalisation_matches_transformers(fixture_clips):
    fe = R.feature_extractor()
    for clip in fixture_clips:
        audio, _ = sf.read(clip["path"], dtype="float32")
        want = fe(audio, sampling_rate=16000, return_tensors="np")["input_values"][0]
        # upstream: float32 numpy mean/var; ours float64 then one rounding (measured 9.5e-7)
        assert_close(f"input_values {clip['id']}", normalize(audio), want, atol=2e-6)
    silence = np.zeros(8000, np.float32)
    want = fe(silence, sampling_rate=16000, return_tensors="np")["input_values"][0]
    assert_close("silence normalises to zeros", normalize(silence), want, atol=0)


def test_tokenizer_matches_transformers(tmp_path):
    tok = CTCTokenizer(BASE_960H_VOCAB)
    tok.save_vocab(tmp_path / "vocab.json")
    assert json.loads((tmp_path / "vocab.json").read_text())["|"] == 4
    from transformers import Wav2Vec2CTCTokenizer

    up = Wav2Vec2CTCTokenizer(str(tmp_path / "vocab.json"))
    assert up.get_vocab() == BASE_960H_VOCAB
    rng = np.random.default_rng(0)
    seqs = [[0, 0, 11, 11, 0, 5, 15, 15, 0, 15, 8, 4, 4, 18, 8, 13, 15, 14, 0]]  # HELLO WORLD
    seqs += [list(rng.choice(32, size=n, p=_probs())) for n in (1, 5, 40, 300) for _ in range(5)]
    seqs += [[0, 0, 0], [4, 4], [1, 7, 1, 7, 2, 3, 0, 7]]
    assert tok.decode(seqs[0]) == up.decode(seqs[0]) == "HELLO WORLD"
    for ids in seqs:
        for skip in (False, True):
            assert tok.decode(ids, skip) == up.decode(ids, skip_special_tokens=skip), (ids, skip)
            out = up.decode(ids, skip_special_tokens=skip, output_word_offsets=True)
            want = [(w["word"], int(w["start_offset"]), int(w["end_offset"]))
                    for w in out.word_offsets]
            assert [(w.word, w.start, w.end) for w in tok.word_offsets(ids, skip)] == want, ids


def _probs():
    p = np.full(32, 1.0)
    p[0], p[4] = 12.0, 4.0  # mostly blanks, some delimiters, as CTC output
    return p / p.sum()


# ---------------------------------------------------------------------------------------------
# parity: MLX against transformers, tap by tap


def _assert_parity(spec):
    res = assert_spec_passes(spec)
    for case in res.cases:
        assert [r.name for r in case.comparison.results] == list(spec.taps)
        assert case.metrics["argmax_agreement"] == 1.0
    return res


def test_parity_tiny_group_norm_post_ln():
    _assert_parity(W.TEST_TINY)


def test_parity_tiny_layer_norm_stable():
    _assert_parity(W.TEST_TINY_STABLE)


@pytest.mark.slow
def test_parity_base_960h_fixtures():
    """Real base-960h dimensions (94M parameters); ~80 s on 2 CPU cores."""
    _assert_parity(W.BASE_960H)


@pytest.mark.slow
def test_base_960h_greedy_tokens_identical_on_shared_clips(shared_clips):
    from mlx_impl.wav2vec2.load import load

    folder = W.checkpoint(W.BASE_960H_CONFIG)
    ref = R.Wav2Vec2Reference(folder)
    model, _ = load(folder)
    stt = Wav2Vec2Transcriber(model, CTCTokenizer(BASE_960H_VOCAB))
    for clip in shared_clips:
        audio, sr = sf.read(clip["path"], dtype="float32")
        assert sr == 16000
        want = ref({"audio": audio})["logits"][0]
        got = stt.logits(audio)
        assert_close(f"logits {clip['id']}", got, want, atol=FP32.atol, rtol=FP32.rtol,
                     k_rms=FP32.k_rms)
        g, w = greedy_ids(got), greedy_ids(want)
        assert np.array_equal(g, w), f"{clip['id']}: first differing frame " \
                                     f"{int(np.argmax(g != w))}"
        assert stt.tokenizer.decode(g) == ref.decode(w)


# ---------------------------------------------------------------------------------------------
# transcribe() through the common interface


@pytest.fixture(scope="module")
def tiny_stt(tiny_folder):
    return Wav2Vec2Transcriber.from_pretrained(tiny_folder)


@pytest.fixture(scope="module")
def tiny_ref(tiny_folder):
    return R.Wav2Vec2Reference(tiny_folder)


def test_transcribe_matches_reference_decoding(tiny_stt, tiny_ref, fixture_clips):
    assert isinstance(tiny_stt, SpeechToText)
    for clip in fixture_clips:
        audio, _ = sf.read(clip["path"], dtype="float32")
        ids = greedy_ids(tiny_ref({"audio": audio})["logits"][0])
        want = tiny_ref.decode(ids, offsets=True)
        res = tiny_stt.transcribe(clip["path"])
        assert isinstance(res, Transcription)
        assert res.text == want.text and res.text  # random weights: garbage, but identical
        (seg,) = res.segments
        assert seg.text == res.text and seg.start == 0.0
        assert seg.end == pytest.approx(audio.shape[0] / 16000, abs=1e-3)
        chars = [c for c in want.char_offsets if c["char"] != " "]
        assert list(seg.tokens) == [BASE_960H_VOCAB.get(c["char"], 3) if c["char"] != " " else 4
                                    for c in want.char_offsets]
        assert len(chars) > 0
        words = [(w["word"], w["start_offset"] * 0.02, w["end_offset"] * 0.02)
                 for w in want.word_offsets]
        assert [(w.word.strip(), w.start, w.end) for w in seg.words] == \
               [(t, pytest.approx(s, abs=1e-6), pytest.approx(e, abs=1e-6)) for t, s, e in words]
        assert all(w.word.startswith(" ") and 0 < w.probability <= 1 for w in seg.words)
        assert np.isfinite(seg.avg_logprob) and 0 <= seg.no_speech_prob <= 1
        json.dumps(res.to_dict())  # serialisable as the writers need


def test_transcribe_resamples_other_rates(tiny_stt, fixture_clips):
    from mlx_impl.audio_io import resample

    audio, _ = sf.read(fixture_clips[0]["path"], dtype="float32")
    audio = audio[:48000]
    at_8k = resample(audio, 16000, 8000).astype(np.float32)
    got = tiny_stt.transcribe(at_8k, sample_rate=8000)
    back = resample(at_8k, 8000, 16000).astype(np.float32)
    assert got.text == tiny_stt.transcribe(back).text


def test_transcribe_silence_is_valid(tiny_stt):
    res = tiny_stt.transcribe(np.zeros(16000, np.float32))
    logits = tiny_stt.logits(np.zeros(16000, np.float32))
    assert logits.shape == (49, 32) and np.isfinite(logits).all()
    assert res.text == tiny_stt.tokenizer.decode(greedy_ids(logits))


@pytest.mark.parametrize("audio,kwargs,match", [
    (np.zeros(0, np.float32), {}, "no samples"),
    (np.full(16000, np.nan, np.float32), {}, "NaN/inf"),
    (np.zeros(399, np.float32), {}, "shorter than the model's 400-sample"),
    (np.zeros(1000, np.float32), {"sample_rate": 0}, "positive whole number"),
    (np.zeros(1000, np.float32), {"beam_size": 5}, "unknown options"),
])
def test_transcribe_bad_arrays(tiny_stt, audio, kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        tiny_stt.transcribe(audio, **kwargs)


@pytest.mark.parametrize("audio,match", list(BAD_AUDIO_ARRAYS.values()),
                         ids=list(BAD_AUDIO_ARRAYS))
def test_transcribe_bad_arrays_shape_and_type(tiny_stt, audio, match):
    with pytest.raises((ValueError, TypeError), match=match):
        tiny_stt.transcribe(audio)


def test_transcribe_rate_with_path_is_an_error(tiny_stt, fixture_clips):
    with pytest.raises(ValueError, match="sample_rate=8000 was passed with a file path"):
        tiny_stt.transcribe(fixture_clips[0]["path"], sample_rate=8000)


def test_bench_build_runs_both_engines():
    """BenchSpec.build on the tiny config: one "transcribe" stage per engine, same text."""
    _, audio = W.read_clip("espeak_en_fox")
    audio = audio[:32000]
    texts = {}
    for engine in ("mlx", "torch"):
        stages = W.bench_build_for(W.TEST_TINY_CONFIG)(engine, "float32", audio)
        assert [(st.name, st.audio_seconds) for st in stages] == [("transcribe", 2.0)]
        out = stages[0].run()
        texts[engine] = out.text
    assert texts["mlx"] == texts["torch"] and texts["mlx"], texts
    assert W.BASE_960H.bench is not None and W.BASE_960H.bench.engines == ("mlx", "torch")
    with pytest.raises(ValueError, match="unknown engine"):
        W.bench_build_for(W.TEST_TINY_CONFIG)("onnx", "float32", audio)


def test_transcribe_bad_files(tiny_stt, tmp_path):
    assert_bad_audio_files_raise(tiny_stt.transcribe, tmp_path)


def test_model_rejects_too_short_input(tiny_stt):
    with pytest.raises(ValueError, match="at least 400 samples"):
        tiny_stt.model(mx.zeros((1, 100)))
