"""Spark-TTS: the MLX port against spark-tts-lib 0.2.1 (BiCodec) + transformers (wav2vec2, Qwen2)
on the tiny preset: every tap and token through the spec, planted bugs named by the first
diverging tap, the shared layers (ECAPA-TDNN, Perceiver, level FSQ, vector AdaLN) op by op
against upstream's modules, bad input, and the CLI's voice cloning (same seed, same bytes)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import mlx_impl  # noqa: F401  (preloads OpenBLAS before mlx)
import mlx.core as mx
from mlx_impl.spark import bicodec as B
from mlx_impl.spark import tokens as T
from parity.compare import compare_taps
from parity.models import spark as spec_mod
from reference.spark import refs_installed
from tests.helpers import assert_close, assert_taps_pass

SPEC = spec_mod.TEST_TINY
CONFIG = spec_mod.config_for("spark-tts-test-tiny")
ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(
    not refs_installed(), reason="the spark-tts-lib 0.2.1 reference is not installed: run "
    "`make spark-refs` (scripts/setup_spark_refs.sh)")


@pytest.fixture(scope="module")
def case():
    inputs = SPEC.make_inputs(SPEC.golden_cases[0]).arrays
    return inputs, spec_mod.ReferenceSide(CONFIG, SPEC.taps)(inputs)


@pytest.fixture(scope="module")
def mlx_side():
    return spec_mod.MlxSide(CONFIG, "float32", SPEC.taps)


def test_tiny_matches_reference(case, mlx_side):
    inputs, ref = case
    got = mlx_side(inputs)
    assert_taps_pass(SPEC, got, ref, "fox-clone")
    for name in ("semantic_tokens", "global_tokens", "generated.greedy", "generated.sampled"):
        np.testing.assert_array_equal(got[name], ref[name], err_msg=name)
    assert len(np.unique(got["global_tokens"])) > 4  # the FSQ codes vary
    assert len(np.unique(got["generated.sampled"])) > 8


def test_control_mode_tokens_identical(mlx_side):
    """Control labels: the LM writes 32 global tokens then semantic ones; identical on both
    sides, and the labels change the prompt (so the tokens)."""
    inputs = SPEC.make_inputs(SPEC.golden_cases[0]).arrays
    ref_side = spec_mod.ReferenceSide(CONFIG, SPEC.taps)
    outs = {}
    for voice in ("male:high:low", "female:low:high"):
        x = {**inputs, "voice": spec_mod.voice_code(voice)}
        got, want = mlx_side(x), ref_side(x)
        np.testing.assert_array_equal(got["generated.sampled"], want["generated.sampled"])
        sem, glob = T.parse(got["generated.sampled"])
        assert glob.size == T.N_GLOBAL_TOKENS and sem.size > 0
        assert_close("audio", got["audio"], want["audio"], k_rms=1e-4, rtol=1e-5)
        outs[voice] = got["generated.sampled"]
    assert not np.array_equal(*outs.values())


def _first_failure(got, ref) -> str:
    cmp = compare_taps(got, ref, SPEC.taps, SPEC.tolerance("float32"), SPEC.discrete)
    first = cmp.first_failure
    assert first is not None, "the planted bug went unnoticed by the harness"
    return first.name


def test_planted_sampling_block_bug_is_caught_at_the_encoder(case, mlx_side, monkeypatch):
    """SamplingBlock at ratio 1 sums its three branches (x + x + x); a port that kept only two
    diverges at the encoder's output, after `encoder.encoder` still matched."""
    inputs, ref = case
    monkeypatch.setattr(B.SamplingBlock, "__call__", lambda self, x: x + x)
    assert _first_failure(mlx_side(inputs), ref) == "encoder"


def test_planted_d_vector_flatten_is_caught_at_the_d_vector(case, mlx_side, monkeypatch):
    """Upstream flattens the (B, 128, 32) FSQ output channel-major; flattening our (B, 32, 128)
    time-major instead is caught at `speaker.d_vector`, every token before it still equal."""
    inputs, ref = case

    def time_major(self, global_tokens):
        zq = self.quantizer.decode(global_tokens[:, 0])
        return self.project(zq.reshape(zq.shape[0], -1))
    monkeypatch.setattr(B.SpeakerEncoder, "detokenize", time_major)
    assert _first_failure(mlx_side(inputs), ref) == "speaker.d_vector"


# -- the shared layers, op by op against upstream's torch modules ---------------------------------

def _torch_state(module) -> dict:
    return {k: v.detach().numpy() for k, v in module.state_dict().items()}


