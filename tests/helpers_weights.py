"""Helpers for the weights/ tests: a model.bin writer, a tiny random transformers Whisper
(`assert_close` is in tests/helpers.py)."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

CT2_DTYPE_IDS = {"float32": 0, "int8": 1, "int16": 2, "int32": 3, "float16": 4, "bfloat16": 5}


def ct2_bytes(variables: list[tuple[str, np.ndarray, str]], aliases: dict[str, str] | None = None,
              version: int = 6, spec_name: str = "TestSpec", revision: int = 1) -> bytes:
    """Serialize variables (name, array, ctranslate2 dtype name) as a model.bin.

    Written from the format description (ctranslate2 ModelSpec._serialize); bfloat16 arrays are
    given as their uint16 bit patterns.
    """
    out = bytearray()

    def string(s: str) -> None:
        raw = s.encode()
        out.extend(struct.pack("<H", len(raw) + 1) + raw + b"\0")

    out += struct.pack("<I", version)
    string(spec_name)
    out += struct.pack("<I", revision)
    out += struct.pack("<I", len(variables))
    for name, array, dtype in variables:
        string(name)
        out += struct.pack("<B", array.ndim)
        out += b"".join(struct.pack("<I", d) for d in array.shape)
        data = np.ascontiguousarray(array).tobytes()
        out += struct.pack("<BI", CT2_DTYPE_IDS[dtype], len(data))
        out += data
    aliases = aliases or {}
    out += struct.pack("<I", len(aliases))
    for alias, target in aliases.items():
        string(alias)
        string(target)
    return bytes(out)


def write_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def tiny_hf_whisper(seed: int = 0, perturb: float = 0.3):
    """A tiny random transformers WhisperForConditionalGeneration (fp32, eval) and its config.

    Every parameter gets N(0, perturb) noise on top of the default init, so that layer norms are
    not all ones/zeros and attention is not uniform: a swapped or mis-split tensor then changes
    the logits (swapping one layer's q and k moves them by ~3.5 at perturb=0.3, measured).
    """
    import torch
    import transformers

    torch.manual_seed(seed)
    cfg = transformers.WhisperConfig(
        vocab_size=120, num_mel_bins=16, d_model=64,
        encoder_layers=2, encoder_attention_heads=4, encoder_ffn_dim=256,
        decoder_layers=3, decoder_attention_heads=4, decoder_ffn_dim=256,
        max_source_positions=30, max_target_positions=24,
        pad_token_id=0, bos_token_id=1, eos_token_id=2, decoder_start_token_id=1,
        suppress_tokens=None, begin_suppress_tokens=None,
    )
    model = transformers.WhisperForConditionalGeneration(cfg).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * perturb)
    return model, cfg


def hf_state_numpy(model) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()}


def rewrite_checkpoint(src: Path, dst: Path, edit) -> Path:
    """A copy of the checkpoint folder `src` at `dst` whose weight file (model.safetensors, or
    the one torch.save file: a state dict or BigVGAN's {"generator": state dict}) is rewritten
    after `edit(state)` changed the state dict (numpy arrays) in place."""
    import shutil

    shutil.copytree(src, dst)
    st = dst / "model.safetensors"
    if st.is_file():
        from safetensors.numpy import load_file, save_file

        state = load_file(str(st))
        edit(state)
        save_file(state, str(st))
        return dst
    import torch

    (pt,) = [p for p in dst.iterdir() if p.suffix in (".bin", ".pt")]
    obj = torch.load(pt, weights_only=True)
    sd = obj["generator"] if "generator" in obj else obj
    state = {k: v.numpy() for k, v in sd.items()}
    edit(state)
    sd = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()}
    torch.save({"generator": sd} if "generator" in obj else sd, pt)
    return dst


def assert_load_reports(load, folder: Path, shape: tuple[str, tuple, tuple], missing: str) -> None:
    """`load(folder)` raises one LoadError naming the shape mismatch `(key, model shape, weights
    shape)` (MLX parameter names and MLX layout) and the missing MLX key together."""
    import pytest

    from mlx_impl.loading import LoadError

    with pytest.raises(LoadError) as err:
        load(folder)
    msg = str(err.value)
    key, model_shape, weights_shape = shape
    assert f"{key}: model {model_shape} vs weights {weights_shape}" in msg, msg
    assert f"missing 1: {missing}" in msg, msg
