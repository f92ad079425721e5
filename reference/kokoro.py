"""Reference adapter for Kokoro-82M: the `kokoro` package 0.9.4 (hexgrad), `KModel`.

Upstream: kokoro 0.9.4 (PyPI), torch 2.13.0, transformers 5.24.0 (`AlbertModel`), CPU, float32.
kokoro is not in .venv: `scripts/setup_kokoro_refs.sh` (`make kokoro-refs`) installs it with
`--no-deps` into `<cache>/refs/kokoro` (or $KOKORO_REFS), which `kokoro_modules` puts on
sys.path for this adapter only. Only `kokoro.model` / `modules` / `istftnet` are imported: the
package's `__init__` imports its pipeline, whose misaki G2P needs spaCy and a downloaded spaCy
model, so the package is registered without running `__init__` (the G2P is not used: inputs are
phoneme strings mapped through the model's vocabulary). HF_HUB_OFFLINE=1 is set before the
import, and `KModel` always gets its config dict and model path, so it never downloads.

Weights: no checkpoint is downloaded. `random_checkpoint(config, seed)` builds
`KModel(config=..., model=<empty>)` after `torch.manual_seed(seed)` (upstream's initialisation),
then re-draws from a generator seeded `seed + 1` what upstream leaves at constants that would
hide a swapped or ignored parameter: every LayerNorm / InstanceNorm affine weight N(1, 0.1^2)
and bias N(0, 0.1^2), the Snake alphas of the iSTFTNet ResBlocks exp(N(0, 0.3^2)), and two
biases that put the random model in a speech-like operating range (upstream's random init gives
~25 frames per phoneme and F0 near 0 Hz, i.e. every frame unvoiced so the sine source is never
exercised): `predictor.duration_proj` bias N(log(3 / (max_dur - 3)), 0.3^2) (~3 frames per phoneme) and
`predictor.F0_proj` bias 120 + N(0, 5^2) Hz (voiced frames). It is saved as kokoro's own
`.pth` is (with two seeded random voice packs, `voices/{VOICES}.pt`, each a (510, 1, 256)
style tensor as kokoro's voice files, N(0, 0.3^2) from a generator seeded `seed + 2`):
`torch.save({"bert": sd, "bert_encoder": sd, "predictor": sd, "text_encoder": sd,
"decoder": sd})` (weight norm as `weight_g` / `weight_v`), next to `config.json`, atomically in
a cache folder (`reference.checkpoints.seeded_checkpoint`); `KModel(config, model=path)` reads it.

Randomness: the sine source draws `torch.rand(B, 9)` (initial phases of the harmonics; upstream
zeroes the fundamental's), `torch.randn_like(sine_waves)` (B, N, 9) (additive noise) and
`torch.randn_like(uv)` (the noise branch, which the generator never uses). `fed_source_noise`
replaces those three calls for the duration of one forward: `phases` (B, 9) from the inputs,
the additive noise from `noise(shape)` (the spec's seeded numpy draw, made once the length N,
which depends on the predicted durations, is known), zeros for the unused branch; a shape
mismatch or an unused draw is an error.

Phase: the generator's `TorchSTFT.transform` returns `torch.angle` of the harmonic source's
STFT, which is rounding noise at two kinds of bins: those of rounding-level magnitude (0 or pi by
the sign of a ~1e-6 real part) and those on the negative real axis (+pi or -pi by the sign of
the imaginary residue; the first frame is symmetric under the centre reflect padding, and
torch's CPU FFT gives each sign about half the time). `canonical_phase` patches `transform` for
the call to give 0 at bins <= 1e-4 of the frame's largest magnitude and +pi at bins within 1e-4
rad of the negative real axis, the rule the port applies (mlx_impl/kokoro/model.py says why).
Everything else is upstream's.

Taps (MLX layout, channels last), in execution order; see `tap_table` for the module paths.
"""

from __future__ import annotations

import importlib
import json
import math
import types
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from reference.checkpoints import seeded_checkpoint
from reference.hooks import channels_last, hook_taps, numpy_of
from reference.isolated import IsolatedPackage