def test_ecapa_tdnn_matches_upstream():
    import torch

    from mlx_impl.layers.ecapa_tdnn import EcapaTdnn
    from mlx_impl.loading import load_strict
    from mlx_impl.spark.convert import convert_bicodec
    from reference.spark import spark_modules

    spark_modules()
    from spark_tts_lib.modules.speaker.ecapa_tdnn import ECAPA_TDNN_GLOB_c512

    torch.manual_seed(0)
    ref = ECAPA_TDNN_GLOB_c512(feat_dim=24, embed_dim=16).eval()
    with torch.no_grad():
        for m in ref.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.normal_(1, 0.1)
                m.bias.normal_(0, 0.1)
    ours = load_strict(EcapaTdnn(24, 16), convert_bicodec(_torch_state(ref)))
    x = np.random.default_rng(0).standard_normal((2, 57, 24)).astype(np.float32)
    with torch.no_grad():
        want_emb, want_lat = ref(torch.from_numpy(x), True)
    emb, lat = ours(mx.array(x))
    assert_close("latent", np.array(lat), want_lat.transpose(1, 2).numpy(), atol=2e-6)
    assert_close("embedding", np.array(emb), want_emb.numpy(), atol=2e-5, rtol=1e-5)


def test_perceiver_matches_upstream():
    import torch

    from mlx_impl.layers.perceiver import PerceiverResampler
    from mlx_impl.loading import load_strict
    from mlx_impl.spark.convert import convert_bicodec
    from reference.spark import spark_modules

    spark_modules()
    from spark_tts_lib.modules.speaker.perceiver_encoder import PerceiverResampler as Ref

    torch.manual_seed(0)
    ref = Ref(dim=32, dim_context=48, num_latents=8).eval()
    with torch.no_grad():
        ref.norm.gamma.normal_(1, 0.1)
    state = {f"perceiver_sampler.{k}": v for k, v in _torch_state(ref).items()}
    params = {k[len("perceiver_sampler."):]: v for k, v in convert_bicodec(state).items()}
    ours = load_strict(PerceiverResampler(32, dim_context=48, num_latents=8), params)
    x = np.random.default_rng(1).standard_normal((2, 40, 48)).astype(np.float32)
    with torch.no_grad():
        want = ref(torch.from_numpy(x)).numpy()
    assert_close("perceiver", np.array(ours(mx.array(x))), want, atol=2e-6)


def test_level_fsq_matches_upstream_including_ties():
    import torch

    from mlx_impl.layers.fsq import LevelFSQ
    from reference.spark import spark_modules

    spark_modules()
    from spark_tts_lib.modules.fsq.finite_scalar_quantization import FSQ

    levels = [4, 4, 4, 3, 5, 2]
    ref, ours = FSQ(levels=levels), LevelFSQ(levels)
    z = np.random.default_rng(2).standard_normal((3, 50, 6)).astype(np.float32) * 2
    with torch.no_grad():
        want_codes, want_idx = ref(torch.from_numpy(z))
    codes, idx = ours.encode(mx.array(z))
    np.testing.assert_array_equal(np.array(idx), want_idx.numpy())
    np.testing.assert_array_equal(np.array(codes), want_codes.numpy())
    back = ref.indices_to_codes(want_idx).numpy()
    np.testing.assert_array_equal(np.array(ours.indices_to_codes(idx)), back)
    with pytest.raises(ValueError, match="FSQ indices must lie in"):
        ours.indices_to_codes(mx.array([ours.codebook_size]))


def test_vector_adaln_convnext_matches_upstream():
    import torch

    from mlx_impl.layers.convnext import CondConvNeXtBlock
    from mlx_impl.loading import load_strict
    from mlx_impl.spark.convert import convert_bicodec
    from reference.spark import spark_modules

    mods = spark_modules()
    torch.manual_seed(0)
    ref = mods.vocos.ConvNeXtBlock(16, 32, 0.5, condition_dim=8).eval()
    with torch.no_grad():
        for p in ref.norm.parameters():
            p.normal_(0, 0.3)
    ours = load_strict(CondConvNeXtBlock(16, 32, 0.5, 8), convert_bicodec(_torch_state(ref)))
    x = np.random.default_rng(3).standard_normal((2, 20, 16)).astype(np.float32)
    c = np.random.default_rng(4).standard_normal((2, 8)).astype(np.float32)
    with torch.no_grad():
        want = ref(torch.from_numpy(x).transpose(1, 2), torch.from_numpy(c)).transpose(1, 2)
    got = ours(mx.array(x), mx.array(c))
    assert_close("convnext", np.array(got), want.numpy(), atol=2e-6)
    with pytest.raises(ValueError, match="needs a condition"):
        ours.norm(mx.array(x), None)


# -- bad input ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tts():
    from mlx_impl.spark.load import load_tts

    return load_tts(spec_mod.checkpoint(CONFIG))


@pytest.mark.parametrize("text", ["", "   "])
def test_empty_text_is_refused(tts, text):
    with pytest.raises(ValueError, match="empty"):
        tts.synthesize(text, "male")


@pytest.mark.parametrize("voice,match", [("robot", "unknown gender 'robot'"),
                                         ("male:loud", "unknown pitch 'loud'"),
                                         ("female:low:warp", "unknown speed 'warp'"),
                                         ("a:b:c:d", "GENDER\\[:PITCH")])
