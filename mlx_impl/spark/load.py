"""Load Spark-TTS's parts from a model folder in the released layout:
`config.yaml`, `BiCodec/{config.yaml, model.safetensors}`, `wav2vec2-large-xlsr-53/`
(a transformers `Wav2Vec2Model` folder) and `LLM/` (a transformers `Qwen2ForCausalLM` folder).
Every part is set strictly (`mlx_impl.loading.load_strict`); nothing is downloaded.
"""

from __future__ import annotations

import json
from pathlib import Path

import mlx.core as mx

from mlx_impl.loading import LoadError, as_dtype, load_strict, require_parts
from weights.hf_safetensors import read_safetensors

W2V = "wav2vec2-large-xlsr-53"


def read_yaml(path: Path) -> dict:
    try:
        import yaml
    except ImportError as e:  # pragma: no cover - pyyaml is installed by `make setup`
        raise LoadError(f"reading {path} needs pyyaml; pip install pyyaml") from e
    if not path.is_file():
        raise LoadError(f"{path} is missing; a Spark-TTS model folder has it")
    return yaml.safe_load(path.read_text())


def load_bicodec(folder: str | Path, dtype: str | mx.Dtype = "float32"):
    from mlx_impl.spark.bicodec import BiCodec
    from mlx_impl.spark.config import BiCodecConfig
    from mlx_impl.spark.convert import convert_bicodec

    folder = Path(folder)
    cfg = BiCodecConfig.from_dict(read_yaml(folder / "config.yaml"))
    state = read_safetensors(folder / "model.safetensors")
    return load_strict(BiCodec(cfg), convert_bicodec(state), dtype, what="BiCodec")


def load_wav2vec2(folder: str | Path, dtype: str | mx.Dtype = "float32"):
    from mlx_impl.spark.convert import convert_wav2vec2
    from mlx_impl.wav2vec2.config import Wav2Vec2Config
    from mlx_impl.wav2vec2.model import Wav2Vec2Model

    folder = Path(folder)
    config = json.loads((folder / "config.json").read_text())
    cfg = Wav2Vec2Config.from_dict(config)
    state = read_safetensors(folder / "model.safetensors")
    return load_strict(Wav2Vec2Model(cfg), convert_wav2vec2(state), dtype,
                       what="wav2vec2 (XLSR features)")


def load_codec(path: str | Path, dtype: str | mx.Dtype = "float32"):
    """The BiCodec tokenizer (`tokenizer.SparkCodec`) of a model folder."""
    from mlx_impl.spark.tokenizer import SparkCodec

    folder = require_parts(path, "a Spark-TTS", {"BiCodec": "config.yaml + model.safetensors",
                                                W2V: "a Wav2Vec2Model save_pretrained folder"})
    return SparkCodec(read_yaml(folder / "config.yaml"), load_wav2vec2(folder / W2V, dtype),
                      load_bicodec(folder / "BiCodec", dtype), as_dtype(dtype))


def load_tts(path: str | Path, dtype: str | mx.Dtype = "float32"):
    """`SparkTTS` of a model folder (`LLM/` + the codec parts)."""
    from mlx_impl.spark.lm import load_lm
    from mlx_impl.spark.tts import SparkTTS

    folder = require_parts(path, "a Spark-TTS", {"LLM": "a Qwen2ForCausalLM save_pretrained "
                                                "folder", "BiCodec": "config.yaml + "
                                                "model.safetensors"})
    return SparkTTS(load_lm(folder / "LLM", dtype), load_codec(folder, dtype))
