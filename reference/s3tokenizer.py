"""Reference adapter for the S3 speech tokenizer: the `s3tokenizer` package 0.3.0 (CosyVoice).

Models: `s3tokenizer.model.S3Tokenizer` (v1: `speech_tokenizer_v1`) and
`s3tokenizer.model_v2.S3TokenizerV2` (`speech_tokenizer_v2_25hz`), built from a config dict of
the package's `ModelConfig` fields plus `name` (see mlx_impl/s3tokenizer/config.py).

Seeded random checkpoints (`random_checkpoint`): the model built after `torch.manual_seed(seed)`
(the package's own init: torch defaults, LayerNorm ones/zeros), saved with
`torch.save(model.state_dict())` as `model.pt`, the file the package's `init_from_pt` loads with
`load_state_dict(strict=True)`, next to a `config.json` (our addition: upstream derives the
configuration from the model name). The hub ships `.onnx` files that `load_model` converts with
`onnx2torch` into this same state dict; we write the state dict directly.
Documented re-initialisation, v1 only: upstream's codebook buffer starts at zeros (every
distance equal: all frames get code 0). After `torch.manual_seed(seed + 1)`,
`CODEBOOK_INIT_SECONDS` of Gaussian noise (std 0.1) go through the front end and the encoder;
the 4096 codewords are Gaussian with the per-dimension mean and std of those L2-normalised
frames, then L2-normalised themselves (upstream normalises the frames, so unit codewords make the
distance a cosine). Measured, real config: 143 distinct codes in the 323 frames of the fox
fixture (smallest best-minus-second distance gap 8.2e-6, float64), 192 in the 550 of the JFK
clip (gap 7.3e-7). In a trial draw, un-normalised Gaussian codewords had a gap of 6.0e-8 on
fox, within float32 rounding of a tie, which is why the codewords are normalised.
v2 needs none: its random `project_down` already
gives unit-std projections (143 distinct codes in 162 frames of the fox clip).

`S3Reference` computes `s3tokenizer.log_mel_spectrogram` and runs `model.quantize` (upstream's
entry point, with its > 30 s window path), recording taps with hooks removed after each call,
channels-last:
- `mel` (n_frames, n_mels); `encoder.conv1` / `encoder.conv2` conv outputs before GELU (B, T, C);
- `encoder.embed`: input of blocks[0]; `encoder.blocks.{i}.attn` (attention output incl. the v2
  FSMN memory, before the residual add), `.mlp`, and the block output;
- v1 `quantizer.normalized`: the frames the codebook sees (F.normalize output, captured by
  wrapping `_codebook.encode` for the call); v2 `quantizer.project_down` (B, T, 8);
- `quantizer.codes` (B, T') int64.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from reference.checkpoints import seeded_checkpoint
from reference.hooks import channels_last, hook_taps, numpy_of

CODEBOOK_INIT_SECONDS = 4.0
CODEBOOK_INIT = "normalised-gaussian-v1"  # in the cache key: a new scheme, a new checkpoint
CONFIG_FIELDS = ("n_mels", "n_audio_ctx", "n_audio_state", "n_audio_head", "n_audio_layer",
                 "n_codebook_size")


def versions() -> dict:
    from importlib.metadata import version

    return {"torch": torch.__version__, "s3tokenizer": version("s3tokenizer")}


def build_model(config: Mapping):
    """The package's model for `config` (name + ModelConfig fields), float32, eval."""
    from s3tokenizer.model import ModelConfig as ConfigV1
    from s3tokenizer.model import S3Tokenizer
    from s3tokenizer.model_v2 import ModelConfig as ConfigV2
    from s3tokenizer.model_v2 import S3TokenizerV2

    name = config["name"]
    fields = {k: int(config[k]) for k in CONFIG_FIELDS}
    if "v2" in name:
        return S3TokenizerV2(name, ConfigV2(**fields)).float().eval()
    return S3Tokenizer(name, ConfigV1(**fields)).float().eval()


@torch.no_grad()
def build_random(config: Mapping, seed: int = 0):
    """Seeded random model; v1 codebook drawn from the encoder's normalised outputs on noise."""
    import s3tokenizer

    torch.manual_seed(seed)
    model = build_model(config)
    if "v2" not in config["name"]:
        torch.manual_seed(seed + 1)
        noise = 0.1 * torch.randn(int(CODEBOOK_INIT_SECONDS * 16000))
        mel = s3tokenizer.log_mel_spectrogram(noise, n_mels=int(config["n_mels"]))
        hidden, _ = model.encoder(mel[None], torch.tensor([mel.shape[1]]))
        x = torch.nn.functional.normalize(hidden[0].float(), dim=-1)
        embed = model.quantizer._codebook.embed
        draw = x.mean(0) + x.std(0) * torch.randn(embed.shape)
        embed.copy_(torch.nn.functional.normalize(draw, dim=-1))
    return model


