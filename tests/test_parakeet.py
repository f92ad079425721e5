"""Parakeet (CTC, TDT, RNN-T) against transformers 5.24.0, layer by layer, plus greedy decoding,
features, conversion, transcription and bad input.

Weights are seeded random (no Parakeet checkpoint offline): the reference adapter builds the
transformers model, saves it with save_pretrained outside the repository, and the MLX side loads
those files through weights.parakeet + mlx_impl.parakeet.convert (strict). Tiny configs run by
default; the 0.6b architecture is `slow` (--runslow).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

pytest.importorskip("torch", reason="the reference side needs torch")

import mlx.core as mx
import torch

from mlx_impl.layers.conformer import rel_shift, relative_positions
from mlx_impl.layers.lstm import LSTM
from mlx_impl.parakeet import features as F
from mlx_impl.parakeet.config import ParakeetConfig
from mlx_impl.parakeet.convert import convert
from mlx_impl.parakeet.decode import ctc_collapse
from mlx_impl.parakeet.load import load
from mlx_impl.parakeet.tokenizer import PieceTokenizer, synthetic_vocab
from mlx_impl.parakeet.transcribe import ParakeetTranscriber, transducer_spans
from mlx_impl.stt import SpeechToText
from helpers_weights import assert_load_reports, rewrite_checkpoint
from parity.clips import FIXTURES
from parity.models import parakeet as P
from parity.spec import GoldenCase
from reference import parakeet as R
from tests.helpers import assert_close, assert_taps_pass
from weights import parakeet as W

CLIPS = ("espeak_en_fox", "espeak_en_weather")


# ---------------------------------------------------------------- features


def test_mel_filters_match_transformers():
    from transformers.audio_utils import mel_filter_bank

    for n_mels in (32, 80, 128):
        want = mel_filter_bank(num_frequency_bins=257, num_mel_filters=n_mels, min_frequency=0.0,
                               max_frequency=8000.0, sampling_rate=16000, norm="slaney",
                               mel_scale="slaney").T
        # float64 both sides; measured max abs 0 to 3e-18
        assert_close(f"mel_filters[{n_mels}]", F.mel_filters(n_mels), want, atol=1e-12)


@pytest.mark.parametrize("clip", CLIPS)
@pytest.mark.parametrize("n_mels", (32, 128))
def test_features_match_feature_extractor(clip, n_mels):
    _, audio = P.read_clip(clip)
    want, mask = R.features(audio, n_mels)
    got, n_valid = F.log_mel(audio, n_mels)
    assert n_valid == int(mask.sum()) and got.shape == want.shape[1:]
    # float64 numpy against float32 torch.stft; measured max abs 2.1e-5 (values up to ~6)
    assert_close(f"features {clip} {n_mels}", got, want[0], atol=1e-4)
    assert np.all(got[n_valid:] == 0)


def test_features_odd_lengths_and_silence():
    rng = np.random.default_rng(0)
    for n in (320, 481, 16001):
        audio = (0.1 * rng.standard_normal(n)).astype(np.float32)
        want, mask = R.features(audio, 32)
        got, n_valid = F.log_mel(audio, 32)
        assert n_valid == int(mask.sum())
        assert_close(f"features n={n}", got, want[0], atol=1e-4)
    silence = np.zeros(16000, np.float32)
    got, _ = F.log_mel(silence, 32)  # constant log-mel: normalises to ~0 (no NaN)
    # float64 rounding of the mean of a constant; measured max abs 3.2e-9. Upstream gives
    # -0.160 here: its float32 mean misses the constant by ~2e-6, and (x - mean) / (std + 1e-5)
    # amplifies that residue (documented deviation in features.py).
    assert_close("silence features", got, np.zeros_like(got), atol=1e-8)


@pytest.mark.parametrize("bad,match", [
    (np.zeros(319, np.float32), "too short"),
    (np.array([0.0, np.nan] * 400, np.float32), "NaN"),
    (np.zeros((400, 2), np.float32), "mono"),
])
def test_features_bad_input(bad, match):
    with pytest.raises(ValueError, match=match):
        F.log_mel(bad, 32)


# ---------------------------------------------------------------- ops


def test_relative_positions_match_upstream():
    from transformers.models.parakeet.configuration_parakeet import ParakeetEncoderConfig
    from transformers.models.parakeet.modeling_parakeet import ParakeetEncoderRelPositionalEncoding

    for t, d in ((5, 8), (81, 64), (200, 1024)):
        enc = ParakeetEncoderRelPositionalEncoding(ParakeetEncoderConfig(hidden_size=d))
        want = enc(torch.zeros(1, t, d))[0].numpy()
        # float32 on both sides, but numpy's float32 pow/sin differ from torch's by an ulp; an
        # ulp of inv_freq times a position near 200 moves sin by ~1e-5. Measured max abs
        # 3.6e-6 (T=81), 3.1e-5 (T=200).
        assert_close(f"relative_positions T={t} C={d}", relative_positions(t, d), want, atol=1e-4)


def test_rel_shift_matches_upstream_and_index_formula():
    from transformers.models.parakeet.modeling_parakeet import ParakeetEncoderAttention

    rng = np.random.default_rng(1)
    for t in (1, 2, 7, 33):
        x = rng.standard_normal((2, 3, t, 2 * t - 1)).astype(np.float32)
        got = np.array(rel_shift(mx.array(x)))
        want = ParakeetEncoderAttention._rel_shift(None, torch.from_numpy(x))[..., :t].numpy()
        assert_close(f"rel_shift T={t}", got, want, atol=0.0)
        i, j = np.meshgrid(np.arange(t), np.arange(t), indexing="ij")
        assert_close(f"rel_shift formula T={t}", got, x[:, :, i, t - 1 - i + j], atol=0.0)


@torch.no_grad()
def test_lstm_initial_state_matches_torch():
    """The shared LSTM with (h0, c0) and its final state (used by the prediction network)."""
    torch.manual_seed(0)
    theirs = torch.nn.LSTM(6, 8, 2, batch_first=True).eval()
    ours = LSTM(6, 8, 2)
    ours.load_weights([(k, mx.array(v.numpy())) for k, v in theirs.state_dict().items()],
                      strict=True)
    rng = np.random.default_rng(3)
    x, h0, c0 = (rng.standard_normal(s).astype(np.float32) for s in ((3, 5, 6), (2, 3, 8),
                                                                      (2, 3, 8)))
    want, (h_n, c_n) = theirs(torch.from_numpy(x), (torch.from_numpy(h0), torch.from_numpy(c0)))
    got, (h, c) = ours.run(mx.array(x), (mx.array(h0), mx.array(c0)))
    # fp32 both sides, same equation order; measured max abs 1.2e-7
    for name, g, w in (("output", got, want), ("h_n", h, h_n), ("c_n", c, c_n)):
        assert_close(f"lstm with state: {name}", np.array(g), w.numpy(), atol=1e-6)
    steps, state = [], (mx.array(h0), mx.array(c0))  # one step at a time == the whole sequence
    for t in range(x.shape[1]):
        out, state = ours.run(mx.array(x[:, t:t + 1]), state)
        steps.append(np.array(out))
    # Not bit-exact: the input projection is one (B*T, I) @ (I, 4H) product for the sequence and a
    # (B, I) one per step, and a BLAS may round a row differently with the row count (MKL 2026.2
    # on AMD EPYC does at every width tried; OpenBLAS 0.3.21 at 64 wide). Measured over 500 seeds
    # at this size with MKL: outputs <= 1.5e-7 apart, c_n <= 1.8e-7 (0 with OpenBLAS); at
    # 64 and 640 wide up to 1.8e-7 and 3.8e-7. A state not carried between steps: 0.42.
    assert_close("lstm stepped", np.concatenate(steps, axis=1), np.array(got), atol=3e-7)
    assert_close("lstm stepped c_n", np.array(state[1]), np.array(c), atol=3e-7)
    with pytest.raises(ValueError, match=r"must each be \(num_layers, batch, hidden\)"):
        ours.run(mx.array(x), (mx.array(h0[:1]), mx.array(c0)))


def test_ctc_collapse():
    assert ctc_collapse([9, 3, 3, 9, 3, 4, 4, 9], blank=9) == [(3, 1, 2), (3, 4, 4), (4, 5, 6)]
    assert ctc_collapse([9, 9], blank=9) == []


# ---------------------------------------------------------------- weights, config


def test_checkpoint_converts_strictly(tmp_path):
    folder = P.checkpoint(P.TDT_TINY)
    w = W.load(folder)
    assert not any(k.endswith("num_batches_tracked") for k in w.state)
    # the perturbation really moved what upstream initialises to constants
    assert np.abs(w.state["encoder.layers.0.conv.norm.running_mean"]).max() > 0.05
    assert np.abs(w.state["encoder.layers.0.norm_out.weight"] - 1).max() > 0.05
    with pytest.raises(ValueError, match="not Parakeet weights"):
        convert(dict(w.state, **{"encoder.extra.weight": np.zeros(3)}))

    def edit(state):  # a wrong-shaped kernel and a missing key: reported together
        k = "encoder.layers.0.conv.depthwise_conv.weight"  # depthwise Conv1d (64, 1, 9)
        state[k] = np.ascontiguousarray(state[k][..., :7])
        del state["joint.head.bias"]

    bad = rewrite_checkpoint(folder, tmp_path / "bad", edit)
    assert_load_reports(load, bad, ("encoder.layers.0.conv.depthwise_conv.weight", (64, 9, 1),
                                    (64, 7, 1)), "joint.head.bias")
    model, _ = load(folder)
    got = dict(_flatten(model.parameters()))
    assert set(got) == set(convert(w.state))


def _flatten(tree, prefix=""):
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from _flatten(v, f"{prefix}{k}.")
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            yield from _flatten(v, f"{prefix}{i}.")
    else:
        yield prefix[:-1], tree


def test_config_errors():
    with pytest.raises(ValueError, match="missing"):
        ParakeetConfig.from_dict({"model_type": "parakeet_ctc", "vocab_size": 5,
                                  "pad_token_id": 4, "encoder_config": {"hidden_size": 8}})
    cfg = dict(P.TDT_TINY)
    cfg.pop("decoder_start_token_id")
    with pytest.raises(ValueError, match="decoder_start_token_id"):
        ParakeetConfig.from_dict(cfg)
    with pytest.raises(ValueError, match="not a Parakeet"):
        ParakeetConfig.from_dict(dict(P.CTC_TINY, model_type="wav2vec2"))


# ---------------------------------------------------------------- model parity (tiny)


_SIDES: dict = {}


def _sides(spec):
    if spec.name not in _SIDES:
        _SIDES[spec.name] = (spec.build_reference(), spec.build_mlx("float32"))
    return _SIDES[spec.name]


_REF_TAPS: dict = {}


def reference_taps(spec, clip: str) -> dict:
    """The reference's taps (generate() included) of a tiny spec on a fixture clip, computed
    once per module: upstream's transducer generate() costs ~0.13 s per step on this CPU and
    the TDT tiny model takes 800 steps on the weather clip."""
    if (spec.name, clip) not in _REF_TAPS:
        inputs = P.make_inputs(GoldenCase(clip, clip, {"clip": clip})).arrays
        _REF_TAPS[spec.name, clip] = _sides(spec)[0](inputs)
    return _REF_TAPS[spec.name, clip]


TINY_SPECS = {P.CTC_TINY["model_type"]: P.CTC_TEST_TINY, P.TDT_TINY["model_type"]: P.TDT_TEST_TINY,
              P.RNNT_TINY["model_type"]: P.RNNT_TEST_TINY}


@pytest.mark.parametrize("spec", [P.CTC_TEST_TINY, P.TDT_TEST_TINY, P.RNNT_TEST_TINY],
                         ids=lambda s: s.name)
@pytest.mark.parametrize("clip", CLIPS)
def test_tiny_parity(spec, clip):
    _, got = _sides(spec)
    inputs = P.make_inputs(GoldenCase(clip, clip, {"clip": clip})).arrays
    want, have = reference_taps(spec, clip), got(inputs)
    assert_taps_pass(spec, have, want, clip)
    if spec.config["config"]["model_type"] != "parakeet_ctc":
        # the greedy path must really exercise the decoder: blanks and emissions both occur
        toks = want["tokens"][0, 1:]
        blank = spec.config["config"]["blank_token_id"]
        assert (toks == blank).any() and (toks != blank).any(), toks


def test_padding_mask_matches_upstream_batch():
    """Two clips of different lengths in one batch: the shorter one's padding is masked in the
    front end, attention and the conv module exactly as upstream does."""
    ref, got = _sides(P.CTC_TEST_TINY)
    _, a = P.read_clip(CLIPS[0])
    _, b = P.read_clip(CLIPS[1])
    b = b[: len(a) // 2]
    fe = R.feature_extractor(32)(
        [a, b], sampling_rate=16000, return_tensors="pt", return_attention_mask=True)
    x, m = fe["input_features"], fe["attention_mask"]
    with torch.no_grad():
        want = ref.ref.model(input_features=x, attention_mask=m).logits.numpy()
        want_ids = ref.ref.model.generate(input_features=x, attention_mask=m).numpy()
    logits, valid = got.model(mx.array(x.numpy()), mx.array(m.numpy().sum(-1).astype(np.int32)))
    valid = np.array(valid)
    # measured max abs 1.2e-6 (the features are shared here)
    assert_close("batched logits (valid frames)", np.array(logits)[valid], want[valid], atol=1e-5)
    from mlx_impl.parakeet.decode import ctc_greedy

    ids = ctc_greedy(np.array(logits), valid, P.CTC_TINY["pad_token_id"])
    assert np.array_equal(ids, want_ids), (ids, want_ids)


# ---------------------------------------------------------------- transcription


@pytest.fixture(scope="module", params=[P.CTC_TINY, P.TDT_TINY, P.RNNT_TINY],
                ids=["ctc", "tdt", "rnnt"])
def transcriber(request):
    model, w = load(P.checkpoint(request.param))
    return ParakeetTranscriber(model, PieceTokenizer(w.vocab, model.config.blank_token_id)), \
        request.param


def test_transcribe_matches_reference_tokens(transcriber, fixture_clips):
    tr, config = transcriber
    assert isinstance(tr, SpeechToText)
    tok = PieceTokenizer(synthetic_vocab(config["vocab_size"]), tr.model.config.blank_token_id)
    for clip in fixture_clips:
        res = tr.transcribe(clip["path"])
        ids = reference_taps(TINY_SPECS[config["model_type"]], clip["id"])  # generate() output
        seq = ids["tokens"][0] if config["model_type"] == "parakeet_ctc" else ids["tokens"][0, 1:]
        want = tok.decode_ctc(seq) if config["model_type"] == "parakeet_ctc" else tok.decode(seq)
        assert res.text == want, (res.text, want)
        if want:
            seg = res.segments[0]
            assert seg.tokens == tuple(int(t) for t in
                                       (ctc_ids(seq, tok.blank) if config["model_type"] ==
                                        "parakeet_ctc" else seq[seq != tok.blank]))
            starts = [wd.start for wd in seg.words]
            assert starts == sorted(starts) and all(wd.end >= wd.start for wd in seg.words)
            assert "".join(wd.word for wd in seg.words).strip() == res.text
            assert 0 <= seg.no_speech_prob <= 1 and seg.avg_logprob <= 0
            check_timestamps(seg, reference_timestamps(config, ids, tok.blank), clip["id"])


def reference_timestamps(config, ids: dict, blank: int) -> list[dict]:
    """Transducers: upstream ParakeetProcessor.decode(sequences, durations=). CTC (upstream
    gives none): each run of one non-blank id in the reference's greedy path spans
    [first frame, last frame + 1) * 8 * 10 ms."""
    if config["model_type"] != "parakeet_ctc":
        return R.token_timestamps(P.checkpoint(config), ids["tokens"], ids["durations"])
    out, frame = [], 0
    for tok, run in itertools.groupby(int(t) for t in ids["tokens"][0]):
        n = len(list(run))
        if tok != blank:
            out.append({"token": P.vocab(config)[tok].replace("\u2581", " "),
                        "start": frame * 0.08, "end": (frame + n) * 0.08})
        frame += n
    return out


def check_timestamps(seg, want: list[dict], label: str) -> None:
    """Token times equal upstream's; each word spans its tokens (first start, last end)."""
    assert seg.start == 0.0  # one segment over the whole clip: seg.end is its duration
    got = seg.token_times
    assert len(got) == len(want) == len(seg.tokens), (label, len(got), len(want))
    for i, (g, w) in enumerate(zip(got, want)):
        if i == 0:  # upstream's decoder strips the first token's leading space
            assert g.text.lstrip() == w["token"].lstrip(), (label, i, g, w)
        else:
            assert g.text == w["token"], (label, i, g, w)
        assert g.start == pytest.approx(w["start"], abs=1e-9), (label, i, g, w)
        assert g.end == pytest.approx(w["end"], abs=1e-9), (label, i, g, w)
    words = []
    for i, w in enumerate(want):  # group upstream's tokens into words at "▁" pieces
        if i == 0 or w["token"].startswith(" "):
            words.append([w])
        else:
            words[-1].append(w)
    words = [g for g in words if "".join(t["token"] for t in g).strip()]
    assert len(seg.words) == len(words), label
    for wd, g in zip(seg.words, words):
        # word times are clipped to the clip's duration (the last frame can run past it)
        assert wd.start == round(min(g[0]["start"], seg.end), 3), (label, wd, g)
        assert wd.end == round(min(g[-1]["end"], seg.end), 3), (label, wd, g)
    d = seg.to_dict()
    assert [t["start"] for t in d["token_timestamps"]] == [t.start for t in got]


