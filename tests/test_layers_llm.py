"""Op-level parity of the Llama/Mistral decoder layers (mlx_impl/layers/llm.py) against
transformers 5.24.0's Llama and Mistral modules (fp32, CPU, eager attention).

Tolerances (measured, MLX CPU vs torch 2.13.0, fp32; outputs of magnitude 1-8): rms_norm
6.0e-8, silu 2.4e-7 (|x| up to 100), mlp 1.4e-6, attention (GQA 4/2 heads, head_dim 16, rope
base 1e6, with and without a cached prefix) 2.3e-6, Mistral decoder layer 3.8e-6, 2-layer LM
logits (prefill + cached steps) 4.1e-6 untied / 3.3e-6 tied: atol 5e-6 per op, 1e-5 for logits.
Whole Qwen2ForCausalLM (q/k/v biases, tied head) and Llama-3-scaled LlamaForCausalLM, 2 layers,
2 x 40 tokens, logits up to ~6: full forward and token-by-token cached decode vs transformers
max 1.8e-5 over the CPU and mx.fast branches and 4 seeds (errors compound through two randomised
layers of width 64; 3e-6 relative): atol 3e-5. Cached decode vs our own full forward (one-row
products and the unmasked kernel vs masked MLX ops, different summation orders): up to 1.1e-5
measured under pytest: atol 2e-5.
"""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest
import torch

import mlx_impl  # noqa: F401  (OpenBLAS preload before mlx)
from mlx_impl.layers.attention import KVCache, causal_mask
from mlx_impl.layers.llm import MLP, Attention, DecoderLayer, DecoderLM, LMArgs, RMSNorm, silu
from mlx_impl.layers.rope import Llama3Scaling
from mlx_impl.taps import Taps
from tests.helpers import assert_close

RNG = np.random.default_rng(0)
ARGS = LMArgs(vocab_size=97, hidden_size=48, intermediate_size=72, num_hidden_layers=2,
              num_attention_heads=4, num_key_value_heads=2, head_dim=16, rms_norm_eps=1e-5,
              rope_theta=1e6)


def llama_config(args: LMArgs = ARGS, **over):
    from transformers import LlamaConfig

    kw = dict(vocab_size=args.vocab_size, hidden_size=args.hidden_size,
              intermediate_size=args.intermediate_size, num_hidden_layers=args.num_hidden_layers,
              num_attention_heads=args.num_attention_heads,
              num_key_value_heads=args.num_key_value_heads, head_dim=args.head_dim,
              rms_norm_eps=args.rms_norm_eps, rope_theta=args.rope_theta,
              attention_bias=args.attention_bias, mlp_bias=args.mlp_bias,
              tie_word_embeddings=args.tie_word_embeddings, hidden_act="silu")
    cfg = LlamaConfig(**{**kw, **over})
    cfg._attn_implementation = "eager"
    return cfg


