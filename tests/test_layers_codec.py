"""Op-level parity of the codec layers (mlx_impl.layers.conv / lstm / quantize / seanet) against
torch and transformers' EnCodec modules: one line per op, float32 on CPU."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest
import torch
from transformers import EncodecConfig
from transformers.models.encodec import modeling_encodec as hf

import mlx_impl  # noqa: F401  (preloads OpenBLAS before mlx)
from mlx_impl.layers.conv import Conv1d, ConvTranspose1d, pad1d, torch_to_mlx_kernel
from mlx_impl.layers.lstm import LSTM
from mlx_impl.layers.quantize import ResidualVectorQuantizer
from mlx_impl.layers.seanet import ELU
from weights.weight_norm import fold_weight_norm
from tests.helpers import assert_close

ATOL = 1e-6  # fp32 sums of at most a few hundred products of O(1) values; measured <= 5e-7


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().float().numpy()


def _signal(shape, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _hf_config(**kw) -> EncodecConfig:
    return EncodecConfig(**kw)


def _torch_kernel(module) -> tuple[np.ndarray, np.ndarray]:
    """(kernel as torch stores it after weight norm, bias) of an Encodec(Transpose)Conv1d."""
    conv = module.conv
    if hasattr(conv, "parametrizations"):
        g = _np(conv.parametrizations.weight.original0)
        v = _np(conv.parametrizations.weight.original1)
        return fold_weight_norm(g, v), _np(conv.bias)
    return _np(conv.weight), _np(conv.bias)


def _load(ours, theirs, transposed: bool) -> None:
    w, b = _torch_kernel(theirs)
    params = [("conv.weight", mx.array(torch_to_mlx_kernel(w, transposed))),
              ("conv.bias", mx.array(b))]
    if hasattr(theirs, "norm"):
        params += [("norm.weight", mx.array(_np(theirs.norm.weight))),
                   ("norm.bias", mx.array(_np(theirs.norm.bias)))]
    ours.load_weights(params, strict=True)


@torch.no_grad()
def check_conv(length, n_in, n_out, k, stride=1, dilation=1, causal=True, pad_mode="reflect",
               norm="weight_norm", seed=0):
    torch.manual_seed(seed)
    cfg = _hf_config(use_causal_conv=causal, pad_mode=pad_mode, norm_type=norm)
    theirs = hf.EncodecConv1d(cfg, n_in, n_out, k, stride=stride, dilation=dilation).eval()
    if norm == "time_group_norm":  # non-trivial affine
        theirs.norm.weight.normal_(1.0, 0.3)
        theirs.norm.bias.normal_(0.0, 0.3)
    ours = Conv1d(n_in, n_out, k, stride=stride, dilation=dilation, causal=causal,
                  pad_mode=pad_mode, norm=norm)
    _load(ours, theirs, transposed=False)
    x = _signal((2, n_in, length), seed)
    want = _np(theirs(torch.from_numpy(x))).transpose(0, 2, 1)
    got = np.array(ours(mx.array(x.transpose(0, 2, 1))))
    name = (f"conv L={length} {n_in}->{n_out} k={k} s={stride} d={dilation} "
            f"{'causal' if causal else 'centred'} {pad_mode} {norm}")
    assert_close(name, got, want, atol=ATOL)


@torch.no_grad()
def check_conv_transpose(length, n_in, n_out, k, stride, causal=True, trim_right_ratio=1.0,
                         norm="weight_norm", seed=0):
    torch.manual_seed(seed)
    cfg = _hf_config(use_causal_conv=causal, trim_right_ratio=trim_right_ratio, norm_type=norm)
    theirs = hf.EncodecConvTranspose1d(cfg, n_in, n_out, k, stride=stride).eval()
    ours = ConvTranspose1d(n_in, n_out, k, stride=stride, causal=causal,
                           trim_right_ratio=trim_right_ratio, norm=norm)
    _load(ours, theirs, transposed=True)
    x = _signal((2, n_in, length), seed)
    want = _np(theirs(torch.from_numpy(x))).transpose(0, 2, 1)
    got = np.array(ours(mx.array(x.transpose(0, 2, 1))))
    assert_close(f"conv_transpose L={length} {n_in}->{n_out} k={k} s={stride} causal={causal} "
                 f"trim_right={trim_right_ratio} {norm}", got, want, atol=ATOL)


# ---- padding ---------------------------------------------------------------------------------

@pytest.mark.parametrize("length,left,right,mode", [
    (20, 6, 0, "reflect"), (20, 3, 4, "reflect"), (20, 5, 2, "constant"),
    (3, 6, 1, "reflect"),  # shorter than the padding: upstream's zero-extension trick
    (1, 2, 2, "reflect"),
])
def test_pad1d_matches_upstream(length, left, right, mode):
    x = _signal((2, 3, length))
    torch_mode = "reflect" if mode == "reflect" else "constant"
    want = _np(hf.EncodecConv1d._pad1d(torch.from_numpy(x), (left, right), mode=torch_mode))
    got = np.array(pad1d(mx.array(x.transpose(0, 2, 1)), left, right, mode)).transpose(0, 2, 1)
    assert_close(f"pad1d L={length} ({left},{right}) {mode}", got, want, atol=0.0)


# ---- Conv1d ----------------------------------------------------------------------------------

def test_conv_causal_reflect():             check_conv(50, 3, 5, 7)
def test_conv_causal_stride_extra_pad():    check_conv(53, 4, 8, 8, stride=4)   # last frame padded
def test_conv_causal_dilated():             check_conv(40, 4, 2, 3, dilation=3)
def test_conv_centred_odd_stride():         check_conv(47, 4, 6, 7, stride=3, causal=False)
def test_conv_centred_constant_pad():       check_conv(31, 2, 3, 5, causal=False, pad_mode="constant")
def test_conv_short_input_reflect():        check_conv(4, 2, 3, 7)              # length < padding
def test_conv_pointwise():                  check_conv(17, 6, 6, 1)
def test_conv_time_group_norm():            check_conv(45, 4, 6, 4, stride=2, causal=False, norm="time_group_norm")


# ---- ConvTranspose1d -------------------------------------------------------------------------

def test_conv_transpose_causal():           check_conv_transpose(20, 8, 4, 8, 4)
def test_conv_transpose_causal_half_trim(): check_conv_transpose(13, 6, 3, 10, 5, trim_right_ratio=0.5)
def test_conv_transpose_centred_odd():      check_conv_transpose(11, 4, 4, 7, 2, causal=False)
def test_conv_transpose_group_norm():       check_conv_transpose(9, 4, 2, 6, 3, causal=False, norm="time_group_norm")


def test_conv_transpose_rejects_trim_ratio_when_not_causal():
    with pytest.raises(ValueError, match="only makes sense for causal"):
        ConvTranspose1d(2, 2, 4, 2, causal=False, trim_right_ratio=0.5)


# ---- LSTM ------------------------------------------------------------------------------------

@pytest.mark.parametrize("n_in,hidden,layers,steps", [(16, 16, 2, 30), (5, 7, 3, 12), (8, 8, 1, 1)])
@torch.no_grad()
def test_lstm_matches_torch(n_in, hidden, layers, steps):
    torch.manual_seed(0)
    theirs = torch.nn.LSTM(n_in, hidden, layers, batch_first=True).eval()
    ours = LSTM(n_in, hidden, layers)
    ours.load_weights([(k, mx.array(_np(v))) for k, v in theirs.state_dict().items()], strict=True)
    x = _signal((2, steps, n_in))
    want = _np(theirs(torch.from_numpy(x))[0])
    assert_close(f"lstm {n_in}->{hidden} x{layers} T={steps}", np.array(ours(mx.array(x))), want,
                 atol=ATOL)


# ---- ELU -------------------------------------------------------------------------------------

def test_elu_matches_torch():
    x = np.concatenate([_signal(1000) * 5, [0.0, -1e-8, 1e-8, -80.0, 80.0, -1e-30]]).astype(np.float32)
    want = _np(torch.nn.functional.elu(torch.from_numpy(x)))
    assert_close("elu", np.array(ELU()(mx.array(x))), want, atol=0.0, rtol=2e-7)


# ---- residual vector quantizer ---------------------------------------------------------------

def _rvq_pair(seed=0):
    cfg = _hf_config(codebook_size=64, hidden_size=16, upsampling_ratios=[4, 2],
                     target_bandwidths=[6.0, 12.0, 24.0], sampling_rate=16000)
    theirs = hf.EncodecResidualVectorQuantizer(cfg).eval()
    torch.manual_seed(seed)
    with torch.no_grad():
        for i, layer in enumerate(theirs.layers):
            layer.codebook.embed.copy_(torch.randn(64, 16) * 0.7 ** i)
    ours = ResidualVectorQuantizer(cfg.num_quantizers, 64, 16, cfg.frame_rate)
    ours.load_weights([(f"layers.{i}.codebook.embed", mx.array(_np(l.codebook.embed)))
                       for i, l in enumerate(theirs.layers)], strict=True)
    return theirs, ours


@torch.no_grad()
def test_rvq_encode_decode_matches_upstream():
    theirs, ours = _rvq_pair()
    x = _signal((2, 16, 40))  # (B, D, T) upstream layout
    for bw in (6.0, 12.0, 24.0):
        n_q = theirs.get_num_quantizers_for_bandwidth(bw)
        assert ours.num_quantizers_for_bandwidth(bw) == n_q, f"stages at {bw} kbps"
        want = theirs.encode(torch.from_numpy(x), bw).numpy()  # (n_q, B, T)
        got = np.array(ours.encode(mx.array(x.transpose(0, 2, 1)), n_q))
        assert got.shape == want.shape, (got.shape, want.shape)
        mism = np.argwhere(got != want)
        assert mism.size == 0, (f"codes at {bw} kbps: {len(mism)}/{want.size} differ, first at "
                                f"{tuple(mism[0])}: mlx {got[tuple(mism[0])]} vs {want[tuple(mism[0])]}")
        deq_want = _np(theirs.decode(torch.from_numpy(want))).transpose(0, 2, 1)
        assert_close(f"rvq decode {bw} kbps", np.array(ours.decode(mx.array(got))), deq_want,
                     atol=1e-6)
    assert len(np.unique(want[0])) > 10, "codebook choices are degenerate; the test means nothing"


def test_rvq_bad_codes():
    _, ours = _rvq_pair()
    with pytest.raises(ValueError, match="out of range"):
        ours.decode(mx.array(np.full((2, 1, 5), 64, np.int32)))
    with pytest.raises(ValueError, match="out of range"):
        ours.decode(mx.array(np.full((2, 1, 5), -1, np.int32)))
    with pytest.raises(ValueError, match=r"\(n_q, batch, frames\)"):
        ours.decode(mx.array(np.zeros((2, 5), np.int32)))
    with pytest.raises(ValueError, match="stages"):
        ours.decode(mx.array(np.zeros((ours.num_quantizers + 1, 1, 5), np.int32)))
    with pytest.raises(ValueError, match="integers"):
        ours.decode(mx.array(np.zeros((1, 1, 5), np.float32)))
