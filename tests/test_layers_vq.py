"""Op-level parity of the factorised L2-normalised residual VQ (mlx_impl/layers/vq_factorized.py)
against the upstream torch modules: transformers `DacVectorQuantize` / `DacResidualVectorQuantizer`
and snac `VectorQuantize` / `ResidualVectorQuantize` (weight-normed projections, strides).

Tolerances (fp32, MLX 0.32.4 CPU vs torch 2.13.0): projections and sums max abs ~2e-7 on values
~1 (measured); atol 2e-6. Codes exact.
"""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest
import torch

import mlx_impl  # noqa: F401  (OpenBLAS preload before mlx)
from mlx_impl.dac.convert import convert
from mlx_impl.layers.vq_factorized import (FactorizedVQ, ResidualFactorizedVQ, avg_pool_time,
                                           l2_normalize, nearest_code, repeat_time)
from weights.weight_norm import fold_weight_norms
from tests.helpers import assert_close

RNG = np.random.default_rng(0)
ATOL = 2e-6


def t2m(x: torch.Tensor) -> np.ndarray:  # (B, C, T) torch -> (B, T, C)
    return x.detach().transpose(1, 2).numpy()


def load_into(ours, module: torch.nn.Module, prefix: str = "") -> None:
    state = {prefix + k: v.detach().numpy() for k, v in module.state_dict().items()}
    ours.load_weights([(k, mx.array(v)) for k, v in convert(fold_weight_norms(state)).items()],
                      strict=True)


def randomize(module: torch.nn.Module) -> None:
    torch.manual_seed(1)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape) * 0.5)


def test_ops():
    x = (RNG.standard_normal((2, 12, 8)) * 3).astype(np.float32)
    xt = torch.from_numpy(x)
    assert_close("l2_normalize", np.array(l2_normalize(mx.array(x))),
                 torch.nn.functional.normalize(xt, dim=-1).numpy(), atol=1e-7, rtol=1e-6)
    z = np.zeros((1, 3, 4), np.float32)
    assert_close("l2_normalize(0)", np.array(l2_normalize(mx.array(z))), z, atol=0)
    xc = xt.transpose(1, 2)
    assert_close("avg_pool_time", np.array(avg_pool_time(mx.array(x), 4)),
                 t2m(torch.nn.functional.avg_pool1d(xc, 4, 4)), atol=1e-6)
    assert_close("avg_pool_time(remainder)", np.array(avg_pool_time(mx.array(x[:, :11]), 4)),
                 t2m(torch.nn.functional.avg_pool1d(xc[..., :11], 4, 4)), atol=1e-6)
    assert_close("repeat_time", np.array(repeat_time(mx.array(x), 3)),
                 t2m(xc.repeat_interleave(3, dim=-1)), atol=0)


@pytest.mark.parametrize("distance", ["descript", "transformers-dac"])
def test_nearest_code_both_forms(distance):
    lat = RNG.standard_normal((3, 200, 8)).astype(np.float32)
    cb = RNG.standard_normal((512, 8)).astype(np.float32)
    e = torch.nn.functional.normalize(torch.from_numpy(lat).reshape(-1, 8))
    c = torch.nn.functional.normalize(torch.from_numpy(cb))
    e2, c2 = e.pow(2).sum(1, keepdim=True), c.pow(2).sum(1, keepdim=True).t()
    if distance == "descript":
        want = (-(e2 - 2 * e @ c.t() + c2)).max(1)[1]
    else:
        want = (-(e2 - 2 * e @ c.t()) + c2).max(1)[1]
    got = np.array(nearest_code(mx.array(lat), mx.array(cb), distance)).reshape(-1)
    assert np.array_equal(got, want.numpy()), f"{(got != want.numpy()).sum()} codes differ"
    assert len(np.unique(got)) > 100
    with pytest.raises(ValueError, match="unknown distance"):
        nearest_code(mx.array(lat), mx.array(cb), "cosine")


