"""Reference adapter for EnCodec: transformers 5.24.0 `EncodecModel` (no torchaudio needed).

Seeded random checkpoints (`random_checkpoint`): `EncodecModel(EncodecConfig(**config))` built
after `torch.manual_seed(seed)`. transformers initialises the codebooks to zeros (its
`_init_weights` zeroes `embed`): every codeword equal, code agreement meaningless. Plain
`torch.randn` codebooks are degenerate too (measured: with N(0, 1) codewords and the random
encoder's outputs of RMS ~0.05, every frame of every stage picked one same code). So the codebooks
are re-drawn from the statistics of the encoder's own output: after `torch.manual_seed(seed + 1)`,
`CODEBOOK_INIT_SECONDS` of Gaussian noise (std 0.1) go through the encoder; stage q's codewords
are Gaussian with the per-dimension mean and std of the stage-q residual of that encoding, and
the residual for stage q + 1 is what stage q leaves over. (Picking residual frames as codewords,
upstream's k-means start, was tried first: with 1024 codewords for 300 frames every stage nearly
zeroes the residual and stages 13-32 all collapsed to one code.) `embed_avg` is set to
`embed`, `cluster_size` to ones (training statistics, unused at inference).

Normalised convolutions (weight-normed configs only, before the codebooks are drawn): with
transformers' init (Kaiming-normal convs, ELU between them) every ELU turns part of the
time-varying signal into a per-channel constant, and nothing removes it: on encodec-24khz the
time-varying part of the encoder output was 2.3 % of its RMS on the fox clip (encodec-test-tiny
1.4 %), so every code decision was made on a near-constant latent (near ties) and the decoded
audio was essentially a DC offset (time-varying part 9.5 % of its RMS; test-tiny 24 %). So, as
weight normalisation's data-dependent initialisation does (Salimans & Kingma 2016), each
convolution of the encoder, in execution order, gets its weight and bias rescaled so that its
output on the calibration noise has zero mean and unit std per channel; then each convolution
of the decoder likewise, fed the normalised encoder's output of that noise, its last one to the
noise's std (`normalise_convs`). Shifting the biases alone (zero mean) was tried first: the
latent then varied (0.84-1.0) but the decoded audio's std fell to 0.3 % of the input's.
Group-normed configs (`time_group_norm`: the 48 kHz structure) normalise every conv output
already and are left as they were. Measured after (2026-12-05, fox): the latent's time-varying
part 0.85 of its RMS (encodec-24khz) and 0.84 (test-tiny); the decoded audio's >= 0.99, its
std 0.75-1.2x the input's; encodec-24khz 44-63 codes per stage over 75 frames (was 34-55).

Codeword spread (those configs): codewords drawn with the residual's full std move the residual
away at every stage (|r - c|^2 ~ |r|^2 + |c|^2 - 2 max r.c grows): with the normalised encoder,
encodec-24khz's 32-stage sum reached RMS 130 against a latent of RMS 1.1. Drawn with std x
sqrt(2 ln N / D) (N codewords of D dims: the scale that minimises the expected |r - c|^2 of the
best of N Gaussian codewords, 0.33 for 1024 x 128), each stage shrinks the residual a little.
The model is then written by `save_pretrained` (config.json + model.safetensors; transformers 5
stores weight norm as `parametrizations.weight.original0/1`) into a cache directory outside the
repository, atomically (temporary directory + os.replace), keyed by config, seed and package
versions. Both sides read that directory: this adapter with `EncodecModel.from_pretrained`, the
MLX side through `weights.encodec.load` + `mlx_impl.encodec.convert`.

`EncodecReference` runs encode (at a bandwidth) then decode, and records taps with forward hooks
removed after every call, converted to the MLX layout (channels-last):
- `encoder.layers.{i}` / `decoder.layers.{i}`: every non-ELU layer, (B, C, T) -> (B, T, C);
- `quantizer.codes`: (n_q, B, frames) int64 (upstream `quantizer.encode`);
- `quantizer.quantized`: `quantizer.decode(codes)` (B, D, F) -> (B, F, D);
- `audio_codes`: chunked models, every chunk's codes (n_chunks, B, n_q, frames), the last
  zero-padded (upstream `audio_codes`); `audio_scales`: normalising models, (n_chunks, B);
- `audio_values`: decoded audio cut to the input length, (B, N, channels).
Chunked models (48 kHz): the layer taps and `quantizer.*` hold the FIRST chunk (hooks keep the
first call); all chunks are in `audio_codes` / `audio_scales` and the overlap-added `audio_values`.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from reference.checkpoints import seeded_checkpoint
from reference.hooks import channels_last, hook_taps

CODEBOOK_INIT_SECONDS = 4.0  # noise encoded to draw the codebooks from
CODEBOOK_INIT = "residual-gaussian-v1"  # in the cache key: a new scheme, a new checkpoint
CONV_INIT = "data-dependent-v2"  # weight-normed configs: convs normalised on the calibration noise


def versions() -> dict:
    import transformers

    return {"torch": torch.__version__, "transformers": transformers.__version__}


def build_random(config: Mapping, seed: int = 0):
    """transformers EncodecModel with seeded random weights and data-initialised codebooks."""
    from transformers import EncodecConfig, EncodecModel

    torch.manual_seed(seed)
    model = EncodecModel(EncodecConfig(**dict(config))).eval()
    cfg = model.config
    torch.manual_seed(seed + 1)
    n = int(CODEBOOK_INIT_SECONDS * cfg.sampling_rate)
    with torch.no_grad():
        noise = 0.1 * torch.randn(1, cfg.audio_channels, n)
        spread = 1.0
        if cfg.norm_type == "weight_norm":
            normalise_convs(model.encoder, noise)
            normalise_convs(model.decoder, model.encoder(noise), last_std=float(noise.std()))
            spread = (2 * math.log(cfg.codebook_size) / cfg.codebook_dim) ** 0.5
        residual = model.encoder(noise)[0].T  # (frames, D)
        for layer in model.quantizer.layers:
            cb = layer.codebook
            mean, std = residual.mean(0), residual.std(0)
            cb.embed.copy_(mean + spread * std * torch.randn(cb.embed.shape))
            cb.embed_avg.copy_(cb.embed)
            cb.cluster_size.fill_(1.0)
            residual = residual - cb.decode(cb.encode(residual))
    return model


def normalise_convs(stack: torch.nn.Module, x: torch.Tensor, last_std: float | None = None) -> None:
    """Weight normalisation's data-dependent init over `stack` (encoder or decoder): every
    convolution, in execution order (each after the earlier ones), gets its bias and weight
    rescaled so that its output on `x` has zero mean and unit std per channel; the last one
    std `last_std` instead, when given."""
    from transformers.models.encodec.modeling_encodec import (EncodecConv1d,
                                                              EncodecConvTranspose1d)

    convs = [m for m in stack.modules() if isinstance(m, (EncodecConv1d, EncodecConvTranspose1d))]
    for i, conv in enumerate(convs):
        got: list[torch.Tensor] = []
        hook = conv.register_forward_hook(lambda _m, _i, out: got.append(out))
        try:
            stack(x)
        finally:
            hook.remove()
        out = got[0]  # (B, C_out, T)
        std = out.std(dim=(0, 2))
        if i == len(convs) - 1 and last_std is not None:
            std = std / last_std
        out_dim = 1 if isinstance(conv, EncodecConvTranspose1d) else 0  # (in, out, k) / (out, in, k)
        shape = [1, 1, 1]
        shape[out_dim] = -1
        w = conv.conv.weight.detach().clone()  # weight norm: assigning sets g and v
        conv.conv.weight = w / std.view(shape)
        conv.conv.bias.copy_((conv.conv.bias - out.mean(dim=(0, 2))) / std)


def random_checkpoint(config: Mapping, seed: int = 0, cache: Path | None = None) -> Path:
    """Directory holding `save_pretrained` output of `build_random(config, seed)` (cached)."""
    return seeded_checkpoint("encodec", config, seed,
                             {"codebook_init": CODEBOOK_INIT, "conv_init": CONV_INIT,
                              **versions()},
                             ("model.safetensors", "config.json"),
                             lambda folder: build_random(config, seed).save_pretrained(folder),
                             cache)


def build_original(config: Mapping, seed: int = 0):
    """Meta's `encodec` 0.1.1 `EncodecModel` at the 24 or 48 kHz configuration (pretrained=False:
    no download) holding the weights of our transformers checkpoint `random_checkpoint(config,
    seed)`, mapped key by key through `weights.encodec.from_original` (every key of the original
    model must map to one canonical key; strict `load_state_dict`). Training buffers of the
    codebooks: `inited` 1, `cluster_size` 1, `embed_avg` = `embed`."""
    from encodec import EncodecModel

    from weights.encodec import from_original, load

    rate = int(config["sampling_rate"])
    build = {24000: EncodecModel.encodec_model_24khz, 48000: EncodecModel.encodec_model_48khz}
    if rate not in build:
        raise ValueError(f"the encodec package has 24000 and 48000 Hz models, not {rate} Hz")
    model = build[rate](pretrained=False)
    canonical = load(random_checkpoint(config, seed), fold=False).state  # keeps (g, v)
    state = {}
    for key, value in model.state_dict().items():
        mapped = list(from_original({key: np.zeros(1)}, fold=False))
        if not mapped:  # a codebook training buffer
            embed_key = key.rsplit(".", 1)[0] + ".embed"
            embed = canonical[list(from_original({embed_key: np.zeros(1)}, fold=False))[0]]
            fill = {"inited": np.ones(1), "cluster_size": np.ones(embed.shape[0]),
                    "embed_avg": embed}[key.rsplit(".", 1)[1]]
            state[key] = torch.from_numpy(np.asarray(fill, dtype=np.float32)).reshape(value.shape)
            continue
        if mapped[0] not in canonical:
            raise KeyError(f"original key {key} -> {mapped[0]}: not in the transformers checkpoint")
        state[key] = torch.from_numpy(np.ascontiguousarray(canonical[mapped[0]]))
    model.load_state_dict(state, strict=True)
    return model.eval()


def original_checkpoint(config: Mapping, seed: int = 0, cache: Path | None = None) -> Path:
    """`torch.save(build_original(config, seed).state_dict())` as the original `.th` files are
    (cached beside the transformers checkpoint it was made from)."""
    src = random_checkpoint(config, seed, cache)
    out = src / "original_encodec.th"
    if not out.is_file():
        fd, tmp = tempfile.mkstemp(dir=src, prefix=".tmp-", suffix=".th")
        os.close(fd)
        try:
            torch.save(build_original(config, seed).state_dict(), tmp)
            os.replace(tmp, out)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
    return out


# taps recorded here rather than hooked (not module outputs of the same name)
RECORDED = ("quantizer.codes", "audio_codes", "audio_scales", "quantizer.quantized",
            "audio_values")


class EncodecReference:
    """Callable: {"audio": (N,) or (N, C) float32, "bandwidth": () float} -> taps (MLX layout)."""

    def __init__(self, model_dir: Path | str):
        from transformers import EncodecModel

        self.model = EncodecModel.from_pretrained(str(model_dir)).float().eval()
        self.config = self.model.config.to_dict()
        self.versions = versions()

    @torch.no_grad()
    def __call__(self, inputs: Mapping[str, np.ndarray],
                 taps: Sequence[str] = ()) -> dict[str, np.ndarray]:
        """`taps`: names to record beyond those always recorded (`RECORDED`): `EncodecModel`
        submodule paths (the SEANet layers), hooked; chunked models keep the first chunk's."""
        audio = np.asarray(inputs["audio"], dtype=np.float32)
        if audio.ndim == 1:
            audio = audio[:, None]
        x = torch.from_numpy(np.ascontiguousarray(audio.T[None]))  # (1, C, N)
        bandwidth = float(np.asarray(inputs["bandwidth"]).reshape(-1)[0])
        out: dict[str, np.ndarray] = {}
        hooked = {t: (t, channels_last) for t in taps if t not in RECORDED}
        q = self.model.quantizer
        orig_encode, orig_decode = q.encode, q.decode

        def encode(emb, bw):
            codes = orig_encode(emb, bw)
            out.setdefault("quantizer.codes", codes.numpy().copy())  # (n_q, B, F)
            return codes

        def decode(codes):
            emb = orig_decode(codes)
            out.setdefault("quantizer.quantized", channels_last(emb))
            return emb

        q.encode, q.decode = encode, decode  # instance attributes, removed in `finally`
        try:
            with hook_taps(self.model, hooked, out, first=True):
                enc = self.model.encode(x, bandwidth=bandwidth)
                if self.model.config.chunk_length is not None:
                    out["audio_codes"] = enc.audio_codes.numpy().copy()  # (n_chunks, B, n_q, F)
                if self.model.config.normalize:
                    out["audio_scales"] = torch.stack(  # (n_chunks, B)
                        [s.view(-1) for s in enc.audio_scales]).float().numpy().copy()
                y = self.model.decode(enc.audio_codes, enc.audio_scales,
                                      last_frame_pad_length=enc.last_frame_pad_length)[0]
        finally:
            del q.encode, q.decode
        out["audio_values"] = y[..., : x.shape[-1]].transpose(1, 2).numpy().copy()
        return out
