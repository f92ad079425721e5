"""Reference adapter for Mimi: transformers 5.24.0 `MimiModel` (kyutai/mimi architecture).

Seeded random checkpoints (`random_checkpoint`): `MimiModel(MimiConfig(**config))` built after
`torch.manual_seed(seed)`. transformers zeroes every codebook (`embed_sum = 0`, `cluster_usage = 1`:
all codewords equal), and `torch.randn` codebooks are degenerate for a random encoder (see
reference/encodec.py: every frame picks one code). So, as for EnCodec, the codebooks are drawn
from the statistics of the model's own latents: after `torch.manual_seed(seed + 1)`,
`CODEBOOK_INIT_SECONDS` of Gaussian noise (std 0.1) go through the encoder (SEANet, encoder
transformer, downsampling); for each of the two RVQs (semantic: 1 stage, acoustic: the rest, each
fed the same latents through its own `input_proj`), stage q's codewords are Gaussian with the
per-dimension mean of the stage-q residual and `CODEBOOK_STD_SCALE` (0.25) times its std, and the
next stage sees what stage q leaves over. Full-std codewords (EnCodec's draw) make the residual
grow: in 256 dimensions a random codeword as spread as the residual is far from it, the nearest
of 2048 gains less than it adds (expected |r - e|^2 ~ d s^2 (1 + c^2) - 2 c s^2 sqrt(2 d ln 2048),
smallest near c = 0.25), and measured on the real configuration 32-stage latents decoded to
audio 10^4 times the input's amplitude (round trip -84 dB) with stages 2-32 each amplifying the
residual ~1.5x in energy. With c = 0.25 the residual shrinks at every stage. Mimi stores a codebook as `embed_sum` and `cluster_usage` (embed = embed_sum /
cluster_usage.clamp(min=1e-5)): `cluster_usage` is drawn uniform in [0.5, 2] and
`embed_sum = embed * cluster_usage`, so the division is exercised on both sides.
The model is written by `save_pretrained` (config.json + model.safetensors) into a cache
directory outside the repository, atomically, keyed by config, seed and package versions.

`MimiReference` runs encode (with `num_quantizers`) then decode and records the taps it is given
(the layers hooked through `hook_taps` at `upstream_path(name)`), in the MLX layout:
- `encoder.layers.{i}` (non-ELU SEANet layers), `encoder_transformer.layers.{i}`, `downsample`;
- `audio_codes` (B, K, F) int64; `quantizer.quantized` (B, F, hidden);
- `upsample`, `decoder_transformer.layers.{i}`, `decoder.layers.{i}`;
- `audio_values`: decoded audio cut to the input length, (B, N, channels).
`decode_streaming_transformer` runs the decoder with transformers' own `decoder_cache`
(a DynamicCache with the sliding window), one code frame per call, for the transformer
comparison: upstream's SEANet decoder has no streaming state (its convolutions re-pad every call),
so only its transformer output can be compared frame by frame.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from reference.checkpoints import seeded_checkpoint
from reference.hooks import channels_last, hook_taps, numpy_of

CODEBOOK_INIT_SECONDS = 4.0
CODEBOOK_STD_SCALE = 0.25  # codeword spread relative to the residual's (see above)
CODEBOOK_INIT = "residual-gaussian-usage-std0.25-v2"  # in the cache key: a new scheme, a new checkpoint


def versions() -> dict:
    import transformers

    return {"torch": torch.__version__, "transformers": transformers.__version__}


def _draw_codebooks(rvq, latents: torch.Tensor) -> None:
    """latents (B, hidden, F): fill rvq's codebooks from its residual statistics."""
    x = rvq.input_proj(latents) if rvq.input_proj is not None else latents
    residual = x[0].T  # (F, D)
    for layer in rvq.layers:
        cb = layer.codebook
        mean, std = residual.mean(0), residual.std(0)
        embed = mean + CODEBOOK_STD_SCALE * std * torch.randn(cb.embed_sum.shape)
        usage = 0.5 + 1.5 * torch.rand(cb.cluster_usage.shape)
        cb.cluster_usage.copy_(usage)
        cb.embed_sum.copy_(embed * usage[:, None])
        cb._embed = None  # drop the cached embed property
        residual = residual - cb.decode(cb.encode(residual))


def build_random(config: Mapping, seed: int = 0):
    """transformers MimiModel with seeded random weights and data-drawn codebooks."""
    from transformers import MimiConfig, MimiModel

    torch.manual_seed(seed)
    model = MimiModel(MimiConfig(**dict(config))).eval()
    cfg = model.config
    torch.manual_seed(seed + 1)
    n = int(CODEBOOK_INIT_SECONDS * cfg.sampling_rate)
    with torch.no_grad():
        noise = 0.1 * torch.randn(1, cfg.audio_channels, n)
        out = model.encoder(noise)
        # transformers 5.24 (pinned here) returns an output with .latents; 5.17 (the lent GPU
        # machine's) the tensor itself
        latents = getattr(out, "latents", out)  # (1, hidden, F)
        _draw_codebooks(model.quantizer.semantic_residual_vector_quantizer, latents)
        _draw_codebooks(model.quantizer.acoustic_residual_vector_quantizer, latents)
    return model