def ctc_ids(seq, blank):
    return [t for t, _, _ in ctc_collapse(seq, blank)]


def test_tdt_word_times_follow_durations():
    model, w = load(P.checkpoint(P.TDT_TINY))
    tr = ParakeetTranscriber(model, PieceTokenizer(w.vocab, model.config.blank_token_id))
    _, audio = P.read_clip(CLIPS[0])
    ref = R.greedy(R.load_model(P.checkpoint(P.TDT_TINY)), *R.features(audio, 32))
    toks, durs = ref["tokens"][0], ref["durations"][0]
    frames = np.cumsum(durs)  # frame after each step; a token's frame is the previous entry
    blank = model.config.blank_token_id
    first = next(k for k in range(1, len(toks)) if toks[k] != blank)
    res = tr.transcribe(audio)
    assert res.segments[0].words[0].start == round(frames[first - 1] * 0.08, 3)


@pytest.mark.parametrize("config", [P.TDT_TINY, P.RNNT_TINY], ids=["tdt", "rnnt"])
def test_token_times_match_processor_on_punctuation(config):
    """A hand-made output with punctuation, word pieces, repeats and zero durations (the clips
    emit no punctuation): token times equal upstream ParakeetProcessor.decode(durations=)'s,
    where TDT moves punctuation to the previous token's end and RNN-T does not."""
    model, _ = load(P.checkpoint(config))
    b = model.config.blank_token_id
    v = P.vocab(config)
    v[60:65] = list(".,?'-")  # the tiny vocab is cut before the punctuation pieces
    tr = ParakeetTranscriber(model, PieceTokenizer(v, b))
    ids = [b, v.index("\u2581the"), v.index("."), b, v.index(","), v.index("\u2581of"),
           v.index("a"), v.index("?"), b, v.index("'"), v.index("\u2581the")]
    durs = [0, 2, 1, 3, 0, 1, 0, 2, 1, 0, 4] if config is P.TDT_TINY else \
        [0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0]
    kind = config["model_type"].removeprefix("parakeet_")
    _, (want,) = R.processor(v, 32, kind).decode(torch.tensor([ids]),
                                                 durations=torch.tensor([durs]),
                                                 skip_special_tokens=True)
    spans = transducer_spans(ids, durs, b, tdt=config is P.TDT_TINY)
    got = tr.token_times([(tok, start, end, 1.0) for _, tok, start, end in spans])
    assert [t.token for t in got] == [i for i in ids if i != b]
    assert [(t.start, t.end) for t in got] == \
        [(pytest.approx(x["start"], abs=1e-9), pytest.approx(x["end"], abs=1e-9)) for x in want]
    moved = [x for t in got if v[t.token] in ".,?'" for x in (t.start, t.end)]
    if config is P.TDT_TINY:  # each punctuation piece sits at the previous token's end
        # frames = cumsum(durs) - durs = 0 0 2 3 6 6 7 7 9 10 10: "▁the" [0, 2), "a" [7, 7)
        assert moved == pytest.approx([0.16] * 4 + [0.56] * 4), moved
    else:
        assert all(e > s for s, e in zip(moved[::2], moved[1::2])), moved


