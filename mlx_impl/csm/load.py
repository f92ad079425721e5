"""Load CSM / Marvis from disk.

`load(path, dtype) -> (CsmModel, MimiModel)`: a transformers `CsmForConditionalGeneration.
save_pretrained` folder (config.json + model.safetensors; the Mimi codec's weights are in it
under `codec_model.*`, as the published checkpoints hold them), read by
`weights.hf_safetensors.read_pretrained` (numpy), split by `convert.split`, set strictly
(`mlx_impl.loading.load_strict`: every key and shape checked). The codec is built from
`codec_config` through `weights.mimi.from_transformers` + `mlx_impl.mimi.convert`, in float32
whatever `dtype` (its parity is measured in fp32).
`load_tts(path, dtype) -> CsmTTS`. Model ids resolve to such a folder in `mlx_impl.tts.models`.
"""

from __future__ import annotations

from pathlib import Path

import mlx.core as mx

from mlx_impl.csm.config import CsmConfig
from mlx_impl.csm.convert import split
from mlx_impl.csm.model import CsmModel
from mlx_impl.loading import LoadError, as_dtype, checkpoint_path, load_strict
from mlx_impl.mimi.config import MimiConfig
from mlx_impl.mimi.convert import convert as convert_mimi
from mlx_impl.mimi.model import MimiModel
from weights.hf_safetensors import read_pretrained
from weights.mimi import from_transformers

WRITES = "transformers `CsmForConditionalGeneration.save_pretrained` (config.json + " \
         "model.safetensors)"


def load(path: str | Path, dtype: str | mx.Dtype = "float32") -> tuple[CsmModel, MimiModel]:
    folder = checkpoint_path(path, "CSM", WRITES)
    try:
        config, state = read_pretrained(folder, "CsmForConditionalGeneration", "csm", LoadError)
        cfg = CsmConfig.from_dict(config)
        params, codec_state = split(state)
    except (FileNotFoundError, KeyError, ValueError) as e:
        raise LoadError(f"{folder}: {e}") from e
    del state
    model = load_strict(CsmModel(cfg, as_dtype(dtype)), params, dtype, what="CSM", consume=True)
    mcfg = MimiConfig.from_dict(cfg.codec_config)
    mimi = load_strict(MimiModel(mcfg, mx.float32),
                       convert_mimi(from_transformers(codec_state), mcfg), "float32",
                       what="CSM codec (Mimi)")
    return model, mimi


def load_tts(path: str | Path, dtype: str | mx.Dtype = "float32"):
    from mlx_impl.csm.tts import CsmTTS

    return CsmTTS(*load(path, dtype))
