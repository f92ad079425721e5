"""Reference adapter for Whisper: openai-whisper (primary) and transformers (cross-check).

Upstream: openai-whisper 20250625 (`whisper/model.py`, `whisper/audio.py`,
`whisper/tokenizer.py`) and transformers 5.24.0 (`WhisperForConditionalGeneration`).

`WhisperReference` builds `whisper.model.Whisper(ModelDimensions(**dims))` from the canonical
numpy state (cast to float32, loaded strictly), computes `whisper.log_mel_spectrogram`, runs the
encoder and the decoder teacher-forced over a full token sequence (no KV cache), and records the
taps of docs/ARCHITECTURE.md with torch hooks that are removed after every call:

- `encoder.conv1` / `encoder.conv2`: forward hooks on the convs, (B, C, T) transposed to (B, T, C);
- `encoder.embed` / `decoder.embed`: forward pre-hooks on `blocks[0]` (its input);
- `*.attn` / `*.cross_attn`: upstream attention returns `(out, qk)`; the tap is `out`;
- `mel`: upstream's (n_mels, n_frames) transposed to (n_frames, n_mels).

Attention path: openai-whisper picks torch's `scaled_dot_product_attention` or its explicit
`softmax((q*s)(k*s)^T)v` through the class-global `MultiHeadAttention.use_sdpa`. This adapter
takes `use_sdpa` as an explicit argument (default False: the explicit formula, which is what the
MLX port mirrors) and sets that global only for the duration of each call, restoring it after.

Sampling with injected randomness (`sampling_noise`): openai-whisper's `GreedyDecoder.update`
draws at temperature T > 0 with `Categorical(logits=logits / T).sample()` from torch's global
RNG, which MLX cannot replay. Inside `with sampling_noise(noise):` the name `Categorical` of
`whisper.decoding` (used there only by that line) is a stand-in whose `sample()` returns
argmax(logits / T + g), g = torch.from_numpy(noise(shape)) of the logits' shape (rows, n_vocab):
the Gumbel-max draw, a sample of the same softmax(logits / T). Everything else in upstream's
`update` (log probabilities, end-of-text handling) runs unchanged. Our decoder draws
argmax(logits / T + g) from the same g (`mlx_impl.whisper.decoding`, `DecodingOptions.noise`),
so two noise sources of one seed, called in the same order (one call per sampled step, which
identical tokens guarantee), give identical samples. The name is restored on exit.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping

import numpy as np
import torch
import whisper
from whisper.audio import log_mel_spectrogram
from whisper.model import ModelDimensions, MultiHeadAttention
from whisper.model import Whisper as TorchWhisper
from whisper.tokenizer import get_tokenizer

from weights.whisper import HF_LAYER_RENAMES

DIM_KEYS = ("n_mels", "n_audio_ctx", "n_audio_state", "n_audio_head", "n_audio_layer",
            "n_vocab", "n_text_ctx", "n_text_state", "n_text_head", "n_text_layer")


def versions() -> dict:
    import transformers

    return {"torch": torch.__version__, "openai-whisper": whisper.__version__,
            "transformers": transformers.__version__}


def _dims(dims: Mapping) -> ModelDimensions:
    missing = [k for k in DIM_KEYS if k not in dims]
    if missing:
        raise ValueError(f"Whisper dims are missing {missing}; got {sorted(dims)}")
    return ModelDimensions(**{k: int(dims[k]) for k in DIM_KEYS})


def _torch_state(state: Mapping[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)) for k, v in state.items()}


def build_openai(dims: Mapping, state: Mapping[str, np.ndarray]) -> TorchWhisper:
    """openai-whisper model in float32, eval mode, weights loaded strictly."""
    model = TorchWhisper(_dims(dims))
    want = set(model.state_dict())
    got = set(state)
    if want != got:
        raise ValueError(f"canonical Whisper state does not match openai-whisper's keys: missing "
                         f"{sorted(want - got)[:10]}, unexpected {sorted(got - want)[:10]}")
    model.load_state_dict(_torch_state(state), strict=True)
    return model.float().eval()


def set_alignment_heads(model: TorchWhisper, heads) -> None:
    """Install (layer, head) alignment pairs from the weights' config as openai-whisper's sparse
    mask buffer (upstream ships them as base85 dumps in its package; CTranslate2 in config.json)."""
    if heads is None:
        raise ValueError("these weights carry no alignment heads: word timestamps need them")
    mask = np.zeros((model.dims.n_text_layer, model.dims.n_text_head), dtype=bool)
    mask[tuple(np.asarray(heads).reshape(-1, 2).T)] = True
    model.register_buffer("alignment_heads", torch.from_numpy(mask).to_sparse(), persistent=False)


@contextlib.contextmanager
def sampling_noise(noise):
    """openai-whisper's temperature sampling draws argmax(logits / T + noise(shape)) inside this
    block (module docstring); `noise(shape)` returns float32 Gumbel(0, 1) noise of `shape`."""
    import whisper.decoding as decoding

    class GumbelMax:  # stands in for torch.distributions.Categorical(logits=...)
        def __init__(self, logits: torch.Tensor):
            self.logits = logits  # logits / T, (rows, n_vocab)

        def sample(self) -> torch.Tensor:
            g = np.asarray(noise(tuple(self.logits.shape)), dtype=np.float32)
            if g.shape != tuple(self.logits.shape):
                raise ValueError(f"noise of shape {g.shape} for logits {tuple(self.logits.shape)}")
            return (self.logits + torch.from_numpy(g).to(self.logits.dtype)).argmax(dim=-1)

    original = decoding.Categorical
    decoding.Categorical = GumbelMax
    try:
        yield
    finally:
        decoding.Categorical = original


def sot_tokens(text: str, multilingual: bool, language: str = "en") -> list[int]:
    """SOT sequence (with <|notimestamps|>), the text's tokens, then <|endoftext|>."""
    tok = get_tokenizer(multilingual, language=language if multilingual else None,
                        task="transcribe" if multilingual else None)
    return [*tok.sot_sequence_including_notimestamps, *tok.encode(" " + text.strip()), tok.eot]