INIT = "kokoro-init-v2"  # bump when the re-draws below change (part of the cache key)
VERSION = "0.9.4"
PARTS = ("bert", "bert_encoder", "predictor", "text_encoder", "decoder")


KOKORO = IsolatedPackage("kokoro", "kokoro", "kokoro", VERSION, "KOKORO_REFS")


def refs_installed() -> bool:
    return KOKORO.installed()


def kokoro_modules() -> types.SimpleNamespace:
    """kokoro's model modules, imported from the isolated folder without the package __init__."""
    KOKORO.activate()
    return types.SimpleNamespace(model=importlib.import_module("kokoro.model"),
                                 istftnet=importlib.import_module("kokoro.istftnet"))


def versions() -> dict:
    import transformers

    return {"torch": torch.__version__, "transformers": transformers.__version__,
            "kokoro": VERSION}


def build_random(config: Mapping, seed: int = 0):
    """`KModel` of `config` with upstream's seeded init plus the re-draws of the docstring."""
    mods = kokoro_modules()
    torch.manual_seed(seed)
    model = _kmodel(mods, config, None)
    g = torch.Generator().manual_seed(seed + 1)
    ist = mods.istftnet
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, (torch.nn.LayerNorm, torch.nn.InstanceNorm1d)) and mod.weight is not None:
                mod.weight.copy_(1 + 0.1 * torch.randn(mod.weight.shape, generator=g))
                mod.bias.copy_(0.1 * torch.randn(mod.bias.shape, generator=g))
            elif type(mod).__name__ == "LayerNorm" and hasattr(mod, "gamma"):  # kokoro's own
                mod.gamma.copy_(1 + 0.1 * torch.randn(mod.gamma.shape, generator=g))
                mod.beta.copy_(0.1 * torch.randn(mod.beta.shape, generator=g))
            elif isinstance(mod, ist.AdaINResBlock1):
                for a in (*mod.alpha1, *mod.alpha2):
                    a.copy_(torch.exp(0.3 * torch.randn(a.shape, generator=g)))
        p = model.predictor
        b = p.duration_proj.linear_layer.bias
        target = math.log(3 / (config["max_dur"] - 3))  # sigmoid sum ~3 frames per phoneme
        b.copy_(target + 0.3 * torch.randn(b.shape, generator=g))
        p.F0_proj.bias.copy_(120 + 5 * torch.randn(p.F0_proj.bias.shape, generator=g))
    return model.eval()


def _kmodel(mods, config: Mapping, model_path: Path | None):
    """`KModel(repo_id, config=dict, model=path)`; with no path, an empty state dict file is
    not needed: the constructor's load loop is skipped by passing a temporary empty dict."""
    if model_path is None:
        import tempfile

        with tempfile.TemporaryDirectory() as d:
            empty = Path(d) / "empty.pth"
            torch.save({}, empty)
            return mods.model.KModel(repo_id="hexgrad/Kokoro-82M", config=dict(config),
                                     model=str(empty))
    return mods.model.KModel(repo_id="hexgrad/Kokoro-82M", config=dict(config),
                             model=str(model_path))


def save_pth(model, path: Path) -> None:
    torch.save({k: getattr(model, k).state_dict() for k in PARTS}, path)


VOICES = ("af_seeded", "am_seeded")
VOICE_SHAPE = (510, 1, 256)


def random_checkpoint(config: Mapping, seed: int = 0, cache: Path | None = None) -> Path:
    """Folder with config.json + kokoro.pth of `build_random(config, seed)` and the seeded
    voices (cached)."""
    def write(folder: Path) -> None:
        save_pth(build_random(config, seed), folder / "kokoro.pth")
        (folder / "voices").mkdir()
        g = torch.Generator().manual_seed(seed + 2)
        for name in VOICES:
            torch.save(0.3 * torch.randn(VOICE_SHAPE, generator=g), folder / "voices" / f"{name}.pt")
        (folder / "config.json").write_text(json.dumps(dict(config), indent=2,
                                                       ensure_ascii=False))

    return seeded_checkpoint("kokoro", config, seed, {"init": INIT, **versions()},
                             ("kokoro.pth", "config.json"), write, cache)


build_model = random_checkpoint  # the TTS builder's name (parity/tts_models.py)


