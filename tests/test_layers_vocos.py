"""Op-level parity of the Vocos layers (mlx_impl.layers.convnext / mel / istft_head) against the
vocos 0.1.0 modules: one line per op, float32 on CPU. The window, STFT/iSTFT and HTK filterbank
they build on are tested against torch/torchaudio in tests/test_layers_spectral.py."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest
import torch
from vocos.feature_extractors import MelSpectrogramFeatures
from vocos.heads import ISTFTHead as TorchISTFTHead
from vocos.modules import AdaLayerNorm as TorchAdaLayerNorm
from vocos.modules import ConvNeXtBlock as TorchConvNeXtBlock

import mlx_impl  # noqa: F401  (preloads OpenBLAS before mlx)
from mlx_impl.layers.convnext import AdaLayerNorm, ConvNeXtBlock
from mlx_impl.layers.istft_head import ISTFTHead
from mlx_impl.layers.mel import MelSpectrogram, log_mel
from tests.helpers import assert_close

ATOL = 1e-5  # fp32 layer norm + matmuls over <= 96 channels of O(1) values; measured <= 2e-6


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().float().numpy()


def _signal(shape, seed=0, scale=1.0) -> np.ndarray:
    return (scale * np.random.default_rng(seed).standard_normal(shape)).astype(np.float32)


def _perturb(module: torch.nn.Module, std: float = 0.3, seed: int = 0) -> None:
    """Noise on every parameter, so unit-gain norms and uniform tables are not trivially equal."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(std * torch.randn(p.shape, generator=g))


def _load_convnext(ours: ConvNeXtBlock, theirs: TorchConvNeXtBlock) -> None:
    sd = {k: _np(v) for k, v in theirs.state_dict().items()}
    sd["dwconv.weight"] = sd["dwconv.weight"].transpose(0, 2, 1)  # (C, 1, k) -> (C, k, 1)
    ours.load_weights([(k, mx.array(v)) for k, v in sd.items()], strict=True)


@torch.no_grad()
def check_ada_layer_norm(n_emb, dim, ids, T=9):
    torch.manual_seed(0)
    theirs = TorchAdaLayerNorm(n_emb, dim)
    _perturb(theirs)
    ours = AdaLayerNorm(n_emb, dim)
    ours.load_weights([(k, mx.array(_np(v))) for k, v in theirs.state_dict().items()], strict=True)
    x = _signal((len(ids), T, dim), 1, scale=3.0) + 2.0
    for b, i in enumerate(ids):  # upstream is called with one id for the batch
        want = _np(theirs(torch.from_numpy(x[b: b + 1]), torch.tensor(i)))
        got = np.array(ours(mx.array(x[b: b + 1]), i))
        assert_close(f"adanorm id={i}", got, want, atol=ATOL)
    got_batch = np.array(ours(mx.array(x), mx.array(ids)))  # one id per batch row
    want_batch = np.concatenate([_np(theirs(torch.from_numpy(x[b: b + 1]), torch.tensor(i)))
                                 for b, i in enumerate(ids)])
    assert_close("adanorm per-row ids", got_batch, want_batch, atol=ATOL)


@torch.no_grad()
def check_convnext(dim, inter, T, scale=0.5, n_emb=None, cond=None, seed=0):
    torch.manual_seed(seed)
    theirs = TorchConvNeXtBlock(dim, inter, scale, n_emb).eval()
    _perturb(theirs, seed=seed)
    ours = ConvNeXtBlock(dim, inter, scale, n_emb)
    _load_convnext(ours, theirs)
    x = _signal((2, dim, T), seed)
    want = _np(theirs(torch.from_numpy(x), None if cond is None else torch.tensor(cond)))
    got = np.array(ours(mx.array(x.transpose(0, 2, 1)), cond)).transpose(0, 2, 1)
    assert_close(f"convnext dim={dim} inter={inter} T={T} ada={n_emb} id={cond}", got, want, atol=ATOL)