class WhisperReference:
    """Callable: {"audio": (N,) float32 16 kHz, "tokens": (1, T) int} -> taps (numpy, MLX layout)."""

    def __init__(self, dims: Mapping, state: Mapping[str, np.ndarray], use_sdpa: bool = False):
        self.config = {k: int(dims[k]) for k in DIM_KEYS}
        self.model = build_openai(dims, state)
        self.use_sdpa = use_sdpa
        self.versions = versions()

    def _hooks(self, taps: dict) -> list:
        m = self.model

        def put(name: str, fn=lambda t: t):
            def hook(_module, _inputs, output):
                out = output[0] if isinstance(output, tuple) else output
                taps[name] = fn(out).detach().float().numpy().copy()
            return hook

        def put_input(name: str):
            def hook(_module, args):
                taps[name] = args[0].detach().float().numpy().copy()
            return hook

        def channels_last(t):  # torch conv output (B, C, T) -> (B, T, C)
            return t.transpose(1, 2)

        h = [m.encoder.conv1.register_forward_hook(put("encoder.conv1", channels_last)),
             m.encoder.conv2.register_forward_hook(put("encoder.conv2", channels_last))]
        for side in ("encoder", "decoder"):
            blocks = getattr(m, side).blocks
            h.append(blocks[0].register_forward_pre_hook(put_input(f"{side}.embed")))
            for i, b in enumerate(blocks):
                h.append(b.attn.register_forward_hook(put(f"{side}.blocks.{i}.attn")))
                if b.cross_attn is not None:
                    h.append(b.cross_attn.register_forward_hook(
                        put(f"{side}.blocks.{i}.cross_attn")))
                h.append(b.mlp.register_forward_hook(put(f"{side}.blocks.{i}.mlp")))
                h.append(b.register_forward_hook(put(f"{side}.blocks.{i}")))
        h.append(m.encoder.ln_post.register_forward_hook(put("encoder.ln_post")))
        h.append(m.decoder.ln.register_forward_hook(put("decoder.ln")))
        return h

    def mel(self, audio: np.ndarray) -> torch.Tensor:
        """(n_mels, n_frames) float32, as upstream computes it (frames = samples // 160)."""
        if audio.ndim != 1 or audio.dtype != np.float32:
            raise ValueError(f"expected mono float32 audio (N,), got {audio.dtype} {audio.shape}; "
                             "load 16 kHz mono and cast with .astype(np.float32)")
        return log_mel_spectrogram(torch.from_numpy(audio), n_mels=self.config["n_mels"])

    @torch.no_grad()
    def __call__(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        tokens = np.asarray(inputs["tokens"])
        if tokens.ndim != 2:
            raise ValueError(f"expected tokens (batch, T), got shape {tokens.shape}")
        taps: dict[str, np.ndarray] = {}
        mel = self.mel(np.asarray(inputs["audio"]))
        taps["mel"] = mel.T.numpy().copy()
        hooks = self._hooks(taps)
        prev = MultiHeadAttention.use_sdpa
        MultiHeadAttention.use_sdpa = self.use_sdpa
        try:
            xa = self.model.encoder(mel[None])
            logits = self.model.decoder(torch.from_numpy(tokens.astype(np.int64)), xa)
        finally:
            MultiHeadAttention.use_sdpa = prev
            for handle in hooks:
                handle.remove()
        taps["logits"] = logits.float().numpy().copy()
        return taps


# canonical (openai-whisper) -> transformers names; "{i}" is the block index
_HF_GLOBAL = {
    "encoder.conv1": "model.encoder.conv1",
    "encoder.conv2": "model.encoder.conv2",
    "encoder.positional_embedding": "model.encoder.embed_positions.weight",
    "encoder.ln_post": "model.encoder.layer_norm",
    "decoder.token_embedding": "model.decoder.embed_tokens",
    "decoder.positional_embedding": "model.decoder.embed_positions.weight",
    "decoder.ln": "model.decoder.layer_norm",
}
_HF_BLOCK = {canonical: hf for hf, canonical in HF_LAYER_RENAMES.items()}


def hf_name(key: str) -> str:
    """Canonical key -> transformers `WhisperForConditionalGeneration` key."""
    for src, dst in _HF_GLOBAL.items():
        if key == src or key.startswith(src + "."):
            return dst + key[len(src):]
    parts = key.split(".")
    if len(parts) >= 4 and parts[1] == "blocks":
        side, i, rest = parts[0], parts[2], ".".join(parts[3:])
        for src, dst in sorted(_HF_BLOCK.items(), key=lambda kv: -len(kv[0])):
            if rest.startswith(src + "."):
                return f"model.{side}.layers.{i}.{dst}{rest[len(src):]}"
    raise KeyError(f"no transformers name for canonical Whisper key {key!r}")


def build_transformers(dims: Mapping, state: Mapping[str, np.ndarray]):
    """transformers WhisperForConditionalGeneration (eager attention, float32) on the same weights."""
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    d = _dims(dims)
    if d.n_audio_state != d.n_text_state:
        raise ValueError("transformers Whisper needs n_audio_state == n_text_state (d_model)")
    cfg = WhisperConfig(
        vocab_size=d.n_vocab, num_mel_bins=d.n_mels, d_model=d.n_audio_state,
        encoder_layers=d.n_audio_layer, encoder_attention_heads=d.n_audio_head,
        decoder_layers=d.n_text_layer, decoder_attention_heads=d.n_text_head,
        encoder_ffn_dim=4 * d.n_audio_state, decoder_ffn_dim=4 * d.n_text_state,
        max_source_positions=d.n_audio_ctx, max_target_positions=d.n_text_ctx,
        activation_function="gelu", scale_embedding=False, dropout=0.0,
        tie_word_embeddings=True, attn_implementation="eager")
    model = WhisperForConditionalGeneration(cfg)
    hf = {hf_name(k): v for k, v in _torch_state(state).items()}
    hf["proj_out.weight"] = hf["model.decoder.embed_tokens.weight"]
    want = set(model.state_dict())
    if set(hf) != want:
        raise ValueError(f"transformers key mismatch: missing {sorted(want - set(hf))[:10]}, "
                         f"unexpected {sorted(set(hf) - want)[:10]}")
    model.load_state_dict(hf, strict=True)
    return model.float().eval()


@torch.no_grad()
def transformers_logits(model, mel: np.ndarray, tokens: np.ndarray) -> np.ndarray:
    """mel (n_frames, n_mels) and tokens (B, T) -> logits (B, T, n_vocab) float32."""
    feats = torch.from_numpy(np.ascontiguousarray(mel.T, dtype=np.float32))[None]
    out = model(input_features=feats, decoder_input_ids=torch.from_numpy(tokens.astype(np.int64)))
    return out.logits.float().numpy()
