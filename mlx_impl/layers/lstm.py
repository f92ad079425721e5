"""Multi-layer unidirectional LSTM with torch's parameter layout and equations.

Upstream: `torch.nn.LSTM` (torch 2.13.0), batch-first here. Per layer l the parameters are
`weight_ih_l{l}` (4H, I), `weight_hh_l{l}` (4H, H), `bias_ih_l{l}` (4H,), `bias_hh_l{l}` (4H,);
the 4H rows are the gates in torch's order i, f, g, o:

    gates = x W_ih^T + b_ih + h W_hh^T + b_hh
    c' = sigmoid(f) * c + sigmoid(i) * tanh(g);   h' = sigmoid(o) * tanh(c')

The initial state (h0, c0), each (num_layers, B, H), is zero unless given, as in torch's
`lstm(x, (h0, c0))`; `run` also returns the final (h_n, c_n), so a decoder can advance one step
at a time (x of length 1) from the state of the previous call. The input projection of all time
steps is one matmul before the time loop.

`BiLSTM`: one bidirectional layer, torch's `nn.LSTM(..., bidirectional=True)` with
`num_layers=1` (StyleTTS / Kokoro): the forward parameters as above, the backward ones with the
suffix `_reverse`; the output is (B, T, 2H), forward half first. Upstream's
`pack_padded_sequence` over full-length sequences is this plain bidirectional pass.
"""

from __future__ import annotations

import mlx.core as mx
from mlx import nn


def lstm_direction(x: mx.array, w_ih: mx.array, w_hh: mx.array, b_ih: mx.array | None,
                   b_hh: mx.array | None, h: mx.array, c: mx.array
                   ) -> tuple[mx.array, mx.array, mx.array]:
    """One direction of one layer: x (B, T, I), h and c (B, H) -> (outputs (B, T, H), h, c)."""
    H = w_hh.shape[1]
    xw = x @ w_ih.T  # (B, T, 4H)
    if b_ih is not None:
        xw = xw + b_ih
    w_hh = w_hh.T
    outs = []
    for t in range(x.shape[1]):
        hw = h @ w_hh
        gates = xw[:, t] + (hw + b_hh if b_hh is not None else hw)
        i = mx.sigmoid(gates[:, :H])
        f = mx.sigmoid(gates[:, H: 2 * H])
        g = mx.tanh(gates[:, 2 * H: 3 * H])
        o = mx.sigmoid(gates[:, 3 * H:])
        c = f * c + i * g
        h = o * mx.tanh(c)
        outs.append(h)
    return mx.stack(outs, axis=1), h, c


class LSTM(nn.Module):
    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        self.hidden_size, self.num_layers, self.bias = hidden_size, num_layers, bias
        scale = hidden_size ** -0.5
        for layer in range(num_layers):
            n_in = input_size if layer == 0 else hidden_size
            setattr(self, f"weight_ih_l{layer}",
                    mx.random.uniform(-scale, scale, (4 * hidden_size, n_in)))
            setattr(self, f"weight_hh_l{layer}",
                    mx.random.uniform(-scale, scale, (4 * hidden_size, hidden_size)))
            if bias:
                setattr(self, f"bias_ih_l{layer}", mx.zeros((4 * hidden_size,)))
                setattr(self, f"bias_hh_l{layer}", mx.zeros((4 * hidden_size,)))

    def _layer(self, x: mx.array, layer: int, h: mx.array, c: mx.array
               ) -> tuple[mx.array, mx.array, mx.array]:
        """x (B, T, I), h and c (B, H) -> (outputs (B, T, H), last h, last c)."""
        b = (getattr(self, f"bias_ih_l{layer}"), getattr(self, f"bias_hh_l{layer}")) \
            if self.bias else (None, None)
        return lstm_direction(x, getattr(self, f"weight_ih_l{layer}"),
                              getattr(self, f"weight_hh_l{layer}"), *b, h, c)

    def run(self, x: mx.array, state: tuple[mx.array, mx.array] | None = None
            ) -> tuple[mx.array, tuple[mx.array, mx.array]]:
        """x (B, T, I); state (h0, c0) each (num_layers, B, H), None: zeros ->
        (outputs (B, T, H), (h_n, c_n) each (num_layers, B, H)), as torch's `lstm(x, state)`."""
        if x.ndim != 3:
            raise ValueError(f"LSTM expects (batch, time, features), got shape {x.shape}")
        want = (self.num_layers, x.shape[0], self.hidden_size)
        if state is None:
            h0 = c0 = mx.zeros(want, dtype=x.dtype)
        else:
            h0, c0 = state
            if tuple(h0.shape) != want or tuple(c0.shape) != want:
                raise ValueError(f"LSTM state (h0, c0) must each be (num_layers, batch, hidden) = "
                                 f"{want}, got {tuple(h0.shape)} and {tuple(c0.shape)}")
        hs, cs = [], []
        for layer in range(self.num_layers):
            x, h, c = self._layer(x, layer, h0[layer], c0[layer])
            hs.append(h)
            cs.append(c)
        return x, (mx.stack(hs), mx.stack(cs))

    def __call__(self, x: mx.array, state: tuple[mx.array, mx.array] | None = None
                 ) -> mx.array:
        """x (B, T, I) -> outputs (B, T, H); see `run` for the state."""
        return self.run(x, state)[0]


class BiLSTM(nn.Module):
    """One bidirectional LSTM layer with torch's parameter names (see the module docstring)."""

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.hidden_size = hidden_size
        scale = hidden_size ** -0.5
        for sfx in ("", "_reverse"):
            setattr(self, f"weight_ih_l0{sfx}",
                    mx.random.uniform(-scale, scale, (4 * hidden_size, input_size)))
            setattr(self, f"weight_hh_l0{sfx}",
                    mx.random.uniform(-scale, scale, (4 * hidden_size, hidden_size)))
            setattr(self, f"bias_ih_l0{sfx}", mx.zeros((4 * hidden_size,)))
            setattr(self, f"bias_hh_l0{sfx}", mx.zeros((4 * hidden_size,)))

    def _direction(self, x: mx.array, sfx: str) -> mx.array:
        z = mx.zeros((x.shape[0], self.hidden_size), dtype=x.dtype)
        return lstm_direction(x, getattr(self, f"weight_ih_l0{sfx}"),
                              getattr(self, f"weight_hh_l0{sfx}"), getattr(self, f"bias_ih_l0{sfx}"),
                              getattr(self, f"bias_hh_l0{sfx}"), z, z)[0]

    def __call__(self, x: mx.array) -> mx.array:  # (B, T, I) -> (B, T, 2H)
        if x.ndim != 3:
            raise ValueError(f"BiLSTM expects (batch, time, features), got shape {x.shape}")
        fwd = self._direction(x, "")
        bwd = self._direction(x[:, ::-1], "_reverse")[:, ::-1]
        return mx.concatenate([fwd, bwd], axis=-1)
