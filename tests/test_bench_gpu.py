"""benchmarks.gpu: the seeded weights every worker builds, and the report's token agreement."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks import gpu
from tests.helpers import assert_close
from weights.whisper import check_state


def test_random_state_is_seeded_and_complete():
    a = gpu.random_state(gpu.TINY_DIMS, seed=3)
    b = gpu.random_state(gpu.TINY_DIMS, seed=3)
    check_state(a, gpu.TINY_DIMS)  # every key, every shape
    for name in a:
        assert_close(name, a[name], b[name], atol=0.0)
    c = gpu.random_state(gpu.TINY_DIMS, seed=4)
    w = "decoder.blocks.0.attn.query.weight"
    diff = float(np.abs(a[w] - c[w]).max())
    assert diff > 0.01, f"seeds 3 and 4 gave {w} equal to {diff}; the seed is not used"
    gains = a["decoder.blocks.0.mlp_ln.weight"]
    assert_close("mlp_ln gain mean", gains.mean(), 1.0, atol=0.01)
    assert_close("query weight std", a[w].std(), gpu.WEIGHT_STD, atol=0.002)


def _run(engine, precision, tokens):
    return {"engine": engine, "precision": precision, "decode": {"tokens_head": tokens}}


def test_agreement_reports_first_mismatch():
    runs = [_run("ours", "fp32", [1, 2, 3, 4]), _run("openai-whisper", "fp32", [1, 2, 9, 4]),
            _run("transformers", "fp32", [1, 2, 3, 4])]
    got = gpu._agreement(runs)
    assert got == {"openai-whisper fp32": "first differs at 2",
                   "transformers fp32": "same first 4 tokens"}, got


def test_worker_refuses_cpu_without_flag():
    mx = pytest.importorskip("mlx.core")
    if mx.default_device() != mx.cpu:
        pytest.skip("MLX runs on a GPU here; the refusal is for CPU-only MLX")
    args = gpu.argparse.Namespace(precision="fp32", allow_cpu=False)
    with pytest.raises(RuntimeError, match="not a GPU"):
        gpu.worker_ours(args, gpu.TINY_DIMS, {}, None, None)
