"""Reference adapter for SNAC: the `snac` package 1.2.1 (`SNAC(**config)`).

Seeded random checkpoints (`random_checkpoint`): `SNAC(**config)` built after
`torch.manual_seed(seed)`, then re-drawn after `torch.manual_seed(seed + 1)` with DAC's scheme
(`reference.dac.reinit_codec`: variance-preserving convs, the second conv of each residual unit
x 0.3, the output conv x 0.2, biases N(0, 0.02^2), Snake alphas exp(N(0, 0.3^2)), codebooks
N(0, 0.2^2)), for the same reasons (upstream's default init leaves Snake alphas at 1 and
kaiming-uniform convs whose scale makes a weak test). Attention layer norms get weight
N(1, 0.1^2) and bias N(0, 0.1^2) (ones/zeros would hide a swap). Written as the hub repos are:
`config.json` + `pytorch_model.bin` (`torch.save(state_dict)`, weight norm as parametrizations),
atomically into a cache directory outside the repository.

Noise: every decoder block's `NoiseBlock` calls `torch.randn((B, 1, T))`. `SnacReference`
takes those draws as inputs (`noise.{k}`, (B, T_k, 1), the MLX layout) and hands them to the
unmodified upstream code by replacing `torch.randn` for the duration of the decode (a scoped
patch that checks each requested shape and that every array is consumed), so both sides see the
same numbers.

Taps (MLX layout, names of mlx_impl/snac/model.py): the quantizer's and the audio always; the
other names asked for are `SNAC` submodule paths, hooked through `hook_taps` for the call.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from torch import nn

from reference.checkpoints import seeded_checkpoint
from reference.dac import reinit_codec
from reference.hooks import channels_last, hook_taps

REINIT = "snac-reinit-v1"


def versions() -> dict:
    import snac

    return {"torch": torch.__version__, "snac": snac.__version__}


def build_random(config: Mapping, seed: int = 0):
    from snac import SNAC

    torch.manual_seed(seed)
    model = SNAC(**dict(config)).eval()
    torch.manual_seed(seed + 1)
    reinit_codec(model, model.decoder.model[-2])
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, nn.LayerNorm):
                mod.weight.copy_(1 + 0.1 * torch.randn(mod.weight.shape))
                mod.bias.copy_(0.1 * torch.randn(mod.bias.shape))
    return model


def random_checkpoint(config: Mapping, seed: int = 0, cache: Path | None = None) -> Path:
    """Directory with config.json + pytorch_model.bin of `build_random(config, seed)` (cached)."""
    def write(folder: Path) -> None:
        torch.save(build_random(config, seed).state_dict(), folder / "pytorch_model.bin")
        (folder / "config.json").write_text(json.dumps(dict(config), indent=2))

    return seeded_checkpoint("snac", config, seed, {"reinit": REINIT, **versions()},
                             ("pytorch_model.bin", "config.json"), write, cache)


@contextmanager
def fed_noise(noise: list[np.ndarray]):
    """Within the block, `torch.randn(shape, ...)` returns the given arrays in order (MLX layout
    (B, T, 1) -> torch (B, 1, T)); a shape mismatch or an unused array is an error."""
    queue = [torch.from_numpy(np.ascontiguousarray(np.asarray(n, np.float32).transpose(0, 2, 1)))
             for n in noise]
    original = torch.randn

    def randn(*size, **kwargs):
        shape = tuple(size[0]) if len(size) == 1 and isinstance(size[0], (tuple, list)) else size
        if not queue:
            raise RuntimeError(f"torch.randn{shape} called but no noise array is left")
        n = queue.pop(0)
        if tuple(n.shape) != tuple(shape):
            raise RuntimeError(f"torch.randn asked for {shape}, the next noise array is "
                               f"{tuple(n.shape)}")
        return n.to(kwargs.get("dtype") or torch.float32)

    torch.randn = randn
    try:
        yield
    finally:
        torch.randn = original
    if queue:
        raise RuntimeError(f"{len(queue)} noise arrays were not used by the decoder")


def noise_names(inputs: Mapping) -> list[str]:
    return sorted((k for k in inputs if k.startswith("noise.")), key=lambda k: int(k.split(".")[1]))


# taps recorded here rather than hooked (not module outputs of the same name)
RECORDED = ("quantizer.quantized", "quantizer.from_codes", "audio_values")


class SnacReference:
    """Callable: {"audio": (N,) float32, "noise.{k}": (1, T_k, 1)} -> taps (MLX layout)."""

    def __init__(self, model_dir: Path | str):
        from snac import SNAC

        model_dir = Path(model_dir)
        self.model = SNAC.from_config(str(model_dir / "config.json"))
        state = torch.load(model_dir / "pytorch_model.bin", map_location="cpu", weights_only=True)
        self.model.load_state_dict(state)
        self.model.eval()
        self.config = json.loads((model_dir / "config.json").read_text())
        self.versions = versions()

    def quantizer_table(self) -> dict:
        """{module path: (tap name, converter)} of every quantizer stage: its in_proj output
        (`quantizer.latents.{k}`) and its codes (`quantizer.codes.{k}`: `VectorQuantize.forward`
        returns (z_q, indices); it returns after its in_proj, so latents.k precede codes.k)."""
        table = {}
        for k in range(len(self.model.quantizer.quantizers)):
            table[f"quantizer.quantizers.{k}.in_proj"] = (f"quantizer.latents.{k}", channels_last)
            table[f"quantizer.quantizers.{k}"] = (f"quantizer.codes.{k}",
                                                  lambda out: out[1].numpy().astype(np.int64))
        return table

    @torch.no_grad()
    def __call__(self, inputs: Mapping[str, np.ndarray],
                 taps: Sequence[str] = ()) -> dict[str, np.ndarray]:
        """`taps`: the names to record; those the adapter does not record anyway (quantizer
        taps, `audio_values`) are module paths of `SNAC`, hooked (`hook_taps`)."""
        audio = np.asarray(inputs["audio"], dtype=np.float32)
        x = torch.from_numpy(np.ascontiguousarray(audio))[None, None]  # (1, 1, N)
        out: dict[str, np.ndarray] = {}
        table = self.quantizer_table()
        recorded = {name for name, _ in table.values()} | set(RECORDED)
        table.update({t: (t, channels_last) for t in taps if t not in recorded})
        q = self.model.quantizer
        orig_forward, orig_from_codes = q.forward, q.from_codes

        def forward(z):
            z_q, codes = orig_forward(z)
            out["quantizer.quantized"] = channels_last(z_q)
            return z_q, codes

        def from_codes(codes):
            z = orig_from_codes(codes)
            out["quantizer.from_codes"] = channels_last(z)
            return z

        q.forward, q.from_codes = forward, from_codes  # instance attributes, removed below
        try:
            with hook_taps(self.model, table, out):
                codes = self.model.encode(x)
                noise = [inputs[k] for k in noise_names(inputs)]
                with fed_noise(noise):
                    y = self.model.decode(codes)
        finally:
            del q.forward, q.from_codes
        out["audio_values"] = y[0, :, : x.shape[-1]].numpy().copy()
        return out
