"""Frame-by-frame streaming decode for Mimi, equal to one-shot `MimiModel.decode`.

State per layer, so that feeding code frames one (or a few) at a time gives the same audio as
decoding all frames at once (tests/test_mimi.py checks fp32 equality within 1e-5):
- causal `Conv1d` (stride 1 in the decoder; any stride works when the input is a whole number of
  strides): the last `kernel_eff - stride` input samples, starting as the layer's own left padding
  (zeros for "constant", the first sample for "replicate", as upstream's
  `MimiConv1dPaddingCache`);
- `ConvTranspose1d` (causal, trim_right_ratio 1: nothing trimmed on the left): the
  `kernel - stride` output samples that the next input frame still adds to (overlap-add), kept
  without bias; one-shot trims exactly those on the right;
- transformer: `SlidingKVCache` per layer (keys of the last `sliding_window - 1` positions plus
  the absolute position for RoPE).
"""

from __future__ import annotations

import mlx.core as mx

from mlx_impl.layers.conv import Conv1d, ConvTranspose1d, pad1d
from mlx_impl.layers.seanet import ELU, ResnetBlock


class StreamingConv1d:
    def __init__(self, layer: Conv1d):
        if not layer.causal or layer.use_group_norm:
            raise ValueError("streaming needs a causal Conv1d without group norm")
        self.layer, self.buffer = layer, None

    def __call__(self, x: mx.array) -> mx.array:  # (B, t, C_in) -> (B, t', C_out)
        layer = self.layer
        if self.buffer is None:
            if layer.pad_mode == "reflect":
                raise ValueError("reflect padding cannot be streamed (it needs future samples)")
            self.buffer = pad1d(x[:, :1], layer.padding_total, 0, layer.pad_mode)[
                :, : layer.padding_total]
        x = mx.concatenate([self.buffer, x], axis=1)
        n = x.shape[1]
        n_out = 0 if n < layer.kernel_eff else (n - layer.kernel_eff) // layer.stride + 1
        self.buffer = x[:, n_out * layer.stride:]
        if n_out == 0:
            return mx.zeros((x.shape[0], 0, layer.conv.weight.shape[0]), x.dtype)
        return layer.conv(x[:, : (n_out - 1) * layer.stride + layer.kernel_eff])


class StreamingConvTranspose1d:
    def __init__(self, layer: ConvTranspose1d):
        if layer.trim[0] != 0 or layer.use_group_norm:
            raise ValueError("streaming needs a causal ConvTranspose1d with trim_right_ratio=1.0 "
                             "and no group norm (a left trim would need future frames)")
        self.layer, self.pending = layer, None

    def __call__(self, x: mx.array) -> mx.array:  # (B, t, C_in) -> (B, t * stride, C_out)
        y = self.layer.conv(x)  # (B, (t - 1) * s + k, C_out), bias included
        overlap = self.layer.trim[1]  # k - s
        n_emit = y.shape[1] - overlap
        if self.pending is not None:
            y = mx.concatenate([y[:, :overlap] + self.pending, y[:, overlap:]], axis=1)
        tail = y[:, n_emit:]
        if "bias" in self.layer.conv:
            tail = tail - self.layer.conv.bias  # added again with the next frame's output
        self.pending = tail
        return y[:, :n_emit]


class StreamingResnetBlock:
    def __init__(self, block: ResnetBlock):
        self.block = block
        self.layers = [wrap(layer) for layer in block.block]
        self.shortcut = None if block.true_skip else StreamingConv1d(block.shortcut)

    def __call__(self, x: mx.array) -> mx.array:
        y = x
        for layer in self.layers:
            y = layer(y)
        return (x if self.shortcut is None else self.shortcut(x)) + y


def wrap(layer):
    if isinstance(layer, ELU):
        return layer
    if isinstance(layer, Conv1d):
        return StreamingConv1d(layer)
    if isinstance(layer, ConvTranspose1d):
        return StreamingConvTranspose1d(layer)
    if isinstance(layer, ResnetBlock):
        return StreamingResnetBlock(layer)
    raise ValueError(f"{type(layer).__name__} has no streaming form (an LSTM decoder cannot "
                     "be streamed here)")


class StreamingDecoder:
    """`step(codes)` with codes (B, K, f) -> audio (B, f * frame_size, channels)."""

    def __init__(self, model):
        self.model = model
        self.upsample = StreamingConvTranspose1d(model.upsample)
        self.cache = model.decoder_transformer.make_cache()
        self.seanet = [wrap(layer) for layer in model.decoder.layers]
        self.frames = 0

    def step(self, codes: mx.array) -> mx.array:
        m = self.model
        h = self.upsample(m.quantizer.decode(codes).astype(m.dtype))
        h = m.decoder_transformer(h, cache=self.cache)
        for layer in self.seanet:
            h = layer(h)
        self.frames += codes.shape[-1]
        return h
