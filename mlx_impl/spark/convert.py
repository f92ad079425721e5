"""BiCodec and wav2vec2 checkpoints (numpy, torch layout) -> the MLX parameter trees.

BiCodec (`BiCodec/model.safetensors`, spark-tts-lib 0.2.1 `state_dict()`): weight norms
folded first (torch parametrizations `original0` / `original1`, dim 0: `weights.weight_norm`),
then each key through the first matching rule (an unknown key is an error):
- dropped: `postnet.*` (training-only feature predictor), `mel_transformer.spectrogram.window`
  (the Hann window is computed), BatchNorm `num_batches_tracked`, the VQ usage
  statistics `quantizer.cluster_size` (training-only EMA buffer);
- `mel_transformer.mel_scale.fb` -> `mel_fb` (torchaudio's float32 filterbank, used as stored);
- renames: `quantizer.{in,out}_project` -> `quantizer.{in,out}_proj` (`layers.vq_factorized`),
  ECAPA `layerN.se_res2block.j` -> `layerN.blocks.j`, Perceiver feed-forward `.1.0` / `.1.2` ->
  `.1.proj_in` / `.1.proj_out`, wave-generator blocks `block.0/1/2-4` -> `snake1` / `conv_t1` /
  `res_units.0-2` and their residual units `block.0-3` -> `snake1` / `conv1` / `snake2` /
  `conv2` (`mlx_impl.dac.model.ResidualUnit`);
- conv kernels (out, in/groups, k) -> (out, k, in/groups); transposed-conv kernels (in, out, k)
  -> (out, k, in); Snake alphas (1, C, 1) -> (C,).

wav2vec2 (`wav2vec2-large-xlsr-53/`, a transformers `Wav2Vec2Model.save_pretrained`): keys get
the `wav2vec2.` prefix of the CTC layout, go through `weights.wav2vec2.from_transformers` and
`mlx_impl.wav2vec2.convert` (the shared CTC port's converter), and lose the prefix again.
"""

from __future__ import annotations

import re

import numpy as np

from weights.hf_safetensors import apply_rules
from weights.weight_norm import fold_weight_norms

_DROP = re.compile(r"postnet\..*|quantizer\.cluster_size|mel_transformer\.spectrogram\.window|.*\.num_batches_tracked")
_RENAMES = (
    (re.compile(r"quantizer\.in_project\."), "quantizer.in_proj."),
    (re.compile(r"quantizer\.out_project\."), "quantizer.out_proj."),
    (re.compile(r"(layer[234])\.se_res2block\."), r"\1.blocks."),
    (re.compile(r"(perceiver_sampler\.layers\.\d+)\.1\.0\."), r"\1.1.proj_in."),
    (re.compile(r"(perceiver_sampler\.layers\.\d+)\.1\.2\."), r"\1.1.proj_out."),
    (re.compile(r"(decoder\.model\.\d+)\.block\.([234])\.block\.0\."), r"\1.block.\2.snake1."),
    (re.compile(r"(decoder\.model\.\d+)\.block\.([234])\.block\.1\."), r"\1.block.\2.conv1."),
    (re.compile(r"(decoder\.model\.\d+)\.block\.([234])\.block\.2\."), r"\1.block.\2.snake2."),
    (re.compile(r"(decoder\.model\.\d+)\.block\.([234])\.block\.3\."), r"\1.block.\2.conv2."),
    (re.compile(r"(decoder\.model\.\d+)\.block\.0\."), r"\1.snake1."),
    (re.compile(r"(decoder\.model\.\d+)\.block\.1\."), r"\1.conv_t1."),
)
_RES_UNIT = re.compile(r"(decoder\.model\.\d+)\.block\.([234])\.")
_CONV_T = re.compile(r"decoder\.model\.\d+\.conv_t1\.weight")


def _rename(key: str) -> str:
    for pattern, repl in _RENAMES:
        key = pattern.sub(repl, key)
    return _RES_UNIT.sub(lambda m: f"{m.group(1)}.res_units.{int(m.group(2)) - 2}.", key)


def _param(m: re.Match, value: np.ndarray) -> list[tuple[str, np.ndarray]]:
    key = _rename(m.string)
    if key == "mel_transformer.mel_scale.fb":
        return [("mel_fb", value)]
    if key.endswith(".alpha"):
        return [(key, value.reshape(-1))]  # Snake (1, C, 1) -> (C,)
    if value.ndim == 3:
        if _CONV_T.fullmatch(key):
            return [(key, value.transpose(1, 2, 0))]  # torch (in, out, k) -> (out, k, in)
        return [(key, value.transpose(0, 2, 1))]  # torch (out, in, k) -> (out, k, in)
    return [(key, value)]


RULES = ((_DROP, lambda m, v: []), (re.compile(r".*"), _param))


def convert_bicodec(state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return apply_rules(fold_weight_norms(state, dim=0), RULES,
                       "BiCodec weights (spark-tts-lib 0.2.1 BiCodec/model.safetensors)")


def convert_wav2vec2(state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    from mlx_impl.wav2vec2.convert import convert
    from weights.wav2vec2 import from_transformers

    canonical = from_transformers({f"wav2vec2.{k}": v for k, v in state.items()})
    return {k[len("wav2vec2."):]: v for k, v in convert(canonical).items()}