@contextmanager
def fed_source_noise(phases: np.ndarray, noise):
    """Within the block, the sine source's `torch.rand(B, dim)` returns `phases` and its first
    `torch.randn_like` returns `noise(shape)` (B, N, dim); the second `randn_like` (the unused
    noise branch) returns zeros. Shape mismatches and unused draws are errors."""
    queue = {"rand": [torch.from_numpy(np.ascontiguousarray(phases, np.float32))],
             "randn_like": [lambda shape: torch.from_numpy(
                 np.ascontiguousarray(noise(shape), np.float32)), None]}
    rand, randn_like = torch.rand, torch.randn_like

    def take(kind: str, shape) -> torch.Tensor | None:
        if not queue[kind]:
            raise RuntimeError(f"torch.{kind}{tuple(shape)} called but no array is left")
        return queue[kind].pop(0)

    def fake_rand(*size, **kwargs):
        shape = tuple(size[0]) if len(size) == 1 and isinstance(size[0], (tuple, list)) else size
        t = take("rand", shape)
        if tuple(t.shape) != tuple(shape):
            raise RuntimeError(f"torch.rand asked for {shape}, the phases are {tuple(t.shape)}")
        return t.clone()

    def fake_randn_like(x, **kwargs):
        draw = take("randn_like", x.shape)
        if draw is None:
            return torch.zeros_like(x)
        t = draw(tuple(x.shape))
        if tuple(t.shape) != tuple(x.shape):
            raise RuntimeError(f"torch.randn_like asked for {tuple(x.shape)}, the source noise "
                               f"is {tuple(t.shape)}")
        return t.clone()

    torch.rand, torch.randn_like = fake_rand, fake_randn_like
    try:
        yield
    finally:
        torch.rand, torch.randn_like = rand, randn_like
    left = [k for k, v in queue.items() if v]
    if left:
        raise RuntimeError(f"arrays for {left} were not used by the sine source")


TINY_BIN, REAL_BIN = 1e-4, 1e-4


@contextmanager
def canonical_phase(stft_module):
    """Within the block, `stft_module.transform(x)` returns upstream's (magnitude, phase) with
    the phase set to 0 at rounding-level bins and +pi on the negative real axis (see the module
    docstring)."""
    original = stft_module.transform

    def transform(x):
        spec = torch.stft(x, stft_module.filter_length, stft_module.hop_length,
                          stft_module.win_length, window=stft_module.window.to(x.device),
                          return_complex=True)  # (B, freqs, frames), as upstream's
        mag, phase = original(x)
        tiny = mag <= TINY_BIN * mag.amax(dim=-2, keepdim=True)
        real_neg = (spec.imag.abs() <= REAL_BIN * mag) & (spec.real < 0)
        phase = torch.where(real_neg, torch.full_like(phase, math.pi), phase)
        return mag, torch.where(tiny, torch.zeros_like(phase), phase)

    stft_module.transform = transform
    try:
        yield
    finally:
        del stft_module.transform


def tap_table(config: Mapping) -> dict:
    """{module path: (tap name, converter)} of the hooked taps (MLX layout)."""
    n_layer = config["n_layer"]
    n_ups = len(config["istftnet"]["upsample_rates"])
    n_kernels = len(config["istftnet"]["resblock_kernel_sizes"])
    t = {"bert": ("bert", numpy_of), "bert_encoder": ("bert_encoder", numpy_of),
         "predictor.text_encoder": ("predictor.text_encoder", numpy_of),
         "predictor.lstm": ("predictor.lstm", numpy_of),
         "predictor.duration_proj": ("predictor.duration_proj", numpy_of),
         "predictor.shared": ("predictor.shared", numpy_of)}
    for name in ("F0", "N"):
        for i in range(3):
            t[f"predictor.{name}.{i}"] = (f"predictor.{name}.{i}", channels_last)
        t[f"predictor.{name}_proj"] = (f"predictor.{name}_proj", channels_last)
    for i in range(n_layer):
        t[f"text_encoder.cnn.{i}"] = (f"text_encoder.cnn.{i}", channels_last)
    t["text_encoder"] = ("text_encoder", channels_last)
    t["decoder.F0_conv"] = ("decoder.F0_conv", channels_last)
    t["decoder.N_conv"] = ("decoder.N_conv", channels_last)
    t["decoder.encode"] = ("decoder.encode", channels_last)
    t["decoder.asr_res"] = ("decoder.asr_res", channels_last)
    for i in range(4):
        t[f"decoder.decode.{i}"] = (f"decoder.decode.{i}", channels_last)
    g = "decoder.generator"
    t[f"{g}.m_source"] = (f"{g}.m_source", numpy_of)  # (B, N, 1)
    for i in range(n_ups):
        t[f"{g}.noise_convs.{i}"] = (f"{g}.noise_convs.{i}", channels_last)
        t[f"{g}.noise_res.{i}"] = (f"{g}.noise_res.{i}", channels_last)
        t[f"{g}.ups.{i}"] = (f"{g}.ups.{i}", channels_last)
        for j in range(n_kernels):
            k = i * n_kernels + j
            t[f"{g}.resblocks.{k}"] = (f"{g}.resblocks.{k}", channels_last)
    t[f"{g}.conv_post"] = (f"{g}.conv_post", channels_last)
    return t