def randomize(module: torch.nn.Module, seed: int = 0) -> None:
    """Every parameter N(0, 0.2^2) (norm gains 1 + N(0, 0.1^2)): nothing left at 1 or 0."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if "norm" in name:
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.2 * torch.randn(p.shape, generator=g))


def load_into(ours, theirs: torch.nn.Module, prefix_map=lambda k: k) -> None:
    ours.load_weights([(prefix_map(k), mx.array(v.detach().numpy()))
                       for k, v in theirs.state_dict().items()], strict=True)


def x_of(*shape, scale=1.0):
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


def rope_of(cfg, t0: int, t: int):
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

    dummy = torch.zeros(1, t, cfg.head_dim)
    return LlamaRotaryEmbedding(cfg)(dummy, torch.arange(t0, t0 + t)[None])


def torch_causal(t: int, s: int) -> torch.Tensor:
    return torch.from_numpy(np.array(causal_mask(t, s - t)))[None, None]


def test_rms_norm():
    from transformers.models.llama.modeling_llama import LlamaRMSNorm

    ref = LlamaRMSNorm(48, eps=1e-5)
    randomize(ref)
    ours = RMSNorm(48, eps=1e-5)
    load_into(ours, ref)
    x = x_of(2, 7, 48, scale=4.0)
    assert_close("rms_norm", np.array(ours(mx.array(x))), ref(torch.from_numpy(x)).detach(),
                 atol=5e-6)


def test_silu():
    x = np.concatenate([x_of(1000, scale=6.0), np.array([-100, -30, 0, 30, 100], np.float32)])
    assert_close("silu", np.array(silu(mx.array(x))),
                 torch.nn.functional.silu(torch.from_numpy(x)).numpy(), atol=5e-6)


def test_mlp():
    from transformers.models.llama.modeling_llama import LlamaMLP

    ref = LlamaMLP(llama_config())
    randomize(ref)
    ours = MLP(48, 72)
    load_into(ours, ref)
    x = x_of(1, 9, 48)
    assert_close("mlp", np.array(ours(mx.array(x))), ref(torch.from_numpy(x)).detach(), atol=5e-6)


@pytest.mark.parametrize("prefix", [0, 5])
def test_attention_gqa_with_cache(prefix):
    from transformers.models.llama.modeling_llama import LlamaAttention

    cfg = llama_config()
    ref = LlamaAttention(cfg, layer_idx=0).eval()
    randomize(ref)
    ours = Attention(ARGS)
    load_into(ours, ref)
    t = 8
    x = x_of(1, prefix + t, 48)
    with torch.no_grad():
        want, _ = ref(torch.from_numpy(x), rope_of(cfg, 0, prefix + t),
                      torch_causal(prefix + t, prefix + t))
    cache = KVCache()
    outs = []
    if prefix:
        outs.append(ours(mx.array(x[:, :prefix]), cache, causal_mask(prefix, 0)))
    outs.append(ours(mx.array(x[:, prefix:]), cache, causal_mask(t, prefix)))
    got = np.concatenate([np.array(o) for o in outs], axis=1)
    assert_close(f"attention prefix={prefix}", got, want.numpy(), atol=5e-6)


def test_decoder_layer_mistral():
    from transformers import MistralConfig
    from transformers.models.mistral.modeling_mistral import MistralDecoderLayer, MistralRotaryEmbedding

    cfg = MistralConfig(hidden_size=48, intermediate_size=72, num_attention_heads=4,
                        num_key_value_heads=2, head_dim=16, rms_norm_eps=1e-5, rope_theta=1e6,
                        sliding_window=None)
    cfg._attn_implementation = "eager"
    ref = MistralDecoderLayer(cfg, layer_idx=0).eval()
    randomize(ref)
    ours = DecoderLayer(ARGS)
    load_into(ours, ref)
    x = x_of(1, 11, 48)
    pos = MistralRotaryEmbedding(cfg)(torch.zeros(1, 11, 16), torch.arange(11)[None])
    with torch.no_grad():
        want = ref(torch.from_numpy(x), attention_mask=torch_causal(11, 11),
                   position_embeddings=pos)
    want = want[0] if isinstance(want, tuple) else want
    taps = Taps()
    got = ours(mx.array(x), KVCache(), causal_mask(11, 0), taps, "layer")
    assert_close("decoder layer", np.array(got), want.numpy(), atol=5e-6)
    assert list(taps) == ["layer.self_attn", "layer.mlp", "layer"]


def _llama_lm(args: LMArgs):
    from transformers import LlamaForCausalLM

    torch.manual_seed(0)
    ref = LlamaForCausalLM(llama_config(args)).eval()
    randomize(ref)
    ours = DecoderLM(args)

    def rename(k: str) -> str:
        return k[len("model."):] if k.startswith("model.") else k

    if args.tie_word_embeddings:
        params = [(rename(k), mx.array(v.detach().numpy()))
                  for k, v in ref.state_dict().items() if k != "lm_head.weight"]
        ours.load_weights(params, strict=True)
    else:
        load_into(ours, ref, rename)
    return ref, ours


@pytest.mark.parametrize("tied", [False, True])
def test_decoder_lm_prefill_and_steps(tied):
    args = LMArgs(**{**ARGS.__dict__, "tie_word_embeddings": tied})
    ref, ours = _llama_lm(args)
    ids = RNG.integers(0, args.vocab_size, (1, 12))
    with torch.no_grad():
        want = ref(torch.from_numpy(ids)).logits.numpy()
    cache = ours.new_cache()
    prefill = ours.logits(ours(ours.embed(mx.array(ids[:, :9])), cache))
    steps = [ours.logits(ours(ours.embed(mx.array(ids[:, i:i + 1])), cache)) for i in range(9, 12)]
    got = np.concatenate([np.array(prefill)] + [np.array(s) for s in steps], axis=1)
    assert_close(f"lm logits tied={tied}", got, want, atol=1e-5)


def test_decoder_lm_rejects_bad_ids_and_cache():
    ours = DecoderLM(ARGS)
    with pytest.raises(ValueError, match=r"token ids must be in \[0, 97\)"):
        ours.embed(mx.array([[0, 97]]))
    with pytest.raises(ValueError, match="cache has 1 layers"):
        ours(mx.zeros((1, 2, 48)), [KVCache()])


def test_gqa_heads_must_divide():
    with pytest.raises(ValueError, match="not a multiple"):
        LMArgs(**{**ARGS.__dict__, "num_key_value_heads": 3})


def _fake_gpu(monkeypatch):
    """Make the layers believe the default device is a GPU: the mx.fast branches run on the CPU
    stream (as the attention tests do)."""
    class FakeGpu:
        pass

    monkeypatch.setattr(mx, "default_device", lambda: FakeGpu())


def test_rms_norm_fast_branch(monkeypatch):
    from transformers.models.llama.modeling_llama import LlamaRMSNorm

    ref = LlamaRMSNorm(48, eps=1e-5)
    randomize(ref)
    ours = RMSNorm(48, eps=1e-5)
    load_into(ours, ref)
    x = x_of(2, 7, 48, scale=4.0)
    _fake_gpu(monkeypatch)
    got = np.array(ours(mx.array(x)))
    monkeypatch.undo()
    assert_close("rms_norm mx.fast", got, ref(torch.from_numpy(x)).detach(), atol=5e-6)


QWEN2 = LMArgs(vocab_size=101, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
               num_attention_heads=4, num_key_value_heads=2, head_dim=16, rms_norm_eps=1e-6,
               rope_theta=1e6, qkv_bias=True, tie_word_embeddings=True)
LLAMA3 = LMArgs(**{**ARGS.__dict__, "rope_theta": 5e5,
                   "rope_scaling": Llama3Scaling(4.0, 1.0, 4.0, 16)})


def _reference_lm(kind: str, args: LMArgs):
    """transformers' Qwen2ForCausalLM / LlamaForCausalLM from a tiny config (seeded, random
    weights, nothing downloaded), and ours loaded strictly from its state dict."""
    from transformers import LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    if kind == "qwen2":
        cfg = Qwen2Config(vocab_size=args.vocab_size, hidden_size=args.hidden_size,
                          intermediate_size=args.intermediate_size,
                          num_hidden_layers=args.num_hidden_layers,
                          num_attention_heads=args.num_attention_heads,
                          num_key_value_heads=args.num_key_value_heads,
                          rms_norm_eps=args.rms_norm_eps, rope_theta=args.rope_theta,
                          tie_word_embeddings=args.tie_word_embeddings)
        cfg._attn_implementation = "eager"
        torch.manual_seed(0)
        ref = Qwen2ForCausalLM(cfg).eval()
    else:
        s = args.rope_scaling
        cfg = llama_config(args, max_position_embeddings=256, rope_parameters={
            "rope_type": "llama3", "rope_theta": args.rope_theta, "factor": s.factor,
            "low_freq_factor": s.low_freq_factor, "high_freq_factor": s.high_freq_factor,
            "original_max_position_embeddings": s.original_max_position_embeddings})
        torch.manual_seed(0)
        ref = LlamaForCausalLM(cfg).eval()
    randomize(ref)
    ours = DecoderLM(args)
    params = [(k[len("model."):] if k.startswith("model.") else k, mx.array(v.detach().numpy()))
              for k, v in ref.state_dict().items()
              if not (args.tie_word_embeddings and k == "lm_head.weight")]
    ours.load_weights(params, strict=True)
    return ref, ours


def _logits_full_and_stepwise(ours: DecoderLM, ids: np.ndarray):
    full = np.array(ours.logits(ours(ours.embed(mx.array(ids)), ours.new_cache())))
    cache = ours.new_cache()
    steps = [np.array(ours.logits(ours(ours.embed(mx.array(ids[:, i:i + 1])), cache)))
             for i in range(ids.shape[1])]
    return full, np.concatenate(steps, axis=1)


@pytest.mark.parametrize("kind", ["qwen2", "llama3"])
@pytest.mark.parametrize("device", ["cpu", "gpu-branch"])
def test_whole_lm_full_and_cached_decode(kind, device, monkeypatch):
    """Logits of a whole 2-layer model on 40 tokens (2 rows): one full forward and a KV-cached
    token-by-token decode from position 0, both against transformers' full forward. Positions
    reach 40 > original_max_position_embeddings 16, so the Llama-3 scaling is exercised."""
    args = QWEN2 if kind == "qwen2" else LLAMA3
    ref, ours = _reference_lm(kind, args)
    ids = RNG.integers(0, args.vocab_size, (2, 40))
    with torch.no_grad():
        want = ref(torch.from_numpy(ids)).logits.numpy()
    if device == "gpu-branch":
        _fake_gpu(monkeypatch)
    full, stepwise = _logits_full_and_stepwise(ours, ids)
    monkeypatch.undo()
    assert_close(f"{kind} {device} full forward", full, want, atol=3e-5)
    assert_close(f"{kind} {device} cached decode", stepwise, want, atol=3e-5)
    assert_close(f"{kind} {device} cached decode vs full", stepwise, full, atol=2e-5)


def dia_decoder_config():
    from transformers import DiaDecoderConfig

    cfg = DiaDecoderConfig(hidden_size=48, intermediate_size=72, num_hidden_layers=1,
                           num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                           cross_num_attention_heads=4, cross_num_key_value_heads=2,
                           cross_head_dim=16, cross_hidden_size=40,
                           rope_parameters={"rope_type": "default", "rope_theta": 1e4})
    cfg._attn_implementation = "eager"
    return cfg


def test_cross_attention_gqa_matches_dia():
    """`CrossAttention` (no positions, K/V projected once, GQA 4/2, scale 1) against transformers'
    `DiaCrossAttention`: measured 2026-12-05 max 5.0e-6 on outputs up to 6.0 (scale 1 on
    N(0, 0.2^2) weights: sharp softmax), so atol 1e-5 here (2x), not the 5e-6 of the others."""
    from transformers.models.dia.modeling_dia import DiaCrossAttention

    from mlx_impl.layers.llm import CrossAttention

    ref = DiaCrossAttention(dia_decoder_config(), layer_idx=0).eval()
    randomize(ref)
    ours = CrossAttention(48, 40, 4, 2, 16, scale=1.0)
    load_into(ours, ref)
    x, src = x_of(2, 5, 48), x_of(2, 11, 40)
    with torch.no_grad():
        want, _ = ref(torch.from_numpy(x), torch.from_numpy(src))
    got = ours(mx.array(x), ours.project_kv(mx.array(src)))
    assert_close("cross_attention", np.array(got), want.numpy(), atol=1e-5)


def test_attention_scale_one_matches_dia_self_attention():
    """`LMArgs.attention_scale=1` (Dia's self-attention, causal GQA with RoPE) against
    `DiaSelfAttention`: measured 2026-12-05 max 9.5e-7 (outputs up to 3.9)."""
    from transformers.models.dia.modeling_dia import DiaRotaryEmbedding, DiaSelfAttention

    cfg = dia_decoder_config()
    ref = DiaSelfAttention(cfg, layer_idx=0, is_causal=True).eval()
    randomize(ref)
    args = LMArgs(vocab_size=8, hidden_size=48, intermediate_size=72, num_hidden_layers=1,
                  num_attention_heads=4, num_key_value_heads=2, head_dim=16, rms_norm_eps=1e-5,
                  rope_theta=1e4, attention_scale=1.0)
    ours = Attention(args)
    load_into(ours, ref)
    x = x_of(1, 9, 48, scale=0.5)
    pos = DiaRotaryEmbedding(cfg)(torch.zeros(1, 9, 16), torch.arange(9)[None])
    with torch.no_grad():
        want, _ = ref(torch.from_numpy(x), pos, torch_causal(9, 9))
    got = ours(mx.array(x), KVCache(), causal_mask(9, 0))
    assert_close("self_attention scale 1", np.array(got), want.numpy(), atol=5e-6)
