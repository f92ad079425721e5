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
keys are an error) and records the taps named in `mlx_impl/wav2vec2/model.py` with forward hooks
that are removed after every call, converting (B, C, T) conv outputs to channels-last.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
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

from reference.checkpoints import save_pretrained_atomically

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
    model, info = Wav2Vec2ForCTC.from_pretrained(str(folder), attn_implementation="eager",
                                                 output_loading_info=True)
    bad = {k: v for k, v in info.items() if v}
    if bad:
        raise ValueError(f"{folder}: transformers reports loading problems {bad}")
    return model.float().eval()


class Wav2Vec2Reference:
    """Callable: {"audio": (N,) float32 16 kHz} -> taps (numpy, channels-last, execution order)."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.model = load_model(self.folder)
        self.features = feature_extractor()
        self.tokenizer = tokenizer(self.folder)
        self.config = self.model.config.to_dict()
        self.versions = versions()

    def _hooks(self, taps: dict) -> list:
        w = self.model.wav2vec2

        def put(name: str, channels_last: bool = False):
            def hook(_module, _inputs, output):
                out = output[0] if isinstance(output, tuple) else output
                if channels_last:
                    out = out.transpose(1, 2)  # (B, C, T) -> (B, T, C)
                taps[name] = out.detach().float().numpy().copy()
            return hook

        h = [layer.register_forward_hook(put(f"feature_extractor.conv_layers.{i}", True))
             for i, layer in enumerate(w.feature_extractor.conv_layers)]
        h.append(w.feature_projection.register_forward_hook(put("feature_projection")))
        h.append(w.encoder.pos_conv_embed.register_forward_hook(put("encoder.pos_conv_embed")))
        h.append(w.encoder.layer_norm.register_forward_hook(put("encoder.layer_norm")))
        for i, layer in enumerate(w.encoder.layers):
            p = f"encoder.layers.{i}"
            h.append(layer.attention.register_forward_hook(put(f"{p}.attention")))
            h.append(layer.feed_forward.register_forward_hook(put(f"{p}.feed_forward")))
            h.append(layer.register_forward_hook(put(p)))
        return h

    def input_values(self, audio: np.ndarray) -> np.ndarray:
        if audio.ndim != 1 or audio.dtype != np.float32:
            raise ValueError(f"expected mono float32 audio (N,), got {audio.dtype} {audio.shape}")
        return self.features(audio, sampling_rate=16000, return_tensors="np")["input_values"]

    @torch.no_grad()
    def __call__(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        taps: dict[str, np.ndarray] = {}
        iv = self.input_values(np.asarray(inputs["audio"]))
        taps["input_values"] = iv.astype(np.float32)
        hooks = self._hooks(taps)
        try:
            logits = self.model(torch.from_numpy(iv)).logits
        finally:
            for handle in hooks:
                handle.remove()
        taps["logits"] = logits.float().numpy().copy()
        return taps

    def decode(self, ids, skip_special_tokens: bool = False, offsets: bool = False):
        """The transformers tokenizer's decode of one greedy path (frame ids)."""
        ids = [int(i) for i in ids]
        if not offsets:
            return self.tokenizer.decode(ids, skip_special_tokens=skip_special_tokens)
        return self.tokenizer.decode(ids, skip_special_tokens=skip_special_tokens,
                                     output_char_offsets=True, output_word_offsets=True)