@pytest.mark.parametrize("bad,kw,match", [
    (np.zeros(0, np.float32), {}, "no samples"),
    (np.array([0.1, np.nan, 0.2] * 200, np.float32), {}, "NaN"),
    (np.zeros(100, np.float32), {}, "too short"),
    (np.zeros(16000, np.float32), {"sample_rate": -5}, "positive whole number"),
])
def test_transcribe_bad_input(transcriber, bad, kw, match):
    tr, _ = transcriber
    with pytest.raises(ValueError, match=match):
        tr.transcribe(bad, **kw)


@pytest.mark.parametrize("bad,kw,match", [
    (np.full(16000, np.inf, np.float32), {}, "NaN/inf"),
    (np.zeros((2, 16000), np.float32), {}, "more channels than frames"),
    (np.zeros((2, 3, 16000), np.float32), {}, "must be 1-D"),
    (np.zeros(16000, np.uint8), {}, "dtype uint8"),
    ([0.0] * 16000, {}, "expected a path or a numpy array"),
], ids=["inf", "channels-first", "3-d", "uint8", "list"])
def test_transcribe_bad_arrays_shape_and_type(bad, kw, match):
    model, w = load(P.checkpoint(P.CTC_TINY))
    tr = ParakeetTranscriber(model, PieceTokenizer(w.vocab, model.config.blank_token_id))
    with pytest.raises((ValueError, TypeError), match=match):
        tr.transcribe(bad, **kw)


