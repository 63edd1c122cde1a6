"""Stacked LSTMs that run either over a whole sequence (torch's fused kernel, for teacher forcing)
or one step at a time with the same weights (the autoregressive loop that sampling, scheduled
sampling and ONNX export unroll: plain matrix products, no LSTM operator)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

#: Per layer ``(h, c)``, each ``[batch, units]``.
State = list[tuple[torch.Tensor, torch.Tensor]]


class LSTMStack(nn.Module):
    """LSTM layers of ``sizes`` units over inputs of ``input_size`` features.

    ``input_size=0`` makes a stack that runs on its state alone (the hierarchical decoder's
    conductor); it has only :meth:`step`.
    """

    def __init__(self, input_size: int, sizes: tuple[int, ...]) -> None:
        super().__init__()
        self.sizes = tuple(sizes)
        self.input_size = input_size
        self.layers = nn.ModuleList()
        previous = input_size
        for units in self.sizes:
            if previous == 0:
                self.layers.append(_StateOnlyLSTM(units))
            else:
                self.layers.append(nn.LSTM(previous, units, batch_first=True))
            previous = units

    @property
    def state_size(self) -> int:
        """Numbers in a state (h and c of every layer)."""
        return 2 * sum(self.sizes)

    def state_from(self, flat: torch.Tensor) -> State:
        """A state from ``[batch, state_size]`` numbers (MusicVAE's order: per layer c then h)."""
        state, offset = [], 0
        for units in self.sizes:
            c, h = flat[:, offset : offset + units], flat[:, offset + units : offset + 2 * units]
            state.append((h.contiguous(), c.contiguous()))
            offset += 2 * units
        return state

    def forward(self, inputs: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """The top layer's outputs ``[batch, steps, units]`` over a whole input sequence."""
        out, new_state = inputs, []
        for layer, (h, c) in zip(self.layers, state, strict=True):
            out, (h, c) = layer(out, (h.unsqueeze(0), c.unsqueeze(0)))
            new_state.append((h.squeeze(0), c.squeeze(0)))
        return out, new_state

    def step(self, inputs: torch.Tensor | None, state: State) -> tuple[torch.Tensor, State]:
        """One step: ``inputs`` ``[batch, features]`` (None for a state-only stack) → the top
        layer's output ``[batch, units]`` and the new state."""
        x, new_state = inputs, []
        for layer, (h, c) in zip(self.layers, state, strict=True):
            if isinstance(layer, _StateOnlyLSTM):
                gates = F.linear(h, layer.weight_hh, layer.bias)
            else:
                gates = F.linear(x, layer.weight_ih_l0, layer.bias_ih_l0) + F.linear(
                    h, layer.weight_hh_l0, layer.bias_hh_l0
                )
            i, f, g, o = gates.chunk(4, dim=1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            new_state.append((h, c))
            x = h
        assert x is not None
        return x, new_state


class _StateOnlyLSTM(nn.Module):
    """An LSTM layer without inputs: its gates come from its own previous output."""

    def __init__(self, units: int) -> None:
        super().__init__()
        bound = units**-0.5
        self.weight_hh = nn.Parameter(torch.empty(4 * units, units).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(4 * units).uniform_(-bound, bound))
