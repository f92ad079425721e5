"""The key-set and shape check shared by the weight readers and `mlx_impl.loading`.

One message format for every "these weights do not fit" error: `missing N: a, b, ...;
unexpected N: ...; shape mismatches N: key: model (shape) vs weights (shape)`.
numpy-free (shapes only) and standard library only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping


def preview(items: Iterable[str], n: int = 8) -> str:
    """The first `n` items joined, with the total count when there are more."""
    items = list(items)
    head = ", ".join(items[:n])
    return head + (f", ... ({len(items)} in all)" if len(items) > n else "")


def key_shape_problems(want: Mapping[str, tuple], have: Mapping[str, tuple]) -> list[str]:
    """Every missing key, unexpected key and shape mismatch of `have` (the weights) against
    `want` (the model), as up to three message parts; empty when they agree."""
    missing = sorted(set(want) - set(have))
    unexpected = sorted(set(have) - set(want))
    shapes = sorted(f"{k}: model {tuple(want[k])} vs weights {tuple(have[k])}"
                    for k in set(want) & set(have) if tuple(want[k]) != tuple(have[k]))
    parts = []
    if missing:
        parts.append(f"missing {len(missing)}: {preview(missing)}")
    if unexpected:
        parts.append(f"unexpected {len(unexpected)}: {preview(unexpected)}")
    if shapes:
        parts.append(f"shape mismatches {len(shapes)}: {preview(shapes, 4)}")
    return parts
