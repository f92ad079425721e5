"""Multi-layer unidirectional LSTM with torch's parameter layout and equations.

Upstream: `torch.nn.LSTM` (torch 2.13.0), batch-first here. Per layer l the parameters are
`weight_ih_l{l}` (4H, I), `weight_hh_l{l}` (4H, H), `bias_ih_l{l}` (4H,), `bias_hh_l{l}` (4H,);
the 4H rows are the gates in torch's order i, f, g, o:

    gates = x W_ih^T + b_ih + h W_hh^T + b_hh
    c' = sigmoid(f) * c + sigmoid(i) * tanh(g);   h' = sigmoid(o) * tanh(c')

The initial state is zero, as when torch's LSTM is called without (h0, c0). The input
projection of all time steps is one matmul before the time loop.
"""

from __future__ import annotations

import mlx.core as mx
from mlx import nn


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

    def _layer(self, x: mx.array, layer: int) -> mx.array:  # (B, T, I) -> (B, T, H)
        w_ih = getattr(self, f"weight_ih_l{layer}")
        w_hh = getattr(self, f"weight_hh_l{layer}").T
        xw = x @ w_ih.T  # (B, T, 4H)
        if self.bias:
            xw = xw + getattr(self, f"bias_ih_l{layer}")
            b_hh = getattr(self, f"bias_hh_l{layer}")
        H = self.hidden_size
        h = mx.zeros((x.shape[0], H), dtype=x.dtype)
        c = mx.zeros((x.shape[0], H), dtype=x.dtype)
        outs = []
        for t in range(x.shape[1]):
            hw = h @ w_hh
            gates = xw[:, t] + (hw + b_hh if self.bias else hw)
            i = mx.sigmoid(gates[:, :H])
            f = mx.sigmoid(gates[:, H: 2 * H])
            g = mx.tanh(gates[:, 2 * H: 3 * H])
            o = mx.sigmoid(gates[:, 3 * H:])
            c = f * c + i * g
            h = o * mx.tanh(c)
            outs.append(h)
        return mx.stack(outs, axis=1)

    def __call__(self, x: mx.array) -> mx.array:  # (B, T, I) -> (B, T, H), zero initial state
        if x.ndim != 3:
            raise ValueError(f"LSTM expects (batch, time, features), got shape {x.shape}")
        for layer in range(self.num_layers):
            x = self._layer(x, layer)
        return x