def test_adanorm_matches_vocos():                  check_ada_layer_norm(4, 24, [0, 3, 1])
def test_convnext_matches_vocos():                 check_convnext(32, 96, 40)
def test_convnext_short_input():                   check_convnext(8, 16, 3)       # T < kernel
def test_convnext_no_layer_scale():                check_convnext(16, 48, 20, scale=0.0)
def test_convnext_adanorm_matches_vocos():         check_convnext(24, 64, 30, n_emb=4, cond=2)
def test_convnext_adanorm_other_id():              check_convnext(24, 64, 30, n_emb=4, cond=0, seed=1)


def test_convnext_adanorm_bad_ids():
    block = ConvNeXtBlock(8, 16, 0.1, adanorm_num_embeddings=3)
    x = mx.zeros((1, 5, 8))
    with pytest.raises(ValueError, match="pass cond_id"):
        block(x)
    with pytest.raises(ValueError, match="out of range"):
        block(x, 3)


# ---- mel front end ---------------------------------------------------------------------------

@torch.no_grad()
@pytest.mark.parametrize("n,n_fft,hop,n_mels,padding", [
    (24000, 1024, 256, 100, "center"),   # vocos-mel-24khz
    (24000, 1024, 256, 100, "same"),
    (1000, 64, 16, 8, "center"),
    (997, 64, 16, 8, "same"),            # length not a multiple of hop
])
def test_log_mel_matches_vocos(n, n_fft, hop, n_mels, padding):
    theirs = MelSpectrogramFeatures(24000, n_fft, hop, n_mels, padding)
    x = _signal((2, n), 3, scale=0.1)
    x[1, : n // 3] = 0.0  # silence: exercises the log clip at 1e-7
    want = _np(theirs(torch.from_numpy(x))).transpose(0, 2, 1)
    mel = MelSpectrogram(24000, n_fft, hop, n_mels, padding)
    got = np.array(log_mel(mx.array(x), mel))
    assert got.shape[1] == mel.n_frames(n)
    # log of sums of up to n_fft/2 magnitudes: fp32 FFT rounding (~1e-6 relative) -> ~1e-5 in log;
    # measured max 3.9e-6
    assert_close(f"log-mel n={n} n_fft={n_fft} hop={hop} {padding}", got, want, atol=2e-5,
                 rtol=1e-5)


def test_mel_bad_input():
    mel = MelSpectrogram(24000, 64, 16, 8, "same")
    with pytest.raises(ValueError, match="batch, samples"):
        mel(mx.zeros((100,)))
    with pytest.raises(ValueError, match="too short"):
        mel(mx.zeros((1, 10)))
    with pytest.raises(ValueError, match="padding must be"):
        MelSpectrogram(24000, 64, 16, 8, "valid")


# ---- iSTFT head ------------------------------------------------------------------------------

@torch.no_grad()
@pytest.mark.parametrize("dim,n_fft,hop,frames,padding", [
    (32, 64, 16, 20, "center"),
    (32, 64, 16, 20, "same"),
    (24, 80, 20, 7, "same"),      # vocos-encodec proportions (n_fft = 4 hop)
    (48, 1024, 256, 12, "center"),
])
def test_istft_head_matches_vocos(dim, n_fft, hop, frames, padding):
    torch.manual_seed(0)
    theirs = TorchISTFTHead(dim, n_fft, hop, padding).eval()
    ours = ISTFTHead(dim, n_fft, hop, padding)
    ours.load_weights([(k, mx.array(_np(v))) for k, v in theirs.state_dict().items()
                       if k.startswith("out.")], strict=True)
    x = _signal((2, frames, dim), 5)
    x[0, 0, :] *= 40.0  # a frame whose magnitudes hit the exp() clip at 100
    want = _np(theirs(torch.from_numpy(x)))
    got = np.array(ours(mx.array(x)))
    # iSTFT of magnitudes up to 100: fp32 FFT rounding relative to the frame energy; measured
    # max 6e-6 on outputs up to ~60
    assert_close(f"istft head dim={dim} n_fft={n_fft} hop={hop} {padding}", got, want,
                 atol=1e-5, rtol=1e-5)