def test_transcribe_rate_with_path_is_an_error(transcriber):
    tr, _ = transcriber
    with pytest.raises(ValueError, match="sample_rate=8000 was passed with a file path"):
        tr.transcribe(FIXTURES / "espeak_en_fox.wav", sample_rate=8000)


@pytest.mark.parametrize("config", [P.CTC_TINY, P.TDT_TINY], ids=["ctc", "tdt"])
def test_bench_build_runs_both_engines(config):
    """BenchSpec.build on a tiny config: one "transcribe" stage per engine, same text."""
    _, audio = P.read_clip(CLIPS[0])
    audio = audio[:32000]
    out = {}
    for engine in ("mlx", "torch"):
        stages = P.bench_build_for(config)(engine, "float32", audio)
        assert [(st.name, st.audio_seconds) for st in stages] == [("transcribe", 2.0)]
        out[engine] = stages[0].run()
    ref = out["torch"] if config["model_type"] == "parakeet_ctc" else out["torch"][0][0]
    assert out["mlx"].text == ref and ref, (out["mlx"].text, ref)
    for spec in (P.CTC_0_6B_SPEC, P.TDT_0_6B_SPEC, P.RNNT_0_6B_SPEC):
        assert spec.bench is not None and spec.bench.engines == ("mlx", "torch")


