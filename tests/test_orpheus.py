"""Orpheus (mlx_impl/orpheus) against transformers LlamaForCausalLM + snac on the tiny preset:
token layout, config, converter, teacher-forced logits, greedy/sampled generation with injected
noise, the audio-token mask and stop conditions, streaming, determinism and bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

import mlx_impl  # noqa: F401  (BLAS preload before mlx)
from mlx_impl.orpheus import tokens as T
from mlx_impl.orpheus.presets import PRESETS
from tests.helpers import assert_close


@pytest.fixture(scope="module")
def folder():
    from reference.orpheus import build_model

    return build_model(PRESETS["orpheus-test-tiny"], 0)


@pytest.fixture(scope="module")
def ref(folder):
    from reference.orpheus import OrpheusReference

    return OrpheusReference(folder)


@pytest.fixture(scope="module")
def tts(folder):
    from mlx_impl.orpheus.load import load_tts

    return load_tts(folder)


# -- tokens ------------------------------------------------------------------------------------

def test_frame_layout_matches_upstream():
    # one frame: positions 0..6 carry codes 10..16 -> SNAC [c0], [c1a, c1b], [c2a, c2b, c2c, c2d]
    ids = np.array([T.AUDIO_OFFSET + p * 4096 + 10 + p for p in range(7)])
    c0, c1, c2 = T.tokens_to_codes(ids)
    assert c0.tolist() == [[10]] and c1.tolist() == [[11, 14]] and c2.tolist() == [[12, 13, 15, 16]]
    assert T.codes_to_tokens([c0, c1, c2]).tolist() == ids.tolist()
    rng = np.random.default_rng(0)
    codes = [rng.integers(0, 4096, (1, n)) for n in (5, 10, 20)]
    back = T.tokens_to_codes(T.codes_to_tokens(codes))
    assert all(np.array_equal(a, b) for a, b in zip(back, codes))
    # a partial trailing frame is dropped, as upstream's parse_output
    assert T.tokens_to_codes(np.concatenate([ids, ids[:3]]))[0].shape == (1, 1)


def test_token_out_of_position_range_is_an_error():
    ids = np.array([T.AUDIO_OFFSET + p * 4096 for p in range(7)])
    ids[2] = T.AUDIO_OFFSET  # a position-0 id at position 2
    with pytest.raises(ValueError, match="frame 0, position 2"):
        T.tokens_to_codes(ids)


def test_prompt_has_orpheus_special_ids():
    p = T.prompt_ids("Hi", "tara")
    assert p == [128259, 128000, *b"tara: Hi", 128009, 128260, 128261, 128257]
    assert T.prompt_ids("Hi", None) == [128259, 128000, *b"Hi", 128009, 128260, 128261, 128257]


@pytest.mark.parametrize("text,voice,match", [
    ("", "tara", "text is empty"), ("   ", "tara", "text is empty"),
    ("x" * (T.MAX_TEXT_BYTES + 1), "tara", "split it"),
    ("Hi", "bob", "unknown voice 'bob'; choose one of tara"),
])
def test_prompt_bad_input(text, voice, match):
    with pytest.raises(ValueError, match=match):
        T.prompt_ids(text, voice)


# -- config and converter ----------------------------------------------------------------------

def test_config_reads_transformers_dict_strictly():
    from transformers import LlamaConfig

    from mlx_impl.orpheus.config import OrpheusConfig

    d = LlamaConfig(**PRESETS["orpheus-3b"]["lm"]).to_dict()
    cfg = OrpheusConfig.from_dict(d)
    args = cfg.lm_args
    assert (args.num_hidden_layers, args.hidden_size, args.num_key_value_heads,
            args.vocab_size, args.tie_word_embeddings) == (28, 3072, 8, 156940, True)
    assert args.rope_scaling.factor == 32.0 and args.rope_theta == 500000.0
    with pytest.raises(ValueError, match="unknown keys"):
        OrpheusConfig.from_dict({**d, "sliding_window": 4})
    with pytest.raises(ValueError, match="not implemented"):
        OrpheusConfig.from_dict({**d, "rope_parameters": {"rope_type": "yarn", "rope_theta": 1.0,
                                                           "factor": 2.0}})
    with pytest.raises(ValueError, match="cannot hold Orpheus's audio tokens"):
        OrpheusConfig.from_dict({**d, "vocab_size": 128256})


def test_converter_checks_tied_head_and_unknown_keys():
    from mlx_impl.orpheus.config import OrpheusConfig
    from mlx_impl.orpheus.convert import convert

    cfg = OrpheusConfig.from_dict(PRESETS["orpheus-3b"]["lm"])
    emb = np.ones((2, 2), np.float32)
    assert convert({"model.embed_tokens.weight": emb, "lm_head.weight": emb.copy()}, cfg) == {
        "embed_tokens.weight": emb}
    with pytest.raises(KeyError, match="lm_head.weight differs"):
        convert({"model.embed_tokens.weight": emb, "lm_head.weight": emb * 2}, cfg)
    with pytest.raises(KeyError, match="unexpected"):
        convert({"decoder.x": emb}, cfg)


# -- model against the reference ---------------------------------------------------------------

def test_teacher_forced_logits_match_reference(tts, ref):
    import mlx.core as mx

    rng = np.random.default_rng(1)
    codes = [rng.integers(0, 4096, (1, n)) for n in (3, 6, 12)]
    ids = np.array([T.prompt_ids("Hello there", "zoe") + T.codes_to_tokens(codes).tolist()])
    want = ref.forward_taps(ids, ids.shape[1], ())
    got = tts.lm.forward(ids, tts.lm.new_cache())
    # measured 2026-12-05: max |diff| 3e-7 on logits of RMS ~0.2
    assert_close("logits", np.array(got), want["logits"], atol=2e-6)
    assert np.array_equal(np.array(mx.argmax(got, -1)), want["logits.argmax"])


@pytest.mark.parametrize("kind", ["greedy", "sampled"])
def test_generation_identical_to_reference(tts, ref, kind):
    from mlx_impl.orpheus.generate import generate
    from mlx_impl.tts import SamplingOptions

    kw = dict(temperature=0.0) if kind == "greedy" else dict(temperature=0.6, top_p=0.8,
                                                                 repetition_penalty=1.3)
    prompt = T.prompt_ids("Good morning", "leo")
    got = generate(tts.lm, prompt, SamplingOptions(**kw, max_tokens=28), seed=3)
    want = ref.generate(prompt, **kw, max_tokens=28, seed=3)
    assert got.tokens.tolist() == want.tolist()
    assert got.stop == "max_tokens"
    # every frame position exercised, each in its own range (tokens_to_codes checks)
    assert [c.shape[1] for c in T.tokens_to_codes(got.tokens)] == [4, 8, 16]


def test_end_of_speech_only_at_frame_boundaries(tts, ref):
    from mlx_impl.orpheus.generate import generate, seeded_noise
    from mlx_impl.tts import SamplingOptions
    from reference.orpheus import gumbel_noise

    def forced(base, steps):
        def noise(step, *shape):
            g = base(step, *shape)
            if step in steps:
                g[..., T.END_OF_SPEECH] += 1e4
            return g
        return noise

    prompt = T.prompt_ids("Bye", "mia")
    # no top-p here: it may drop end of speech before the draw (then no noise can pick it)
    opts = SamplingOptions(temperature=0.6, repetition_penalty=1.3, max_tokens=40)
    # pushed at step 3 (frame position 3): masked, ignored; at step 14 (a boundary): stops
    got = generate(tts.lm, prompt, opts, noise=forced(seeded_noise(5, "gumbel"), {3, 14}))
    want = ref.generate(prompt, 0.6, 1.0, repetition_penalty=1.3, max_tokens=40,
                        noise=forced(gumbel_noise(5, 156940), {3, 14}))
    assert got.stop == "end_of_speech" and got.tokens.size == 15
    assert got.tokens[-1] == T.END_OF_SPEECH and T.END_OF_SPEECH not in got.tokens[:-1]
    assert got.tokens.tolist() == want.tolist()
    assert got.audio_tokens.size == 14


def test_synthesize_matches_reference_pipeline(tts, ref):
    from mlx_impl.tts import SamplingOptions, TextToSpeech

    assert isinstance(tts, TextToSpeech) and tts.sample_rate == 24000
    opts = SamplingOptions(temperature=0.6, top_p=0.8, repetition_penalty=1.3, max_tokens=35)
    speech = tts.synthesize("Hello", "tara", options=opts, seed=11)
    tokens = ref.generate(T.prompt_ids("Hello", "tara"), 0.6, 0.8, repetition_penalty=1.3,
                          max_tokens=35, seed=11)
    assert speech.tokens.tolist() == tokens.tolist()
    want = ref.decode(tokens, ref.snac_noise(0, 5, 11))
    assert speech.audio.shape == want.shape == (5 * 2048,)
    # measured 2026-12-05: max |diff| 6e-6 (SNR ~120 dB) on audio of peak ~1
    assert_close("audio", speech.audio, want, atol=2e-5)


def test_seed_determinism_and_streaming(tts):
    from mlx_impl.tts import SamplingOptions

    opts = SamplingOptions(temperature=0.6, top_p=0.8, repetition_penalty=1.3, max_tokens=126)
    a = tts.synthesize("Same seed", "dan", options=opts, seed=4)
    b = tts.synthesize("Same seed", "dan", options=opts, seed=4)
    c = tts.synthesize("Same seed", "dan", options=opts, seed=5)
    assert np.array_equal(a.audio, b.audio) and not np.array_equal(a.audio, c.audio)
    chunks = list(tts.stream("Same seed", "dan", options=opts, seed=4, chunk_frames=4))
    assert len(chunks) >= 3  # written while generating, not in one piece at the end
    streamed = np.concatenate(chunks)
    assert streamed.shape == a.audio.shape
    # 4 frames of context and look-ahead: measured 2026-12-05 max |diff| 3.3e-6 on audio of peak
    # ~1 (float rounding of the shorter windows; 0 after 16-bit PCM in the CLI test); a cut
    # receptive field would show errors of order 1e-2
    assert_close("streamed audio", streamed, a.audio, atol=1e-5)


def test_synthesize_bad_input(tts):
    from mlx_impl.tts import SamplingOptions

    with pytest.raises(ValueError, match="voice name"):
        tts.synthesize("Hi", np.zeros(10, np.float32))
    with pytest.raises(ValueError, match="text is empty"):
        tts.synthesize("", "tara")
    with pytest.raises(ValueError, match="exceeds the model's 131072 positions"):
        tts.synthesize("Hi", "tara", options=SamplingOptions(max_tokens=131072))
    with pytest.raises(ValueError, match="top_p"):
        SamplingOptions(top_p=1.5)


def test_tiny_preset_is_the_real_layout():
    lm = PRESETS["orpheus-test-tiny"]["lm"]
    assert lm["vocab_size"] == PRESETS["orpheus-3b"]["lm"]["vocab_size"] == 156940
    assert lm["rope_parameters"] == PRESETS["orpheus-3b"]["lm"]["rope_parameters"]
    snac = PRESETS["orpheus-test-tiny"]["snac"]
    assert (snac["codebook_size"], snac["vq_strides"], snac["sampling_rate"]) == (
        4096, [4, 2, 1], 24000)
    json.dumps(PRESETS)  # plain data


def test_stream_window_is_what_keeps_it_equal(tts):
    """The streamed audio equals the one-shot decode only because each window carries
    `context` frames before and `lookahead` after (SNAC's decoder is not causal): with fewer,
    the chunk edges differ measurably, so the streaming bounds here are a real check."""
    from mlx_impl.tts import SamplingOptions

    opts = SamplingOptions(temperature=0.6, top_p=0.8, repetition_penalty=1.3, max_tokens=63)
    whole = tts.synthesize("Same seed", "dan", options=opts, seed=4).audio

    def streamed(context, lookahead):
        chunks = list(tts.stream("Same seed", "dan", options=opts, seed=4, chunk_frames=3,
                                 context=context, lookahead=lookahead))
        assert len(chunks) >= 2
        return np.abs(np.concatenate(chunks) - whole).max()

    # measured 2026-12-05 on 9 frames (peak ~1): max |diff| 1.78 with no context/look-ahead,
    # 0.68 with 1 and 1, 2.8e-6 with 4 and 4 (the default)
    assert streamed(0, 0) > 0.1 and streamed(1, 1) > 0.1
    assert streamed(4, 4) < 1e-5
