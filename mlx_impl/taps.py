"""The tap recorder models write their named intermediate activations through.

A model takes `taps: Taps = NO_TAPS` and calls `x = taps("encoder.conv1", x)` where upstream's
module of that name returns; with `NO_TAPS` the call is free (returns `x`, stores nothing), so
inference code and parity code run the same forward pass. `Taps` is the recording one: a dict
of name -> array in execution order, optionally restricted by `keep(name)` (e.g. only the codes
and the output audio on long clips). Recording the same name twice is an error: a tap names one
place in the forward pass.

Names are dotted and equal to the upstream module path where there is one, so the reference side
hooks the same names (`reference/hooks.py`).
"""

from __future__ import annotations

from collections.abc import Callable


class Taps(dict):
    """Records `taps(name, x)` into itself (insertion order = execution order)."""

    def __init__(self, keep: Callable[[str], bool] | None = None):
        super().__init__()
        self._keep = keep

    @property
    def enabled(self) -> bool:
        return True

    def __call__(self, name: str, x):
        if self._keep is None or self._keep(name):
            if name in self:
                raise ValueError(f"tap {name!r} recorded twice in one forward pass; a tap "
                                 "names one place (add an index to the name)")
            self[name] = x
        return x


class _NoTaps:
    """The recorder that records nothing (the default of every model's `taps=`)."""

    enabled = False

    def __call__(self, name: str, x):
        return x

    def __repr__(self) -> str:
        return "NO_TAPS"


NO_TAPS = _NoTaps()


def recorder(taps) -> Taps | _NoTaps:
    """`None` -> NO_TAPS; a `Taps` as it is; a plain dict is refused with the fix."""
    if taps is None:
        return NO_TAPS
    if isinstance(taps, (Taps, _NoTaps)):
        return taps
    raise TypeError(f"taps must be a mlx_impl.taps.Taps (or None), got {type(taps).__name__}; "
                    "pass Taps() to record")
