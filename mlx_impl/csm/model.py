"""CSM's two transformers in MLX: the backbone (predicts codebook 0 of each frame) and the depth
decoder (predicts codebooks 1..K-1 of that frame), with the shared Llama layers
(`layers.llm.DecoderStack`: RMSNorm, GQA attention with llama3-scaled RoPE, SwiGLU).

Upstream: transformers 5.24.0 `models/csm/modeling_csm.py` (`CsmForConditionalGeneration`,
`CsmBackboneModel`, `CsmBackboneModelEmbeddings`, `CsmDepthDecoderModel`,
`CsmDepthDecoderForCausalLM`, `CsmCodebooksHead`). Attribute names are its module paths, so
conversion is a rename-free table (convert.py). Computation:
- a frame's embedding is the sum over codebooks k of `embed_audio_tokens[code_k + k * V]`
  (V ids per codebook); a prompt embeds text ids with `embed_text_tokens` and puts frame
  embeddings at the audio placeholders, the all-zero frame's at end-of-audio placeholders;
- backbone: the layers + final norm over those embeddings; `lm_head` of the last position's
  normed state gives codebook 0's logits;
- depth decoder, per frame with a fresh cache: position 0 is the backbone's last normed state,
  position p >= 1 the embedding of code p-1 (`embed_audio_tokens[code + (p-1) V]`, the SAME
  table as the backbone's: tied), all through `inputs_embeds_projector` (backbone width ->
  depth width), then the layers + norm; the logits of position p use
  `codebooks_head.weight[p - 1]` (D, V) and predict codebook p.
Deviation: none in the forward pass. The sum over codebooks may round differently from torch's
reduction (float32, within an ulp per add).

Taps (`taps=Taps()`): `backbone_model.embed` / `.layers.{i}` (+ `.self_attn`, `.mlp`) /
`.norm`, `logits` (codebook 0), and for the depth decoder `depth_decoder.model.embed`
(after the projector) / `.layers.{i}` / `.norm`, `depth_decoder.logits`.
"""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn
import numpy as np

from mlx_impl.csm.config import CsmConfig
from mlx_impl.layers.linear import Linear, linear
from mlx_impl.layers.llm import DecoderStack
from mlx_impl.taps import NO_TAPS, Taps


class BackboneEmbeddings(nn.Module):
    """`CsmBackboneModelEmbeddings`: codes (B, T, K) -> (B, T, C), the sum over codebooks."""

    def __init__(self, n_codebooks: int, vocab: int, hidden: int):
        super().__init__()
        self.n_codebooks, self.vocab = n_codebooks, vocab
        self.embed_audio_tokens = nn.Embedding(n_codebooks * vocab, hidden)

    def offsets(self, first: int, n: int) -> mx.array:
        return mx.arange(first, first + n, dtype=mx.int32) * self.vocab

    def __call__(self, codes: mx.array) -> mx.array:
        if codes.shape[-1] != self.n_codebooks:
            raise ValueError(f"expected frames of {self.n_codebooks} codes, got {codes.shape}")
        check_codes(codes, self.vocab)
        e = self.embed_audio_tokens(codes.astype(mx.int32) + self.offsets(0, self.n_codebooks))
        return mx.sum(e, axis=-2)


def check_codes(codes: mx.array, vocab: int) -> None:
    if codes.size and (int(codes.min()) < 0 or int(codes.max()) >= vocab):
        raise ValueError(f"codes must be in [0, {vocab}), got [{int(codes.min())}, "
                         f"{int(codes.max())}]")


class Backbone(DecoderStack):
    def __init__(self, cfg: CsmConfig):
        super().__init__(cfg.lm_args)
        self.embed_tokens = BackboneEmbeddings(cfg.num_codebooks, cfg.vocab_size,
                                               cfg.hidden_size)


class DepthModel(DecoderStack):
    """`CsmDepthDecoderModel` without its embedding table (tied to the backbone's)."""

    def __init__(self, cfg: CsmConfig):
        dd = cfg.depth_decoder_config
        super().__init__(dd.lm_args)
        self.inputs_embeds_projector = Linear(dd.backbone_hidden_size, dd.hidden_size,
                                              bias=False)


class CodebooksHead(nn.Module):
    """`CsmCodebooksHead`: weight (K - 1, D, V); position p >= 1 uses weight[p - 1]."""

    def __init__(self, hidden: int, n_codebooks: int, vocab: int):
        super().__init__()
        self.weight = mx.zeros((n_codebooks - 1, hidden, vocab))

    def __call__(self, h: mx.array, positions: list[int]) -> mx.array:
        """h (B, P, D) at depth positions `positions` (each >= 1) -> (B, P, V) float32."""
        out = [h[:, j] @ self.weight[p - 1] for j, p in enumerate(positions)]
        return mx.stack(out, axis=1).astype(mx.float32)


class DepthDecoder(nn.Module):
    def __init__(self, cfg: CsmConfig):
        super().__init__()
        dd = cfg.depth_decoder_config
        self.model = DepthModel(cfg)
        self.codebooks_head = CodebooksHead(dd.hidden_size, dd.num_codebooks, dd.vocab_size)


