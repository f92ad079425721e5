"""Voxtral in MLX: Whisper audio encoder -> 4-frame projector -> Llama-style decoder.

Upstream: transformers 5.24.0 `models/voxtral/modeling_voxtral.py`
(`VoxtralForConditionalGeneration`: `VoxtralEncoder`, `VoxtralMultiModalProjector`, a
`LlamaModel` built from `text_config`, and `lm_head`).

- Audio encoder: upstream's `VoxtralEncoder` is the Whisper encoder (conv1, GELU, conv2 stride 2,
  GELU, + learned positions, pre-LN blocks, final layer norm; its `avg_pooler` is never called).
  It is our `mlx_impl.whisper.model.AudioEncoder`, unchanged; `convert.py` renames the keys.
  Each 30-s chunk of log-mel (3000 frames, 128 bins) gives 1500 frames of width 1280.
- Projector: the frames of all chunks are flattened and every 4 consecutive frames concatenated
  (upstream `reshape(-1, intermediate_size)`), then linear_1 -> GELU -> linear_2 (no biases):
  375 audio embeddings per chunk.
- Decoder: the prompt's token embeddings with every `audio_token_id` position replaced, in order,
  by the audio embeddings (upstream `masked_scatter`), then `mlx_impl.layers.llm.DecoderLM`.

Deviations: none in the computation. The attention scores of the encoder are scaled as
openai-whisper's (q and k each by d**-0.25; upstream scales q by d**-0.5), a difference of float
rounding only. Taps: `mel` (by the caller), `encoder.*` as Whisper's (batch = chunks),
`projector` (n_audio_tokens, C), `language_model.*` (llm.py) and `logits`.
"""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn
import numpy as np

from mlx_impl.layers.activations import gelu
from mlx_impl.layers.attention import KVCache
from mlx_impl.layers.llm import DecoderLM
from mlx_impl.taps import NO_TAPS, Taps
from mlx_impl.voxtral.config import VoxtralConfig
from mlx_impl.whisper.config import WhisperConfig
from mlx_impl.whisper.model import AudioEncoder



def whisper_encoder_config(cfg: VoxtralConfig) -> WhisperConfig:
    """The Whisper dims of Voxtral's encoder (the text fields are unused by `AudioEncoder`)."""
    a = cfg.audio
    return WhisperConfig(n_mels=a.num_mel_bins, n_audio_ctx=a.max_source_positions,
                         n_audio_state=a.hidden_size, n_audio_head=a.num_attention_heads,
                         n_audio_layer=a.num_hidden_layers, n_vocab=0, n_text_ctx=0,
                         n_text_state=0, n_text_head=0, n_text_layer=0)


class MultiModalProjector(nn.Module):
    def __init__(self, n_in: int, n_out: int):
        super().__init__()
        self.linear_1 = nn.Linear(n_in, n_out, bias=False)
        self.linear_2 = nn.Linear(n_out, n_out, bias=False)

    def __call__(self, x: mx.array) -> mx.array:
        return self.linear_2(gelu(self.linear_1(x)))


class Voxtral(nn.Module):
    def __init__(self, cfg: VoxtralConfig, dtype: mx.Dtype = mx.float32):
        super().__init__()
        self.config = cfg
        self.dtype = dtype
        self.audio_tower = AudioEncoder(whisper_encoder_config(cfg))
        self.multi_modal_projector = MultiModalProjector(cfg.audio.intermediate_size,
                                                         cfg.text.hidden_size)
        self.language_model = DecoderLM(cfg.text)

    def encode_audio(self, mel: mx.array, taps: Taps = NO_TAPS) -> mx.array:
        """mel chunks (n_chunks, n_frames, n_mels) -> audio embeddings (n_chunks * tokens, C)."""
        a = self.config.audio
        if mel.ndim != 3 or mel.shape[1:] != (a.n_frames, a.num_mel_bins) or mel.shape[0] < 1:
            raise ValueError(f"expected log-mel chunks of shape (n_chunks, {a.n_frames}, "
                             f"{a.num_mel_bins}), got {tuple(mel.shape)}; compute them with "
                             "mlx_impl.voxtral.features.log_mel_chunks")
        # Whisper's AudioEncoder still takes a dict or None (mlx_impl/whisper is not on the
        # recorder yet): a Taps is a dict; NO_TAPS becomes None
        x = self.audio_tower(mel, taps=taps if taps.enabled else None)  # (n_chunks, ctx, d)
        x = x.reshape(-1, a.intermediate_size)  # 4 consecutive frames side by side
        x = self.multi_modal_projector(x)
        x = taps("projector", x)
        return x

    def embed_prompt(self, input_ids: np.ndarray, audio: mx.array | None) -> mx.array:
        """(1, T) ids -> (1, T, C) embeddings, [AUDIO] positions filled with `audio` rows."""
        ids = np.asarray(input_ids)
        if ids.ndim != 2 or ids.shape[0] != 1:
            raise ValueError(f"expected prompt ids of shape (1, T), got {ids.shape}")
        x = self.language_model.embed(mx.array(ids.astype(np.int32))).astype(self.dtype)
        where = np.flatnonzero(ids[0] == self.config.audio_token_id)
        n_audio = 0 if audio is None else audio.shape[0]
        if where.size != n_audio:
            raise ValueError(f"the prompt has {where.size} audio placeholder tokens (id "
                             f"{self.config.audio_token_id}) but the audio gives {n_audio} "
                             f"embeddings ({self.config.audio.tokens_per_chunk} per chunk); "
                             "build the prompt with transcription_prompt(n_audio_tokens)")
        if n_audio:
            x[0, mx.array(where)] = audio.astype(x.dtype)
        return x

    def new_cache(self) -> list[KVCache]:
        return self.language_model.new_cache()

    def __call__(self, x: mx.array, cache: list[KVCache], taps: Taps = NO_TAPS,
                 keep: int | None = None) -> mx.array:
        """Embeddings (1, T, C) -> logits of the last `keep` positions (all when None)."""
        h = self.language_model(x, cache, taps)
        if keep is not None:
            h = h[:, -keep:]
        logits = self.language_model.logits(h)
        logits = taps("logits", logits)
        return logits

    def generate(self, input_ids: np.ndarray, mel: mx.array, max_new_tokens: int,
                 eos_token_id: int | None = None, on_logits=None) -> list[int]:
        """Greedy decoding (upstream `generate(do_sample=False)`): new token ids, ending with
        the end-of-sequence id when it was produced within `max_new_tokens`. `on_logits`
        receives each step's (vocab,) float32 logits as numpy."""
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        eos = self.config.eos_token_id if eos_token_id is None else eos_token_id
        cache = self.new_cache()
        logits = self(self.embed_prompt(input_ids, self.encode_audio(mel)), cache, keep=1)
        out: list[int] = []
        while True:
            # numpy's argmax takes the first of equal maxima, as torch's
            row = np.array(logits[0, -1])
            if on_logits is not None:
                on_logits(row)
            token = int(np.argmax(row))
            out.append(token)
            if token == eos or len(out) == max_new_tokens:
                return out
            x = self.language_model.embed(mx.array([[token]], dtype=mx.int32)).astype(self.dtype)
            logits = self(x, cache)