class KokoroReference:
    """Callable: ({"input_ids": (1, T) int, "ref_s": (1, 256), "phases": (1, 9), "speed": ()},
    noise(shape) -> (1, N, 9) float32) -> taps (MLX layout)."""

    def __init__(self, model_dir: Path | str):
        model_dir = Path(model_dir)
        self.config = json.loads((model_dir / "config.json").read_text())
        self.model = _kmodel(kokoro_modules(), self.config, model_dir / "kokoro.pth").eval()
        self._check_loaded(model_dir / "kokoro.pth")
        self.versions = versions()

    def _check_loaded(self, path: Path) -> None:
        """KModel falls back to `load_state_dict(strict=False)` on a failed strict load and
        logs nothing (its logger is disabled): check every tensor arrived."""
        saved = torch.load(path, map_location="cpu", weights_only=True)
        for part in PARTS:
            have = getattr(self.model, part).state_dict()
            want = {k.removeprefix("module."): v for k, v in saved[part].items()}
            if set(have) != set(want) or any(not torch.equal(have[k], want[k]) for k in have):
                raise RuntimeError(f"{path}: KModel.{part} did not load every tensor strictly")

    @torch.no_grad()
    def __call__(self, inputs: Mapping[str, np.ndarray], noise,
                 taps: Sequence[str] = ()) -> dict[str, np.ndarray]:
        m = self.model
        ids = torch.from_numpy(np.asarray(inputs["input_ids"], np.int64))
        ref_s = torch.from_numpy(np.asarray(inputs["ref_s"], np.float32))
        speed = float(np.asarray(inputs.get("speed", 1.0)).reshape(-1)[0])
        out: dict[str, np.ndarray] = {}
        # duration_proj is always hooked: `duration` is computed from its output
        table = {p: e for p, e in tap_table(self.config).items()
                 if e[0] in {*taps, "predictor.duration_proj"}}
        # `duration` before rounding and the alignment are locals of forward_with_tokens:
        # recorded from the sigmoid sum (a hook on duration_proj gives its logits) and the
        # F0Ntrain input
        f0n = m.predictor.F0Ntrain

        def F0Ntrain(en, s):
            out["en"] = channels_last(en)
            f0, n = f0n(en, s)
            out["F0_pred"], out["N_pred"] = f0.numpy().copy(), n.numpy().copy()
            return f0, n

        m.predictor.F0Ntrain = F0Ntrain
        try:
            with hook_taps(m, table, out), fed_source_noise(inputs["phases"], noise), \
                    canonical_phase(m.decoder.generator.stft):
                audio, pred_dur = m.forward_with_tokens(ids, ref_s, speed)
        finally:
            del m.predictor.F0Ntrain
        logits = torch.from_numpy(out["predictor.duration_proj"])
        out["duration"] = (torch.sigmoid(logits).sum(axis=-1) / speed).numpy().copy()
        out["pred_dur"] = pred_dur.reshape(1, -1).numpy().astype(np.int64)
        out["audio"] = audio.reshape(1, -1).numpy().copy()
        return out
