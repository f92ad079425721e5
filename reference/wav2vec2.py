"""Reference adapter for Wav2Vec2 CTC: transformers `Wav2Vec2ForCTC` with seeded random weights.

Upstream: transformers 5.24.0 (`Wav2Vec2ForCTC`, `Wav2Vec2FeatureExtractor`,
`Wav2Vec2CTCTokenizer`), torch 2.13.0, CPU, float32, eval mode, eager attention.

Weights: no checkpoint is downloaded. `build_checkpoint(config, seed)` builds
`Wav2Vec2ForCTC(Wav2Vec2Config(**config))` under `torch.manual_seed(seed)` (transformers' own
initialisation), then perturbs every norm gain (1 + N(0, 0.1^2)) and every bias (N(0, 0.05^2))
from a generator seeded with `seed`, because upstream initialises those to exactly 1 and 0 and a
port that swapped or ignored them would still match. The model is written with `save_pretrained`
(config.json + model.safetensors, the weight-normed positional conv stored as transformers 5
does, `parametrizations.weight.original0/1`) plus the CTC vocab.json, into a cache folder outside
the repository, keyed by a hash of (config, seed, torch and transformers versions). The MLX side
reads that folder through `weights.wav2vec2.load`: the same files, converted by our converter.

`Wav2Vec2Reference(folder)` loads the folder back with `from_pretrained` (missing or unexpected
keys are an error) and records the taps it is given (the names of `mlx_impl/wav2vec2/model.py`,
submodule paths of `model.wav2vec2`) through `hook_taps`, conv outputs made channels-last.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
import transformers
from transformers import (
    Wav2Vec2Config,
    Wav2Vec2CTCTokenizer,
    Wav2Vec2FeatureExtractor,
    Wav2Vec2ForCTC,
)

from reference.checkpoints import from_pretrained_strict, save_pretrained_atomically
from reference.hooks import channels_last, hook_taps, numpy_of

INIT_VERSION = 1  # bump when the perturbation below changes (it is part of the cache key)
NORM_GAIN_STD = 0.1
BIAS_STD = 0.05


def default_cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mlx-audio-parity" / "wav2vec2"


def versions() -> dict:
    return {"torch": torch.__version__, "transformers": transformers.__version__}


def _perturb(model: Wav2Vec2ForCTC, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("layer_norm.weight"):
                p.copy_(1 + NORM_GAIN_STD * torch.randn(p.shape, generator=gen))
            elif name.endswith(".bias"):
                p.copy_(BIAS_STD * torch.randn(p.shape, generator=gen))


def checkpoint_key(config: Mapping, seed: int, vocab: Mapping[str, int]) -> str:
    blob = json.dumps({"config": dict(config), "seed": seed, "vocab": dict(vocab),
                       "init": INIT_VERSION, **versions()}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def build_checkpoint(config: Mapping, seed: int, vocab: Mapping[str, int],
                     cache_root: Path | None = None) -> Path:
    """The folder of a seeded random Wav2Vec2ForCTC (built once, then reused from the cache)."""
    root = Path(cache_root) if cache_root is not None else default_cache_root()
    key = checkpoint_key(config, seed, vocab)
    folder = root / f"{config.get('hidden_size', 'w')}h-seed{seed}-{key}"
    if (folder / "model.safetensors").is_file() and (folder / "vocab.json").is_file():
        return folder
    if len(vocab) != config["vocab_size"]:
        raise ValueError(f"vocab has {len(vocab)} tokens but vocab_size is {config['vocab_size']}")
    torch.manual_seed(seed)
    model = Wav2Vec2ForCTC(Wav2Vec2Config(**config)).eval()
    _perturb(model, seed)
    return save_pretrained_atomically(model, folder, {
        "vocab.json": json.dumps(dict(vocab), ensure_ascii=False),
        "provenance.json": json.dumps(
            {"generator": "reference.wav2vec2.build_checkpoint", "seed": seed, "init": INIT_VERSION,
             "config": dict(config), **versions()}, indent=1),
    })


def feature_extractor() -> Wav2Vec2FeatureExtractor:
    """wav2vec2-base-960h's preprocessor settings."""
    return Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0,
                                    do_normalize=True, return_attention_mask=False)


def tokenizer(folder: Path) -> Wav2Vec2CTCTokenizer:
    return Wav2Vec2CTCTokenizer(str(Path(folder) / "vocab.json"))


def load_model(folder: Path) -> Wav2Vec2ForCTC:
    return from_pretrained_strict(Wav2Vec2ForCTC, folder)


# taps not hooked: recorded here (the input, the logits) or derived from them by the spec
RECORDED = ("input_values", "logits", "logits.argmax")


class Wav2Vec2Reference:
    """Callable: {"audio": (N,) float32 16 kHz} -> taps (numpy, channels-last, execution order)."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.model = load_model(self.folder)
        self.features = feature_extractor()
        self.tokenizer = tokenizer(self.folder)
        self.config = self.model.config.to_dict()
        self.versions = versions()

    def input_values(self, audio: np.ndarray) -> np.ndarray:
        if audio.ndim != 1 or audio.dtype != np.float32:
            raise ValueError(f"expected mono float32 audio (N,), got {audio.dtype} {audio.shape}")
        return self.features(audio, sampling_rate=16000, return_tensors="np")["input_values"]

    @torch.no_grad()
    def __call__(self, inputs: Mapping[str, np.ndarray],
                 taps: Sequence[str] = ()) -> dict[str, np.ndarray]:
        """`taps`: names to hook beyond `RECORDED`: submodule paths of `model.wav2vec2` (the
        feature-encoder convs made channels-last)."""
        out: dict[str, np.ndarray] = {}
        iv = self.input_values(np.asarray(inputs["audio"]))
        out["input_values"] = iv.astype(np.float32)
        hooked = {t: (t, channels_last if t.startswith("feature_extractor.") else numpy_of)
                  for t in taps if t not in RECORDED}
        with hook_taps(self.model.wav2vec2, hooked, out):
            logits = self.model(torch.from_numpy(iv)).logits
        out["logits"] = logits.float().numpy().copy()
        return out

    def decode(self, ids, skip_special_tokens: bool = False, offsets: bool = False):
        """The transformers tokenizer's decode of one greedy path (frame ids)."""
        ids = [int(i) for i in ids]
        if not offsets:
            return self.tokenizer.decode(ids, skip_special_tokens=skip_special_tokens)
        return self.tokenizer.decode(ids, skip_special_tokens=skip_special_tokens,
                                     output_char_offsets=True, output_word_offsets=True)