def test_dac_stage_and_residual():
    from transformers import DacConfig
    from transformers.models.dac.modeling_dac import DacResidualVectorQuantizer

    cfg = DacConfig(encoder_hidden_size=4, downsampling_ratios=[2, 2], n_codebooks=3,
                    codebook_size=64, codebook_dim=4)  # hidden 16
    ref = DacResidualVectorQuantizer(cfg).eval()
    randomize(ref)
    ours = ResidualFactorizedVQ(16, 64, 4, (1, 1, 1), distance="transformers-dac")
    load_into(ours, ref)
    z = (RNG.standard_normal((2, 16, 40))).astype(np.float32)
    with torch.no_grad():
        q, codes, lat, _, _ = ref(torch.from_numpy(z), n_quantizers=2)
        dec = ref.from_codes(codes)[0]
    got_q, got_codes, got_lat = ours.encode(mx.array(z).transpose(0, 2, 1), 2)
    assert np.array_equal(np.stack([np.array(c) for c in got_codes], 1), codes.numpy())
    assert len(np.unique(codes.numpy())) > 20
    assert_close("dac quantized", np.array(got_q), t2m(q), atol=ATOL)
    assert_close("dac latents", np.array(mx.concatenate(got_lat, -1)), t2m(lat), atol=ATOL)
    assert_close("dac from_codes", np.array(ours.decode(got_codes)), t2m(dec), atol=ATOL)


def test_snac_weight_normed_strided_stages():
    from snac.vq import ResidualVectorQuantize

    ref = ResidualVectorQuantize(input_dim=16, codebook_size=64, codebook_dim=4,
                                 vq_strides=[4, 2, 1]).eval()
    randomize(ref)
    ours = ResidualFactorizedVQ(16, 64, 4, (4, 2, 1), distance="descript")
    load_into(ours, ref)
    z = RNG.standard_normal((1, 16, 48)).astype(np.float32)
    with torch.no_grad():
        q, codes = ref(torch.from_numpy(z))
        dec = ref.from_codes(codes)
    got_q, got_codes, _ = ours.encode(mx.array(z).transpose(0, 2, 1))
    for i, (g, w) in enumerate(zip(got_codes, codes)):
        assert np.array_equal(np.array(g), w.numpy()), f"stage {i} codes differ"
    assert [c.shape[1] for c in got_codes] == [12, 24, 48]
    assert_close("snac quantized", np.array(got_q), t2m(q), atol=ATOL)
    assert_close("snac from_codes", np.array(ours.decode(got_codes)), t2m(dec), atol=ATOL)
    # one stage alone, as upstream's VectorQuantize.forward
    with torch.no_grad():
        q0, c0 = ref.quantizers[0](torch.from_numpy(z))
    st = ours.quantizers[0].encode(mx.array(z).transpose(0, 2, 1))
    assert np.array_equal(np.array(st.codes), c0.numpy())
    assert_close("snac stage 0", np.array(st.quantized), t2m(q0), atol=ATOL)


def test_bad_codes():
    vq = ResidualFactorizedVQ(8, 16, 4, (2, 1))
    ok = [mx.zeros((1, 3), mx.int32), mx.zeros((1, 6), mx.int32)]
    vq.decode(ok)
    with pytest.raises(ValueError, match="out of range"):
        vq.decode([ok[0], mx.full((1, 6), 16, mx.int32)])
    with pytest.raises(ValueError, match="out of range"):
        vq.decode([mx.full((1, 3), -1, mx.int32), ok[1]])
    with pytest.raises(ValueError, match="frames"):
        vq.decode([ok[0], mx.zeros((1, 5), mx.int32)])
    with pytest.raises(ValueError, match="stages"):
        vq.decode(ok + ok)
    with pytest.raises(ValueError, match="integers"):
        vq.decode([ok[0].astype(mx.float32), ok[1]])
    with pytest.raises(ValueError, match=r"\(batch, frames\)"):
        vq.decode([mx.zeros((3,), mx.int32)])
    with pytest.raises(ValueError, match="empty"):
        vq.decode([mx.zeros((1, 0), mx.int32)])
    with pytest.raises(ValueError, match="n_quantizers"):
        vq.encode(mx.zeros((1, 4, 8)), 3)
    with pytest.raises(ValueError, match="fewer than the quantizer stride"):
        FactorizedVQ(8, 16, 4, stride=4).encode(mx.zeros((1, 3, 8)))
