"""weights.weight_norm: the one weight-norm fold, against torch's own weight-normed modules (both
torch APIs, Conv1d and ConvTranspose1d, dim 0 and Wav2Vec2's dim 2)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import assert_close
from weights.weight_norm import WeightNormError, fold_weight_norm, fold_weight_norms

torch = pytest.importorskip("torch", reason="torch's weight_norm is the reference")

FOLD_ATOL = 1e-7  # float64 fold vs torch's float32 v * (g / ||v||), weights ~0.2: 1.5e-8 measured


def _module(kind: str, api: str, dim: int) -> torch.nn.Module:
    torch.manual_seed(0)
    conv = torch.nn.ConvTranspose1d(6, 4, 5) if kind == "transposed" else torch.nn.Conv1d(6, 4, 5)
    if api == "parametrizations":
        conv = torch.nn.utils.parametrizations.weight_norm(conv, dim=dim)
        g = conv.parametrizations.weight.original0
    else:
        conv = torch.nn.utils.weight_norm(conv, dim=dim)
        g = conv.weight_g
    with torch.no_grad():  # g starts as ||v||: make it differ so the fold is exercised
        g.mul_(torch.rand_like(g) + 0.5)
    return conv


def _pair(api: str) -> tuple[str, str]:
    return (("parametrizations.weight.original0", "parametrizations.weight.original1")
            if api == "parametrizations" else ("weight_g", "weight_v"))


@pytest.mark.parametrize("kind,dim", [("conv", 0), ("transposed", 0), ("conv", 2)])
@pytest.mark.parametrize("api", ["parametrizations", "weight_g"])
def test_fold_matches_torch(kind, api, dim):
    conv = _module(kind, api, dim)
    state = {f"m.{k}": v.detach().numpy() for k, v in conv.state_dict().items()}
    folded = fold_weight_norms(state, dim=dim)
    assert sorted(folded) == ["m.bias", "m.weight"]
    with torch.no_grad():  # what both torch APIs compute on each forward
        g, v = (torch.from_numpy(state[f"m.{k}"]) for k in _pair(api))
        want = torch._weight_norm(v, g, dim).numpy()
    assert_close(f"{kind} {api} dim={dim}", folded["m.weight"], want, atol=FOLD_ATOL)
    assert folded["m.weight"].dtype == np.float32
    assert folded["m.bias"] is state["m.bias"]


def test_transposed_dim0_norms_are_g_over_input_channels():
    """For a ConvTranspose1d kernel (in, out, k), dim 0 is the input channel."""
    conv = _module("transposed", "parametrizations", 0)
    g = conv.parametrizations.weight.original0.detach().numpy()
    v = conv.parametrizations.weight.original1.detach().numpy()
    assert g.shape == (6, 1, 1) and v.shape == (6, 4, 5)
    w = fold_weight_norm(g, v).astype(np.float64)
    assert_close("||w|| over (out, k)", np.sqrt((w ** 2).sum(axis=(1, 2))), g[:, 0, 0], atol=1e-6)


def test_errors_name_the_key_and_the_fix():
    with pytest.raises(WeightNormError, match=r"g has shape \(3, 1, 1\), expected \(4, 1, 1\)"):
        fold_weight_norm(np.ones((3, 1, 1), np.float32), np.ones((4, 2, 5), np.float32))
    with pytest.raises(WeightNormError, match=r"g has shape \(1, 1, 2\), expected \(1, 1, 3\)"):
        fold_weight_norm(np.ones((1, 1, 2)), np.ones((4, 2, 3)), dim=2)
    g, v = np.ones((4, 1, 1), np.float32), np.ones((4, 2, 5), np.float32)
    with pytest.raises(WeightNormError, match="a.weight_g has no matching weight_v"):
        fold_weight_norms({"a.weight_g": g})
    with pytest.raises(WeightNormError, match="original1 has no matching parametrizations"):
        fold_weight_norms({"a.parametrizations.weight.original1": v})
    with pytest.raises(WeightNormError, match="both a plain weight and a weight-norm pair"):
        fold_weight_norms({"a.weight_g": g, "a.weight_v": v, "a.weight": v})
