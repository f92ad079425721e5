"""CSM / Marvis (mlx_impl/csm) against transformers CsmForConditionalGeneration on the tiny
presets: prompt layout, config, the parity spec's taps (and a planted bug failing them),
generation with injected noise, the end-of-audio stop, voice-cloning context, streaming, and
the CLI (WAV, determinism, --stream, each bad input's error + exit 2)."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import soundfile as sf

import mlx_impl  # noqa: F401  (BLAS preload before mlx)
from mlx_impl.csm import tokens as T
from mlx_impl.csm.presets import PRESETS
from tests.helpers import assert_close

TINY = "csm-test-tiny"


@pytest.fixture(scope="module")
def folder():
    from reference.csm import build_model

    return build_model(PRESETS[TINY], 0)


@pytest.fixture(scope="module")
def ref(folder):
    from reference.csm import CsmReference

    return CsmReference(folder)


@pytest.fixture(scope="module")
def tts(folder):
    from mlx_impl.csm.load import load_tts

    return load_tts(folder)


def clip(n_frames: int = 6, seed: int = 0) -> np.ndarray:
    t = np.arange(n_frames * 16) / 24000
    return (0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * np.random.default_rng(seed)
            .standard_normal(t.size)).astype(np.float32)


# -- prompt and config -------------------------------------------------------------------------

def test_prompt_layout_is_upstreams():
    codes = np.arange(16).reshape(2, 8)
    ids, c = T.prompt([T.Turn("Hi", 0, codes), T.Turn("Yo", 1)], 128000, 128002, 128003, 8)
    assert ids.tolist() == [128000, *b"[0]Hi", 128001, 128002, 128002, 128003,
                            128000, *b"[1]Yo", 128001]
    assert np.array_equal(c, codes)
    ids, _ = T.prompt([T.Turn("Hi", 3)], 1, 49150, 49151, 8)  # Marvis: SmolLM2 bos/eos 1/2
    assert ids.tolist() == [1, *b"[3]Hi", 2]


@pytest.mark.parametrize("turns,match", [
    ([T.Turn("", 0)], "text is empty"),
    ([T.Turn("x" * (T.MAX_TEXT_BYTES + 1), 0)], "split it"),
    ([T.Turn("Hi", "alice")], "unknown speaker id 'alice'"),
    ([T.Turn("Hi", 100)], "unknown speaker id 100"),
    ([T.Turn("Hi", 0), T.Turn("Yo", 1)], "context turn 0 has no audio"),
    ([T.Turn("Hi", 0, np.zeros((0, 8))), T.Turn("Yo", 1)], "frames >= 1"),
])
def test_prompt_bad_input(turns, match):
    with pytest.raises(ValueError, match=match):
        T.prompt(turns, 128000, 128002, 128003, 8)


def test_config_reads_saved_config_strictly(folder):
    from mlx_impl.csm.config import CsmConfig

    d = json.loads((folder / "config.json").read_text())
    cfg = CsmConfig.from_dict(d)
    assert (cfg.num_codebooks, cfg.vocab_size, cfg.codebook_size) == (8, 67, 64)
    assert cfg.depth_decoder_config.lm_args.rope_scaling.factor == 32.0
    with pytest.raises(ValueError, match="unknown keys"):
        CsmConfig.from_dict({**d, "sliding_window": 4})
    with pytest.raises(ValueError, match="tie_codebooks_embeddings=False is not implemented"):
        CsmConfig.from_dict({**d, "tie_codebooks_embeddings": False})
    with pytest.raises(ValueError, match="codebooks"):
        CsmConfig.from_dict({**d, "num_codebooks": 4})


def test_converter_ties_the_codebook_embeddings():
    from mlx_impl.csm.convert import BACKBONE_EMBED, DEPTH_EMBED, split

    e = np.ones((4, 2), np.float32)
    csm, codec = split({DEPTH_EMBED: e, "lm_head.weight": e, "codec_model.x": e})
    assert set(csm) == {BACKBONE_EMBED, "lm_head.weight"} and set(codec) == {"x"}
    with pytest.raises(KeyError, match="differ"):
        split({DEPTH_EMBED: e, BACKBONE_EMBED: 2 * e, "codec_model.x": e})


def test_real_presets_dimensions():
    csm, marvis = PRESETS["csm-1b"]["csm"], PRESETS["marvis-250m"]["csm"]
    assert (csm["num_hidden_layers"], csm["hidden_size"], csm["text_vocab_size"]) == (
        16, 2048, 128256)
    assert (marvis["num_hidden_layers"], marvis["hidden_size"], marvis["num_key_value_heads"],
            marvis["depth_decoder_config"]["intermediate_size"]) == (6, 1536, 3, 4096)
    assert csm["vocab_size"] == marvis["vocab_size"] == 2051 == 2048 + 3
    json.dumps(PRESETS)


# -- the parity spec's sides, and a planted bug ------------------------------------------------

def _sides(monkeypatch, name):
    from parity.models import csm as spec_module
    from parity.registry import get

    monkeypatch.setattr(spec_module, "N_FRAMES", 6)  # 6 frames x 8 draws: fast, same code path
    spec = get(name)
    inputs = spec.make_inputs(spec.golden_cases[0]).arrays
    return spec, inputs, spec.build_reference()(inputs)


@pytest.mark.parametrize("name", ["csm-test-tiny", "marvis-test-tiny"])
def test_tiny_spec_taps_pass_and_a_planted_bug_fails(monkeypatch, name):
    from mlx_impl.csm.model import CsmModel
    from parity.compare import compare_taps

    spec, inputs, want = _sides(monkeypatch, name)
    table = spec.tolerance("float32")
    got = spec.build_mlx("float32")(inputs)
    res = compare_taps(got, want, spec.taps, table, spec.discrete)
    assert res.passed, res.first_failure
    # planted: the depth decoder reads code p-1 from codebook p's slice of the shared table
    plain = CsmModel.depth_inputs
    monkeypatch.setattr(CsmModel, "depth_inputs",
                        lambda self, codes, first: plain(self, codes, min(first + 1, 7)))
    bad = compare_taps(spec.build_mlx("float32")(inputs), want, spec.taps, table, spec.discrete)
    assert not bad.passed and bad.first_failure.name == "depth_decoder.model.embed"


# -- generation --------------------------------------------------------------------------------

@pytest.mark.parametrize("temperature", [0.0, 0.9])
def test_generation_with_context_identical_to_reference(tts, ref, temperature):
    from mlx_impl.csm.tts import ContextTurn
    from mlx_impl.tts import SamplingOptions

    a = clip()
    ctx = [ContextTurn("Hi there", 0, a)]
    opts = SamplingOptions(temperature=temperature, top_k=50, max_tokens=12)
    gen = tts.generate("Good morning", 1, opts, seed=3, context=ctx)
    ids, codes = tts.prompt("Good morning", 1, ctx)
    assert np.array_equal(codes, ref.encode(a))  # our Mimi's codes = upstream's
    want = ref.generate(ids, a, temperature, top_k=50, max_frames=12, seed=3)
    assert gen.frames.tolist() == want.tolist() and gen.stop == "max_tokens"
    if temperature == 0:  # the written-out reference loop = upstream's own generate
        assert want.tolist() == ref.generate_upstream(ids, a, 12).tolist()


def test_end_of_audio_stop_and_audio_cutoff(tts, ref):
    from mlx_impl.csm.generate import seeded_noise
    from mlx_impl.tts import SamplingOptions
    from reference.csm import gumbel_noise

    def forced(base, frame, codebooks):
        def noise(step, *shape):
            g = base(step, *shape)
            if step // 8 == frame and step % 8 in codebooks:
                g[..., 0] += 1e4
            return g
        return noise

    ids, _ = tts.prompt("Bye", 0)
    # no top-k here: it may drop code 0 before the draw (then no noise can pick it)
    opts = SamplingOptions(temperature=0.9, max_tokens=20)
    # frame 2: codebooks 0..6 forced to 0 but not the last -> stops (upstream tests frame[:-1]),
    # and the frame is still decoded (the audio cut is at an all-K-zero frame)
    gen = tts.generate("Bye", 0, opts, noise=forced(seeded_noise(5, "gumbel"), 2, range(7)))
    base = gumbel_noise(5, 67)
    want = ref.generate(ids, None, 0.9, 0, max_frames=20,
                        noise=forced(lambda s, *_: base(s), 2, range(7)))
    assert gen.stop == "end_of_audio" and gen.frames.shape == (3, 8)
    assert gen.frames.tolist() == want.tolist()
    assert gen.audio_frames.shape == ((3, 8) if gen.frames[-1, -1] else (2, 8))
    assert_close("audio", tts.decode(gen.audio_frames), ref.decode(want), atol=2e-5)


def test_streaming_equals_whole_decode_and_determinism(tts):
    from mlx_impl.tts import SamplingOptions

    opts = SamplingOptions(temperature=0.9, top_k=50, max_tokens=24)
    a = tts.synthesize("Same seed", 1, options=opts, seed=4)
    b = tts.synthesize("Same seed", 1, options=opts, seed=4)
    c = tts.synthesize("Same seed", 1, options=opts, seed=5)
    assert np.array_equal(a.audio, b.audio) and not np.array_equal(a.audio, c.audio)
    chunks = list(tts.stream("Same seed", 1, options=opts, seed=4, chunk_frames=4))
    assert len(chunks) == 6  # written while generating
    # Mimi's decoder is causal: measured 2026-12-05 max |diff| 5.7e-6 on audio of peak ~10
    # (float rounding of the chunked convolutions); a lost streaming state shows errors ~1
    assert_close("streamed audio", np.concatenate(chunks), a.audio, atol=5e-5)


def test_synthesize_bad_input(tts):
    from mlx_impl.csm.tts import ContextTurn
    from mlx_impl.tts import SamplingOptions

    with pytest.raises(ValueError, match="conversation context"):
        tts.synthesize("Hi", np.zeros(10, np.float32))
    with pytest.raises(ValueError, match="exceeds the model's 2048 positions"):
        tts.synthesize("Hello there, friend", 0, options=SamplingOptions(max_tokens=2040))
    with pytest.raises(ValueError, match="repetition_penalty"):
        tts.synthesize("Hi", 0, options=SamplingOptions(repetition_penalty=1.3))
    with pytest.raises(ValueError, match="fewer than one Mimi frame"):
        tts.synthesize("Hi", 0, context=[ContextTurn("a", 0, np.zeros(3, np.float32))])
    with pytest.raises(ValueError, match="no samples"):
        tts.synthesize("Hi", 0, context=[ContextTurn("a", 0, np.zeros(0, np.float32))])


# -- CLI ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def built():
    from parity.tts_models import build

    return build(TINY)


FAST = ["--model", TINY, "--max-tokens", "12", "--quiet"]


def test_cli_wav_same_seed_same_bytes_and_stream(built, tmp_path):
    from mlx_impl.tts.cli import main

    a, b, s = tmp_path / "a.wav", tmp_path / "b.wav", tmp_path / "s.wav"
    assert main(["Hello there.", "-o", str(a), *FAST, "--seed", "3"]) == 0
    assert main(["Hello there.", "-o", str(b), *FAST, "--seed", "3"]) == 0
    audio, sr = sf.read(a, dtype="float32")
    assert sr == 24000 and audio.shape == (12 * 16,) and np.abs(audio).max() > 0
    assert a.read_bytes() == b.read_bytes()
    assert main(["Hello there.", "-o", str(s), *FAST, "--seed", "3", "--stream"]) == 0
    w, _ = sf.read(a, dtype="int16")
    st, sr = sf.read(s, dtype="int16")
    assert sr == 24000 and st.shape == w.shape
    assert np.abs(st.astype(np.int32) - w.astype(np.int32)).max() <= 1


def test_cli_bad_input_exit_2(built, tmp_path, capsys):
    from mlx_impl.tts.cli import EXIT_USER_ERROR, main

    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF not really")
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, np.float32), 24000)
    short, long = tmp_path / "short.wav", tmp_path / "long.wav"
    sf.write(short, clip(300), 24000)  # 0.2 s, under the tiny model's 0.256 s
    sf.write(long, clip(1600), 24000)  # 1.07 s, over its 1.024 s (3/4 of 2048 positions)
    out = str(tmp_path / "x.wav")
    cases = [
        (["", "-o", out, *FAST], "text is empty"),
        (["x" * 1500, "-o", out, *FAST], "over the limit"),
        (["Hi", "-o", out, *FAST, "--voice", "bob"], "unknown speaker id 'bob'"),
        (["Hi", "-o", out, *FAST, "--temperature", "-1"], "temperature must be >= 0"),
        (["Hi", "-o", out, *FAST, "--top-p", "2"], "top_p must be in"),
        (["Hi", "-o", out, *FAST, "--ref-audio", str(corrupt), "--ref-text", "a"],
         "reference audio"),
        (["Hi", "-o", out, *FAST, "--ref-audio", str(empty), "--ref-text", "a"],
         "reference audio"),
        (["Hi", "-o", out, *FAST, "--ref-audio", str(short), "--ref-text", "a"],
         "shorter than 0.256 s"),
        (["Hi", "-o", out, *FAST, "--ref-audio", str(long), "--ref-text", "a"],
         "longer than this model's limit of 1.024 s"),
        (["Hi", "-o", out, *FAST, "--ref-text", "a"], "pass --ref-audio PATH too"),
        (["Hi", "-o", out, *FAST, "--ref-audio", str(tmp_path / "missing.wav"),
          "--ref-text", "a"], "audio file not found"),
    ]
    for argv, match in cases:
        assert main(argv) == EXIT_USER_ERROR, argv
        err = capsys.readouterr().err
        assert err.startswith("error: ") and match in err, (argv, err)



def test_cli_ref_audio_is_a_context_turn(built, tmp_path):
    """--ref-audio goes through the shared reference-clip path and becomes one context turn of
    speaker 0: the same bytes as synthesize(context=[ContextTurn(text, 0, clip)])."""
    from mlx_impl.csm.tts import ContextTurn
    from mlx_impl.tts.cli import main
    from mlx_impl.tts.models import load

    ref = clip(500)  # 0.33 s at 24 kHz: 500 tiny-Mimi frames
    ref_wav = tmp_path / "ref.wav"
    sf.write(ref_wav, ref, 24000, subtype="FLOAT")
    a = tmp_path / "a.wav"
    assert main(["Hi.", "-o", str(a), *FAST, "--ref-audio", str(ref_wav), "--ref-text",
                 "Hi there"]) == 0
    tts = load(TINY)
    direct = tts.synthesize("Hi.", 0, options=replace(tts.defaults, max_tokens=12), seed=0,
                            context=[ContextTurn("Hi there", 0, ref)])
    got, _ = sf.read(a, dtype="int16")
    want = (np.clip(direct.audio, -1, 1) * 32767).round().astype(np.int16)
    assert got.shape == want.shape and np.array_equal(got, want)
    plain = tmp_path / "p.wav"
    assert main(["Hi.", "-o", str(plain), *FAST]) == 0
    assert plain.read_bytes() != a.read_bytes()


@pytest.mark.slow
@pytest.mark.needs_weights
def test_transcript_by_our_whisper():
    from mlx_impl.tts.reference_audio import load_reference
    from parity.clips import FIXTURES

    # the fox clip (6.5 s) is longer than the tiny model's 2048 positions allow as context
    # (tiny Mimi: 1500 frames/s), so the transcription is tested alone; measured 2026-12-05:
    # ' The quick round fox jump over the lazy dog. ...' with whisper-base
    text = load_reference(FIXTURES / "espeak_en_fox.wav", target_rate=24000,
                          whisper="whisper-base").text
    assert "fox" in text and "lazy dog" in text