class CsmModel(nn.Module):
    def __init__(self, cfg: CsmConfig, dtype: mx.Dtype = mx.float32):
        super().__init__()
        self.config, self.dtype = cfg, dtype
        self.embed_text_tokens = nn.Embedding(cfg.text_vocab_size, cfg.hidden_size)
        self.backbone_model = Backbone(cfg)
        self.lm_head = Linear(cfg.hidden_size, cfg.vocab_size, bias=False)
        self.depth_decoder = DepthDecoder(cfg)

    # -- embeddings --------------------------------------------------------------------------

    def embed_frames(self, codes) -> mx.array:
        """codes (B, T, K) -> (B, T, C) in the model dtype."""
        codes = codes if isinstance(codes, mx.array) else mx.array(np.asarray(codes, np.int32))
        return self.backbone_model.embed_tokens(codes).astype(self.dtype)

    def embed_prompt(self, ids: np.ndarray, codes: np.ndarray) -> mx.array:
        """ids (T,) with audio placeholders, codes (F, K) of the context frames -> (1, T, C):
        `_merge_input_ids_with_input_values` (module docstring)."""
        cfg = self.config
        ids = np.asarray(ids, np.int64)
        if ids.ndim != 1 or ids.size == 0:
            raise ValueError(f"expected a non-empty 1-D prompt, got shape {ids.shape}")
        if int(ids.min()) < 0 or int(ids.max()) >= cfg.text_vocab_size:
            raise ValueError(f"prompt ids must be in [0, {cfg.text_vocab_size})")
        audio = ids == cfg.audio_token_id
        if int(audio.sum()) != len(codes):
            raise ValueError(f"the prompt has {int(audio.sum())} audio placeholders but "
                             f"{len(codes)} frames of codes")
        x = self.embed_text_tokens(mx.array(ids.astype(np.int32)))  # (T, C)
        kind = np.where(audio, 1, np.where(ids == cfg.audio_eos_token_id, 2, 0))
        if kind.any():
            eos = np.full((1, cfg.num_codebooks), cfg.codebook_eos_token_id, np.int64)
            frames = self.backbone_model.embed_tokens(
                mx.array(np.concatenate([np.asarray(codes, np.int64).reshape(-1,
                         cfg.num_codebooks), eos]).astype(np.int32)))  # (F + 1, C)
            index = np.where(audio, np.cumsum(audio) - 1, len(codes))  # frame or the eos frame
            x = mx.where(mx.array(kind > 0)[:, None], frames[mx.array(index.astype(np.int32))], x)
        return x[None].astype(self.dtype)

    # -- backbone ----------------------------------------------------------------------------

    def new_cache(self):
        return self.backbone_model.new_cache()

    def backbone(self, x: mx.array, cache, taps: Taps = NO_TAPS) -> mx.array:
        """(B, T, C) embeddings -> normed hidden states (B, T, C); `cache` is appended to."""
        return self.backbone_model(x, cache, taps, name="backbone_model")

    def logits0(self, h: mx.array) -> mx.array:
        """(..., C) -> codebook 0's logits (..., V) float32."""
        return linear(h, self.lm_head.weight).astype(mx.float32)

    # -- depth decoder -----------------------------------------------------------------------

    def depth_inputs(self, codes: mx.array, first_position: int) -> mx.array:
        """codes (B, P) at depth positions first_position.. (>= 1) -> (B, P, C) embeddings of
        code p-1's table slice."""
        emb = self.backbone_model.embed_tokens
        check_codes(codes, emb.vocab)
        off = emb.offsets(first_position - 1, codes.shape[1])
        return emb.embed_audio_tokens(codes.astype(mx.int32) + off).astype(self.dtype)

    def depth(self, x: mx.array, cache, first_position: int,
              taps: Taps = NO_TAPS) -> mx.array:
        """Depth decoder on backbone-width inputs x (B, P, C) at positions first_position..;
        returns the logits (B, P', V) of the positions >= 1 (position 0 has no head)."""
        dm = self.depth_decoder.model
        h = dm(dm.inputs_embeds_projector(x), cache, taps, name="depth_decoder.model")
        positions = list(range(first_position, first_position + x.shape[1]))
        keep = [j for j, p in enumerate(positions) if p >= 1]
        if not keep:
            return mx.zeros((x.shape[0], 0, self.config.vocab_size), mx.float32)
        h = h[:, keep[0]:]
        return self.depth_decoder.codebooks_head(h, positions[keep[0]:])

    def depth_teacher(self, h_last: mx.array, codes: mx.array, taps: Taps = NO_TAPS) -> mx.array:
        """Teacher-forced depth decoder over whole frames: h_last (B, C) the backbone's normed
        state before each frame, codes (B, K) the frame -> logits (B, K - 1, V) of codebooks
        1..K-1 (upstream's training path: inputs [state, c_0 .. c_{K-2}])."""
        x = mx.concatenate([h_last[:, None].astype(self.dtype),
                            self.depth_inputs(codes[:, :-1], 1)], axis=1)
        dm = self.depth_decoder.model
        logits = self.depth(x, dm.new_cache(), 0, taps)
        return taps("depth_decoder.logits", logits)
