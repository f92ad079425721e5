"""Reference adapter for BigVGAN v2: the `bigvgan` 2.4.1 package, `BigVGAN(h, use_cuda_kernel=False)`.

Why this reference: the package imports on this CPU-only machine (its CUDA kernel is only loaded
when `use_cuda_kernel=True`), so the issue's fallback (transformers
`Qwen2_5OmniToken2WavBigVGANModel`) is not needed; the torch alias-free activation is upstream's
own CPU path.

Seeded random checkpoints (`random_checkpoint`): `BigVGAN(AttrDict(config))` after
`torch.manual_seed(seed)` (upstream init: convs N(0, 0.01), weight norm g = ||v||, Snake log
parameters 0). All Snake parameters being 0 would hide a swapped alpha/beta or a wrong exp, so after
`torch.manual_seed(seed + 1)` every `alpha` / `beta` is re-drawn N(0, 0.3) (log scale). Saved as
the hub repos: `config.json` + `bigvgan_generator.pt` = `torch.save({"generator": state_dict})`
with weight norm (`weight_g`, `weight_v`). Loading (`load_reference`) is upstream's inference
path: build, `load_state_dict(strict=True)`, `remove_weight_norm()`, `eval()`.

`BigVGANReference` records taps with forward hooks (channels-last): `conv_pre`, `ups.{i}`,
`stage.{i}` (the input of the next stage / of activation_post: the AMP-block mean),
`activation_post`, `conv_post` (before the clamp / tanh), `audio` (B, N).
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from reference.checkpoints import seeded_checkpoint
from reference.hooks import channels_last, hook_taps

INIT = "snake-logs-n0-0.3-v1"


def versions() -> dict:
    from importlib.metadata import version

    return {"torch": torch.__version__, "bigvgan": version("bigvgan")}


def build_random(config: Mapping, seed: int = 0):
    from bigvgan.bigvgan import BigVGAN
    from bigvgan.env import AttrDict

    torch.manual_seed(seed)
    model = BigVGAN(AttrDict(dict(config)), use_cuda_kernel=False)
    torch.manual_seed(seed + 1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith((".alpha", ".beta")):
                p.normal_(0.0, 0.3)
    return model.eval()


def random_checkpoint(config: Mapping, seed: int = 0, cache: Path | None = None) -> Path:
    """Folder with config.json + bigvgan_generator.pt of `build_random` (cached, atomic)."""
    def write(folder: Path) -> None:
        model = build_random(config, seed)
        (folder / "config.json").write_text(json.dumps(dict(config), indent=2))
        torch.save({"generator": model.state_dict()}, folder / "bigvgan_generator.pt")

    return seeded_checkpoint("bigvgan", config, seed, {"init": INIT, **versions()},
                             ("bigvgan_generator.pt", "config.json"), write, cache)


def load_reference(model_dir: Path | str):
    from bigvgan.bigvgan import BigVGAN
    from bigvgan.env import AttrDict

    model_dir = Path(model_dir)
    h = AttrDict(json.loads((model_dir / "config.json").read_text()))
    model = BigVGAN(h, use_cuda_kernel=False)
    state = torch.load(model_dir / "bigvgan_generator.pt", map_location="cpu", weights_only=True)
    model.load_state_dict(state["generator"], strict=True)
    with contextlib.redirect_stdout(io.StringIO()):  # it prints "Removing weight norm..."
        model.remove_weight_norm()
    return model.eval()


def reference_mel(config: Mapping, audio: np.ndarray) -> np.ndarray:
    """`bigvgan.meldataset.mel_spectrogram` of audio (N,) -> (frames, num_mels) float32."""
    from bigvgan.meldataset import mel_spectrogram

    h = dict(config)
    with torch.no_grad(), contextlib.redirect_stdout(io.StringIO()):
        mel = mel_spectrogram(torch.from_numpy(np.asarray(audio, np.float32)[None]), h["n_fft"],
                              h["num_mels"], h["sampling_rate"], h["hop_size"], h["win_size"],
                              h["fmin"], h["fmax"])
    return mel[0].T.numpy().copy()


class BigVGANReference:
    """Callable: {"mel": (frames, num_mels)} -> taps (channels-last)."""

    def __init__(self, model_dir: Path | str):
        self.model = load_reference(model_dir)
        self.versions = versions()

    def tables(self, taps: Sequence[str]) -> tuple[dict, dict]:
        """`hook_taps` tables (outputs, inputs) for the tap names: a name is a `BigVGAN`
        submodule path, except `ups.{i}` (the output of the stage's upsampling list: its last
        module) and `stage.{i}` (the mean of the stage's AMP blocks, which no module returns:
        the input of the next stage's upsampling, or of `activation_post`)."""
        n, out, inp = len(self.model.ups), {}, {}
        for t in taps:
            kind, _, i = t.partition(".")
            if kind == "ups":
                out[f"ups.{i}.{len(self.model.ups[int(i)]) - 1}"] = (t, channels_last)
            elif kind == "stage":
                inp[f"ups.{int(i) + 1}.0" if int(i) + 1 < n else "activation_post"] = (
                    t, channels_last)
            else:
                out[t] = (t, channels_last)
        return out, inp

    @torch.no_grad()
    def __call__(self, inputs: Mapping[str, np.ndarray],
                 taps: Sequence[str] = ()) -> dict[str, np.ndarray]:
        """`taps`: the names to hook (`tables`); `audio` is always recorded."""
        out: dict[str, np.ndarray] = {}
        mel = torch.from_numpy(np.asarray(inputs["mel"], dtype=np.float32).T[None])
        hooked, pre = self.tables([t for t in taps if t not in ("mel", "audio")])
        with hook_taps(self.model, hooked, out, inputs=pre):
            y = self.model(mel)
        out["audio"] = y[:, 0].float().numpy().copy()
        return out