def random_checkpoint(config: Mapping, seed: int = 0, cache: Path | None = None) -> Path:
    """Folder with `model.pt` (state dict for `init_from_pt`) + `config.json` (cached)."""
    def write(folder: Path) -> None:
        torch.save(build_random(config, seed).state_dict(), folder / "model.pt")
        (folder / "config.json").write_text(json.dumps(dict(config), indent=1))

    return seeded_checkpoint("s3tokenizer", config, seed,
                             {"codebook_init": CODEBOOK_INIT, **versions()},
                             ("model.pt", "config.json"), write, cache,
                             prefix=f"{config['name']}-")


def load(folder: Path | str):
    """The package's model for a `random_checkpoint` folder, through its own `init_from_pt`."""
    folder = Path(folder)
    config = json.loads((folder / "config.json").read_text())
    model = build_model(config)
    model.init_from_pt(str(folder / "model.pt"))
    return model.float().eval(), config


# taps recorded here rather than hooked (not module outputs of the same name)
RECORDED = ("mel", "quantizer.normalized", "quantizer.codes")


def _rows(out: torch.Tensor) -> np.ndarray:
    """project_down's output: its input is flattened to (B * T, C) upstream; B = 1 here."""
    return out.detach().float().reshape(1, -1, out.shape[-1]).numpy().copy()


def tables(taps: Sequence[str]) -> tuple[dict, dict]:
    """`hook_taps` tables (outputs, inputs) for tap names: the encoder's are `S3Tokenizer`
    submodule paths (convs channels-last), except `encoder.embed` (the input of the first block:
    the sum with the positions, which no module returns) and `quantizer.project_down`
    (`quantizer._codebook.project_down`)."""
    out, inp = {}, {}
    for t in taps:
        if t == "encoder.embed":
            inp["encoder.blocks.0"] = (t, numpy_of)
        elif t == "quantizer.project_down":
            out["quantizer._codebook.project_down"] = (t, _rows)
        else:
            out[t] = (t, channels_last if t in ("encoder.conv1", "encoder.conv2") else numpy_of)
    return out, inp


class S3Reference:
    """Callable: {"audio": (N,) float32 16 kHz} -> taps (numpy, MLX layout)."""

    def __init__(self, folder: Path | str):
        self.model, self.config = load(folder)
        self.versions = versions()

    def mel(self, audio: np.ndarray) -> torch.Tensor:  # (n_mels, n_frames)
        import s3tokenizer

        return s3tokenizer.log_mel_spectrogram(torch.from_numpy(np.asarray(audio, np.float32)),
                                               n_mels=int(self.config["n_mels"]))

    @torch.inference_mode()
    def tokenize(self, audio: np.ndarray) -> np.ndarray:
        """Upstream's codes for one clip (any length: > 30 s takes its window path)."""
        mel = self.mel(audio)
        codes, n = self.model.quantize(mel[None], torch.tensor([mel.shape[1]]))
        return codes[0, : int(n[0])].numpy().astype(np.int64)

    @torch.inference_mode()
    def __call__(self, inputs: Mapping[str, np.ndarray],
                 taps: Sequence[str] = ()) -> dict[str, np.ndarray]:
        """`taps`: names to hook beyond `RECORDED` (`tables`)."""
        mel = self.mel(inputs["audio"])
        if mel.shape[1] > 3000:
            raise ValueError("taps are recorded for inputs up to 30 s; use tokenize() beyond")
        out: dict[str, np.ndarray] = {"mel": mel.T.numpy().copy()}
        hooked, pre = tables([t for t in taps if t not in RECORDED])
        cb = self.model.quantizer._codebook
        v1 = "v2" not in self.config["name"]
        if v1:
            orig = cb.encode

            def encode(x):
                out["quantizer.normalized"] = x.detach().float().numpy().copy()
                return orig(x)
            cb.encode = encode  # instance attribute, removed in `finally`
        try:
            with hook_taps(self.model, hooked, out, inputs=pre):
                codes, n = self.model.quantize(mel[None], torch.tensor([mel.shape[1]]))
        finally:
            if v1:
                del cb.encode
        out["quantizer.codes"] = codes[:, : int(n[0])].numpy().astype(np.int64)
        return out
