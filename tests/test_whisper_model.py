"""Bad input to the MLX Whisper model and its strict loader: each gets an error naming the fix."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest
from mlx.utils import tree_flatten

from mlx_impl.whisper.config import WhisperConfig
from mlx_impl.whisper.load import from_state
from mlx_impl.whisper.model import Whisper

DIMS = dict(n_mels=80, n_audio_ctx=10, n_audio_state=16, n_audio_head=2, n_audio_layer=1,
            n_vocab=51864, n_text_ctx=8, n_text_state=16, n_text_head=2, n_text_layer=1)


def canonical_state(dims: dict) -> dict[str, np.ndarray]:
    """A canonical (openai layout) state from a freshly initialised MLX model."""
    model = Whisper(WhisperConfig.from_dict(dims))
    state = {k: np.array(v) for k, v in tree_flatten(model.parameters())}
    for k in ("encoder.conv1.weight", "encoder.conv2.weight"):
        state[k] = state[k].transpose(0, 2, 1)  # MLX (out, k, in) -> torch (out, in, k)
    return state


def test_round_trip_loads_the_same_values():
    state = canonical_state(DIMS)
    model = from_state(DIMS, state)
    got = dict(tree_flatten(model.parameters()))
    np.testing.assert_array_equal(np.array(got["decoder.blocks.0.mlp.0.weight"]),
                                  state["decoder.blocks.0.mlp.0.weight"])
    np.testing.assert_array_equal(np.array(got["encoder.conv1.weight"]).transpose(0, 2, 1),
                                  state["encoder.conv1.weight"])


@pytest.mark.parametrize("shape", [(1, 20, 128), (1, 20, 40), (1, 19, 80), (20,)])
def test_wrong_mel_shape_names_the_expected_layout(shape):
    model = Whisper(WhisperConfig.from_dict(DIMS))
    with pytest.raises(ValueError, match=r"expected a log-mel of shape \(batch, 20, 80\)"):
        model.encoder(mx.zeros(shape))


def test_weights_for_other_dims_are_refused_with_the_differences():
    state = canonical_state(DIMS)
    wider = dict(DIMS, n_text_state=32, n_audio_state=32)
    with pytest.raises(ValueError, match="shape mismatches") as e:
        from_state(wider, state)
    assert "decoder.blocks.0.attn.key.weight: model (32, 32) vs weights (16, 16)" in str(e.value)


def test_missing_and_unexpected_keys_are_listed():
    state = canonical_state(DIMS)
    del state["decoder.ln.weight"]
    state["decoder.extra.weight"] = np.zeros(3, np.float32)
    with pytest.raises(ValueError) as e:
        from_state(DIMS, state)
    assert "decoder.ln.weight" in str(e.value) and "decoder.extra.weight" in str(e.value)


def test_config_missing_or_unknown_keys():
    with pytest.raises(ValueError, match="missing"):
        WhisperConfig.from_dict({k: v for k, v in DIMS.items() if k != "n_mels"})
    with pytest.raises(ValueError, match="unknown"):
        WhisperConfig.from_dict(dict(DIMS, n_foo=1))


def test_positions_that_are_not_sinusoids_are_refused():
    state = canonical_state(DIMS)
    state["encoder.positional_embedding"] = state["encoder.positional_embedding"] + 0.01
    with pytest.raises(ValueError, match="sinusoid"):
        from_state(DIMS, state)


def test_alignment_heads_outside_the_model_are_refused():
    model = Whisper(WhisperConfig.from_dict(DIMS))
    with pytest.raises(ValueError, match="outside"):
        model.set_alignment_heads([[0, 1], [3, 0]])


def test_encoder_evaluated_block_by_block_equals_one_graph(monkeypatch):
    # on the CPU the encoder evaluates each block before queueing the next (its peak memory;
    # see AudioEncoder): the values are those of one lazy graph, bit for bit
    import mlx_impl.whisper.model as model_mod

    dims = dict(DIMS, n_audio_layer=3)
    model = Whisper(WhisperConfig.from_dict(dims))
    mel = mx.array(np.random.default_rng(0).standard_normal((1, 20, 80)).astype(np.float32))
    evals = []
    real_eval = mx.eval
    monkeypatch.setattr(model_mod.mx, "eval", lambda *a: (evals.append(len(a)), real_eval(*a)))
    stepwise = np.array(model.encoder(mel))
    assert len(evals) == 3  # one per block
    monkeypatch.setattr(model_mod.mx, "eval", lambda *a: None)  # one lazy graph
    one_graph = np.array(model.encoder(mel))
    np.testing.assert_array_equal(stepwise, one_graph)