def test_transcribe_bad_files(transcriber, tmp_path):
    tr, _ = transcriber
    junk = tmp_path / "notes.wav"
    junk.write_text("this is not audio")
    with pytest.raises(ValueError, match="not an audio file"):
        tr.transcribe(junk)
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="empty"):
        tr.transcribe(empty)
    with pytest.raises(FileNotFoundError):
        tr.transcribe(tmp_path / "missing.wav")
    with pytest.raises(TypeError, match="unknown transcribe options"):
        tr.transcribe(np.zeros(16000, np.float32), beam_size=4)


def test_transcribe_silence_and_resampling(transcriber):
    tr, _ = transcriber
    res = tr.transcribe(np.zeros(16000, np.float32))  # valid input: no error, a result
    assert isinstance(res.text, str)
    _, audio = P.read_clip(CLIPS[0])
    from mlx_impl.audio_io import resample

    at_8k = resample(audio, 16000, 8000).astype(np.float32)
    direct = tr.transcribe(resample(at_8k, 8000, 16000).astype(np.float32))
    assert tr.transcribe(at_8k, sample_rate=8000).text == direct.text


# ---------------------------------------------------------------- real configuration (slow)


@pytest.mark.slow
@pytest.mark.parametrize("spec", [P.CTC_0_6B_SPEC, P.TDT_0_6B_SPEC, P.RNNT_0_6B_SPEC],
                         ids=lambda s: s.name)
def test_0_6b_parity(spec, fixture_clips, request):
    ref, got = spec.build_reference(), spec.build_mlx("float32")
    clips = [(c["id"], FIXTURES) for c in fixture_clips]
    shared = request.config.rootpath.parent / "shared" / "speech"
    if (shared / "manifest.jsonl").exists():
        clips += [(e["id"], shared) for e in (__import__("json").loads(line) for line in
                  (shared / "manifest.jsonl").read_text().splitlines() if line.strip())]
    for clip, folder in clips:
        inputs = P.make_inputs(GoldenCase(clip, clip, {"clip": clip, "folder": str(folder)}))
        assert_taps_pass(spec, got(inputs.arrays), ref(inputs.arrays), clip)