def test_unknown_control_values_are_refused(tts, voice, match):
    with pytest.raises(ValueError, match=match):
        tts.synthesize("Hello.", voice)


@pytest.mark.parametrize("audio,match", [(np.full(800, 0.1, np.float32), "too short"),
                                         (np.zeros(16000, np.float32), "silent"),
                                         (np.full(16000, np.nan, np.float32), "NaN"),
                                         (np.zeros((2, 16000), np.float32), "mono")])
def test_bad_reference_clips_are_refused(tts, audio, match):
    with pytest.raises(ValueError, match=match):
        tts.clone(audio)


def test_bad_tokens_are_refused(tts):
    with pytest.raises(ValueError, match="32 global tokens"):
        T.clone_prompt("Hi.", np.zeros(31, np.int64))
    with pytest.raises(ValueError, match="semantic tokens span"):
        tts.codec.detokenize(np.zeros(32, np.int64), np.array([8192]))


def test_cli_clones_a_shared_speech_clip_deterministically(tmp_path):
    from parity.clips import manifest, missing_shared_speech, shared_speech
    from parity.tts_models import build

    if (why := missing_shared_speech()) is not None:
        pytest.skip(why)
    build("spark-tts-test-tiny")
    clip = next(e for e in manifest(shared_speech())
                if e["id"] == spec_mod.SHARED_CLIP)["path"]
    outs = []
    for i in range(2):
        out = tmp_path / f"{i}.wav"
        r = subprocess.run([sys.executable, "-m", "mlx_impl.tts", "Hello from Spark.", "-o",
                            str(out), "--model", "spark-tts-test-tiny", "--ref-audio", str(clip),
                            "--ref-text", "Mister Quilter is the apostle of the middle classes.",
                            "--max-tokens", "40", "--seed", "3", "--quiet"],
                           cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        outs.append(out.read_bytes())
    assert outs[0] == outs[1] and len(outs[0]) > 44
    r = subprocess.run([sys.executable, "-m", "mlx_impl.tts", "Hi.", "-o", str(tmp_path / "x.wav"),
                        "--model", "spark-tts-test-tiny", "--voice", "male:shouty"], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode != 0 and "unknown pitch 'shouty'" in r.stderr


def test_eos_forced_by_injected_noise_stops_both_sides(tts):
    """The stop condition: a +1e4 Gumbel value on the eos at step 5 stops both loops there."""
    from mlx_impl.orpheus.generate import seeded_noise
    from mlx_impl.spark.generate import DEFAULTS, generate
    from mlx_impl.tts import SamplingOptions
    from reference.orpheus import gumbel_noise
    from reference.spark import SparkReference, lm_generate

    def forced(base):
        def noise(step, *shape):
            g = base(step, *shape)
            if step == 5:
                g[..., T.EOS] += 1e4
            return g
        return noise

    prompt = T.clone_prompt("Hi.", np.arange(32) * 100)
    opts = SamplingOptions(**{**DEFAULTS, "top_p": 1.0, "top_k": 0}, max_tokens=20)
    got = generate(tts.lm, prompt, opts, noise=forced(seeded_noise(7, "gumbel")))
    ref = SparkReference(spec_mod.checkpoint(CONFIG))
    want = lm_generate(ref, prompt, spec_mod.layout(), False, opts.temperature, max_tokens=20,
                       noise=forced(gumbel_noise(7, tts.lm.config.vocab_size)))
    np.testing.assert_array_equal(got.tokens, want)
    assert got.stop == "eos" and got.tokens.size == 6 and got.tokens[-1] == T.EOS


def test_prompt_layout_and_parse():
    """The prompt grammar of spark-tts-lib's process_prompt / process_prompt_control, written as
    text through the test layout, and the regex read-back."""
    glob, sem = np.arange(32) * 7, np.array([5, 8191, 0])
    text = "".join(T.token_text(i) for i in T.clone_prompt("Hi.", glob, "Yes.", sem))
    assert text == ("<|task_tts|><|start_content|>Yes.Hi.<|end_content|><|start_global_token|>"
                    + "".join(f"<|bicodec_global_{g}|>" for g in glob) + "<|end_global_token|>"
                    "<|start_semantic_token|><|bicodec_semantic_5|><|bicodec_semantic_8191|>"
                    "<|bicodec_semantic_0|>")
    text = "".join(T.token_text(i) for i in T.control_prompt("Hi.", "male", "very_high", "low"))
    assert text == ("<|task_controllable_tts|><|start_content|>Hi.<|end_content|>"
                    "<|start_style_label|><|gender_1|><|pitch_label_4|><|speed_label_1|>"
                    "<|end_style_label|>")
    s, g = T.parse(T.global_ids(glob) + [T.sid("<|end_global_token|>")] + T.semantic_ids(sem)
                   + [T.EOS])
    np.testing.assert_array_equal(s, sem)
    np.testing.assert_array_equal(g, glob)
    with pytest.raises(ValueError, match="needs the clip's semantic tokens"):
        T.clone_prompt("Hi.", glob, "Yes.")