def random_checkpoint(config: Mapping, seed: int = 0, cache: Path | None = None) -> Path:
    """Directory holding `save_pretrained` output of `build_random(config, seed)` (cached)."""
    return seeded_checkpoint("mimi", config, seed, {"codebook_init": CODEBOOK_INIT, **versions()},
                             ("model.safetensors", "config.json"),
                             lambda folder: build_random(config, seed).save_pretrained(folder),
                             cache)


# taps recorded here rather than hooked (not module outputs of the same name)
RECORDED = ("audio_codes", "quantizer.quantized", "audio_values")

# tap-name prefix -> `MimiModel` submodule path prefix (the tap names are the MLX modules')
_PATHS = {"encoder.layers.": "encoder.encoder_seanet.layers.",
          "encoder_transformer.": "encoder.encoder_transformer.",
          "downsample": "encoder.downsample", "upsample": "decoder.upsample",
          "decoder_transformer.": "decoder.decoder_transformer.",
          "decoder.layers.": "decoder.decoder_seanet.layers."}


def upstream_path(name: str) -> str:
    """The `MimiModel` submodule whose output is tap `name` (transformer layers return
    (hidden, ...) channels-last; the convs (B, C, T))."""
    for prefix, path in _PATHS.items():
        if name.startswith(prefix):
            return path + name[len(prefix):]
    raise KeyError(f"tap {name!r} has no MimiModel module; known prefixes {sorted(_PATHS)}")


class MimiReference:
    """Callable: {"audio": (N,) float32, "num_quantizers": () int} -> taps (MLX layout)."""

    def __init__(self, model_dir: Path | str):
        from transformers import MimiModel

        self.model = MimiModel.from_pretrained(str(model_dir)).float().eval()
        self.config = self.model.config.to_dict()
        self.versions = versions()

    @torch.no_grad()
    def __call__(self, inputs: Mapping[str, np.ndarray],
                 taps: Sequence[str] = ()) -> dict[str, np.ndarray]:
        """`taps`: names to record beyond `RECORDED`, hooked at `upstream_path(name)`."""
        audio = np.asarray(inputs["audio"], dtype=np.float32)
        if audio.ndim == 1:
            audio = audio[:, None]
        x = torch.from_numpy(np.ascontiguousarray(audio.T[None]))  # (1, C, N)
        n_q = int(np.asarray(inputs["num_quantizers"]).reshape(-1)[0])
        out: dict[str, np.ndarray] = {}
        hooked = {upstream_path(t): (t, numpy_of if "transformer." in t else channels_last)
                  for t in taps if t not in RECORDED}
        q = self.model.quantizer
        orig_decode = q.decode

        def decode(codes):
            latents = orig_decode(codes)
            out["quantizer.quantized"] = channels_last(latents)
            return latents

        q.decode = decode  # instance attribute, removed in `finally`
        try:
            with hook_taps(self.model, hooked, out):
                codes = self.model.encode(x, num_quantizers=n_q).audio_codes  # (B, K, F)
                out["audio_codes"] = codes.numpy().copy()  # after the encoder's taps, in order
                y = self.model.decode(codes).audio_values
        finally:
            del q.decode
        out["audio_values"] = y[..., : x.shape[-1]].transpose(1, 2).numpy().copy()
        return out

    @torch.no_grad()
    def decode(self, codes: np.ndarray) -> np.ndarray:
        """codes (B, K, F) -> audio (B, F * frame_size, channels), one-shot."""
        out = self.model.decode(torch.from_numpy(np.asarray(codes, dtype=np.int64))).audio_values
        return out.transpose(1, 2).numpy().copy()

    @torch.no_grad()
    def decode_streaming_transformer(self, codes: np.ndarray) -> np.ndarray:
        """Decoder-transformer output (B, 2F, hidden), one code frame per call with upstream's
        `decoder_cache`; the upsampling conv is run once on all frames (it has no streaming
        state upstream either, and its output for frame f depends on frame f - 1)."""
        from transformers import DynamicCache

        dec = self.model.decoder
        codes_t = torch.from_numpy(np.asarray(codes, dtype=np.int64))
        up = dec.upsample(self.model.quantizer.decode(codes_t)).transpose(1, 2)  # (B, 2F, C)
        stride = dec.upsample.conv.stride[0]
        cache = DynamicCache(config=dec.config)
        outs = []
        for f in range(codes_t.shape[-1]):
            step = up[:, f * stride:(f + 1) * stride]
            res = dec.decoder_transformer(step, cache=cache, use_cache=True)
            cache = res.cache
            outs.append(res.last_hidden_state)
        return torch.cat(outs, dim=1).numpy().copy()
