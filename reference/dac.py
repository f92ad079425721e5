"""Reference adapter for DAC: transformers 5.24.0 `DacModel`.

Seeded random checkpoints (`random_checkpoint`): `DacModel(DacConfig(**config))` built after
`torch.manual_seed(seed)`, then re-drawn after `torch.manual_seed(seed + 1)` (`REINIT`), because
upstream's own init makes a poor test model: convs N(0, 0.02) with zero biases shrink the signal
to std ~0.002 by the latent (measured on dac-44khz, 1 s of speech), where an absolute tolerance
of 1e-5 would hide real errors; Snake alphas all 1 (a swapped or mis-shaped alpha would go
unseen); codebooks N(0, 0.02), so the decoder input is ~50x smaller than the encoder output.
Re-drawn: every conv weight N(0, 1 / fan_in) (variance preserving), the second conv of each
residual unit x 0.3 (units add up), the last decoder conv x 0.2 (measured: without it 18% of
the output samples sit in tanh saturation, |y| > 0.99), biases N(0, 0.02^2), Snake alphas
exp(N(0, 0.3^2)), codebooks N(0, 0.2^2) (quantized latents then std 0.59 against the encoder
output's 0.50). With codebook_dim 8 and 1024 random unit directions the codes are far from
degenerate (measured on dac-44khz: 77-84 distinct codes among 86 frames per stage for 1 s).
The model is written by `save_pretrained` (config.json + model.safetensors; plain conv weights,
the layout of the published descript/dac_* checkpoints, which were converted with weight norm
removed) into a cache directory outside the repository, keyed by config, seed and versions.

`DacReference` runs `encode(x, n_quantizers)` then `decode(audio_codes=codes)` (the codec round
trip through the codes) and records the taps it is asked for, in the MLX layout (channels-last):
module outputs through `hook_taps` (tap name = `DacModel` submodule path, the names of
mlx_impl/dac/model.py), the quantizer's outputs and the audio directly (`RECORDED`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from reference.checkpoints import seeded_checkpoint
from reference.hooks import channels_last, hook_taps

REINIT = "dac-reinit-v1"  # in the cache key: a new scheme, a new checkpoint


def versions() -> dict:
    import transformers

    return {"torch": torch.__version__, "transformers": transformers.__version__}


@torch.no_grad()
def reinit_codec(model: nn.Module, output_conv: nn.Module, codebook_std: float = 0.2) -> None:
    """The re-draws described in the module docstring (also used for SNAC). Call after seeding.

    The last conv of every residual unit (a module whose class name ends in `ResidualUnit`)
    gets x 0.3, the decoder's `output_conv` x 0.2 (keeps the final tanh mostly out of
    saturation). Weight-normed convs (parametrized) get v = the draw and g = ||v||, so the
    folded weight is the draw."""
    damped = set()
    for mod in model.modules():
        if type(mod).__name__.endswith("ResidualUnit"):
            convs = [m for m in mod.modules() if isinstance(m, nn.Conv1d)]
            damped.add(id(convs[-1]))
    for mod in model.modules():
        if isinstance(mod, (nn.Conv1d, nn.ConvTranspose1d)):
            fan_in = mod.in_channels // mod.groups * mod.kernel_size[0]
            if isinstance(mod, nn.ConvTranspose1d):
                fan_in //= mod.stride[0]  # each output sees kernel / stride taps per input
            gain = 0.2 if mod is output_conv else 0.3 if id(mod) in damped else 1.0
            w = torch.randn(mod.weight.shape) * (gain / fan_in ** 0.5)
            if hasattr(mod, "parametrizations"):
                p = mod.parametrizations.weight
                p.original1.copy_(w)
                p.original0.copy_(w.norm(dim=tuple(range(1, w.ndim)), keepdim=True))
            else:
                mod.weight.copy_(w)
            if mod.bias is not None:
                mod.bias.copy_(0.02 * torch.randn(mod.bias.shape))
        elif isinstance(mod, nn.Embedding):
            mod.weight.copy_(codebook_std * torch.randn(mod.weight.shape))
        elif type(mod).__name__ == "Snake1d":
            mod.alpha.copy_(torch.exp(0.3 * torch.randn(mod.alpha.shape)))


def build_random(config: Mapping, seed: int = 0):
    from transformers import DacConfig, DacModel

    torch.manual_seed(seed)
    model = DacModel(DacConfig(**dict(config))).eval()
    torch.manual_seed(seed + 1)
    reinit_codec(model, model.decoder.conv2)
    return model


def random_checkpoint(config: Mapping, seed: int = 0, cache: Path | None = None) -> Path:
    """Directory holding `save_pretrained` output of `build_random(config, seed)` (cached)."""
    return seeded_checkpoint("dac", config, seed, {"reinit": REINIT, **versions()},
                             ("model.safetensors", "config.json"),
                             lambda folder: build_random(config, seed).save_pretrained(folder),
                             cache)


# taps recorded here rather than hooked (not module outputs of the same name)
RECORDED = ("quantizer.latents", "quantizer.codes", "quantizer.quantized", "quantizer.from_codes",
            "audio_values")


class DacReference:
    """Callable: {"audio": (N,) float32, "n_quantizers": () int32} -> taps (MLX layout)."""

    def __init__(self, model_dir: Path | str):
        from transformers import DacModel

        self.model = DacModel.from_pretrained(str(model_dir)).float().eval()
        self.config = self.model.config.to_dict()
        self.versions = versions()

    @torch.no_grad()
    def __call__(self, inputs: Mapping[str, np.ndarray],
                 taps: Sequence[str] = ()) -> dict[str, np.ndarray]:
        """`taps`: the names to record; those not in `RECORDED` are module paths of `DacModel`,
        hooked (`hook_taps`). The `RECORDED` ones and the audio are always recorded."""
        audio = np.asarray(inputs["audio"], dtype=np.float32)
        x = torch.from_numpy(np.ascontiguousarray(audio))[None, None]  # (1, 1, N)
        n_q = inputs.get("n_quantizers")
        n_q = None if n_q is None else int(np.asarray(n_q).reshape(-1)[0])
        out: dict[str, np.ndarray] = {}
        q = self.model.quantizer
        orig_from_codes = q.from_codes

        def from_codes(codes):
            z = orig_from_codes(codes)
            out["quantizer.from_codes"] = channels_last(z[0])
            return z

        q.from_codes = from_codes  # instance attribute, removed in `finally`
        hooked = {t: (t, channels_last) for t in taps if t not in RECORDED}
        try:
            with hook_taps(self.model, hooked, out):
                enc = self.model.encode(x, n_quantizers=n_q)
                out["quantizer.latents"] = channels_last(enc.projected_latents)
                out["quantizer.codes"] = enc.audio_codes.numpy().astype(np.int64)  # (B, n_q, T)
                out["quantizer.quantized"] = channels_last(enc.quantized_representation)
                y = self.model.decode(audio_codes=enc.audio_codes).audio_values  # (1, N')
        finally:
            del q.from_codes
        out["audio_values"] = y[..., : x.shape[-1]].numpy().copy()
        return out
