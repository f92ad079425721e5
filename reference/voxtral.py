"""Reference adapter for Voxtral: transformers `VoxtralForConditionalGeneration`, seeded weights.

Upstream: transformers 5.24.0 (`VoxtralForConditionalGeneration`, `WhisperFeatureExtractor` with
128 bins as `VoxtralProcessor` configures it), torch 2.13.0, CPU, float32, eager attention.

Weights: no checkpoint is downloaded (the real one is 9 GB of bf16 and gated behind the hub).
`build_checkpoint(config, seed)` builds `VoxtralForConditionalGeneration(VoxtralConfig(**config))`
under `torch.manual_seed(seed)` (transformers' own initialisation), then perturbs every norm gain
(1 + N(0, 0.1^2)) and bias (N(0, 0.05^2)) from a generator seeded with `seed`, because upstream
initialises those to exactly 1 and 0 and a port that swapped or ignored them would still match.
Then the language model's input embedding is re-drawn N(0, s^2) with s = initializer_range^2 x
hidden_size, the per-element scale of an attention or MLP branch's output at transformers' init
(two stacked N(0, initializer_range^2) projections of a unit-scale input). At the upstream
N(0, 0.02^2) a 3072-wide token entered with norm ~1 against branches adding ~1 per element, so
every text position saw nearly the same (audio-averaged) hidden state: voxtral-mini-3b's
teacher-forced argmax was one token at 18 of 18 positions (fox) and 12 of 18 (librispeech).
s is 1.23 for mini-3b and 0.0256 for the 64-wide test-tiny (where upstream's 0.02 was already
that scale).
It is written with `save_pretrained` (config.json + safetensors in the published on-disk key
layout) into a cache folder outside the repository, keyed by (config, seed, versions). The MLX
side reads the same files through `weights.voxtral.load`.

Tokenizer: the real model uses mistral-common's Tekken tokenizer from the hub, which is not
available offline, so both sides are fed token ids. `transcription_prompt(n)` is the layout
mistral-common's `encode_transcription` produces without a language:
`<s> [INST] [BEGIN_AUDIO] [AUDIO] * n [/INST] [TRANSCRIBE]` with Tekken's special ids.

`VoxtralReference(folder)` loads the folder back with `from_pretrained` (missing or unexpected
keys are an error), records the taps it is given (the names of `mlx_impl/voxtral/model.py`,
hooked through `hook_taps` at the paths of `tables`) and runs `generate(do_sample=False)`.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
import transformers
from transformers import VoxtralConfig, VoxtralForConditionalGeneration, WhisperFeatureExtractor

from reference.checkpoints import from_pretrained_strict, save_pretrained_atomically
from reference.hooks import channels_last, hook_taps, numpy_of
from weights.whisper_audio import HOP_LENGTH, SAMPLE_RATE

INIT_VERSION = 2  # bump when the initialisation below changes (it is part of the cache key)
NORM_GAIN_STD = 0.1
BIAS_STD = 0.05

# Tekken special token ids (mistral-common SpecialTokens order, as in the published tekken.json)
BOS, INST, INST_END, AUDIO, BEGIN_AUDIO, TRANSCRIBE = 1, 3, 4, 24, 25, 34


def transcription_prompt(n_audio_tokens: int) -> list[int]:
    return [BOS, INST, BEGIN_AUDIO] + [AUDIO] * n_audio_tokens + [INST_END, TRANSCRIBE]


def default_cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mlx-audio-parity" / "voxtral"


def versions() -> dict:
    return {"torch": torch.__version__, "transformers": transformers.__version__}


def _perturb(model: torch.nn.Module, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1 + NORM_GAIN_STD * torch.randn(p.shape, generator=gen))
            elif name.endswith(".bias"):
                p.copy_(BIAS_STD * torch.randn(p.shape, generator=gen))
        text = model.config.text_config
        emb = model.get_input_embeddings().weight
        emb.copy_(text.initializer_range ** 2 * text.hidden_size
                  * torch.randn(emb.shape, generator=gen))


def checkpoint_key(config: Mapping, seed: int) -> str:
    blob = json.dumps({"config": dict(config), "seed": seed, "init": INIT_VERSION, **versions()},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def build_checkpoint(config: Mapping, seed: int, cache_root: Path | None = None) -> Path:
    """The folder of a seeded random Voxtral (built once, then reused from the cache)."""
    root = Path(cache_root) if cache_root is not None else default_cache_root()
    folder = root / f"{config['text_config']['hidden_size']}h-seed{seed}-{checkpoint_key(config, seed)}"
    if (folder / "config.json").is_file():
        return folder
    torch.manual_seed(seed)
    model = VoxtralForConditionalGeneration(VoxtralConfig(**json.loads(json.dumps(config)))).eval()
    _perturb(model, seed)
    save_pretrained_atomically(model, folder, {"provenance.json": json.dumps(
        {"generator": "reference.voxtral.build_checkpoint", "seed": seed, "init": INIT_VERSION,
         "config": dict(config), **versions()}, indent=1)})
    del model
    gc.collect()
    return folder


def load_model(folder: Path) -> VoxtralForConditionalGeneration:
    return from_pretrained_strict(VoxtralForConditionalGeneration, folder, dtype=torch.float32)


def feature_extractor(n_mels: int) -> WhisperFeatureExtractor:
    return WhisperFeatureExtractor(feature_size=n_mels, sampling_rate=SAMPLE_RATE)


# taps not hooked: recorded here (mel, logits, generated) or derived by the spec (the argmax)
RECORDED = ("mel", "logits", "logits.argmax", "generated")

# tap-name prefix -> `VoxtralForConditionalGeneration` submodule path prefix (the tap names are
# the MLX modules', Whisper's for the encoder)
_PATHS = {"encoder.conv": "model.audio_tower.conv", "encoder.blocks.": "model.audio_tower.layers.",
          "encoder.ln_post": "model.audio_tower.layer_norm",
          "projector": "model.multi_modal_projector", "language_model.": "model.language_model."}


def tables(taps: Sequence[str]) -> tuple[dict, dict]:
    """`hook_taps` tables (outputs, inputs): `encoder.embed` / `language_model.embed` are the
    inputs of the first encoder / decoder layer (no module returns them); an encoder block's
    `.attn` is its `self_attn`, its `.mlp` its `fc2`; the convs are made channels-last."""
    out, inp = {}, {}
    for t in taps:
        if t.endswith(".embed"):
            first = "model.audio_tower" if t.startswith("encoder.") else "model.language_model"
            inp[f"{first}.layers.0"] = (t, numpy_of)
            continue
        prefix = next((p for p in _PATHS if t.startswith(p)), None)
        if prefix is None:
            raise KeyError(f"tap {t!r} has no Voxtral module; known prefixes {sorted(_PATHS)}")
        path = _PATHS[prefix] + t[len(prefix):]
        if t.startswith("encoder.blocks."):
            path = path.replace(".attn", ".self_attn").replace(".mlp", ".fc2")
        out[path] = (t, channels_last if t.startswith("encoder.conv") else numpy_of)
    return out, inp


class VoxtralReference:
    """Callable: {"audio": (N,) float32 16 kHz, "prompt": (1, P) ids, "teacher": (1, K) ids}
    -> taps (numpy, MLX layout, execution order) and greedy tokens."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.model = load_model(self.folder)
        a = self.model.config.audio_config
        self.n_frames = 2 * a.max_source_positions
        self.features = feature_extractor(a.num_mel_bins)
        self.config = self.model.config.to_dict()
        self.versions = versions()

    def input_features(self, audio: np.ndarray) -> np.ndarray:
        """(n_chunks, n_mels, n_frames), as VoxtralProcessor._retrieve_input_features."""
        if audio.ndim != 1 or audio.dtype != np.float32:
            raise ValueError(f"expected mono float32 audio (N,), got {audio.dtype} {audio.shape}")
        f = self.features(audio, sampling_rate=SAMPLE_RATE, padding=True, truncation=False,
                          pad_to_multiple_of=self.n_frames * HOP_LENGTH, return_tensors="np")
        feats = f["input_features"]  # (1, n_mels, n_chunks * n_frames)
        n_mels = feats.shape[1]
        return np.ascontiguousarray(feats.reshape(n_mels, -1, self.n_frames).transpose(1, 0, 2))

    @torch.no_grad()
    def __call__(self, inputs: Mapping[str, np.ndarray], max_new_tokens: int,
                 taps: Sequence[str] = ()) -> dict:
        """`taps`: names to hook beyond `RECORDED` (`tables`)."""
        feats = self.input_features(np.asarray(inputs["audio"]))
        rec: dict[str, np.ndarray] = {"mel": feats.transpose(0, 2, 1).copy()}  # (B, T, C)
        prompt = np.asarray(inputs["prompt"], dtype=np.int64)
        teacher = np.asarray(inputs["teacher"], dtype=np.int64)
        ids = torch.from_numpy(np.concatenate([prompt, teacher], axis=1))
        hooked, pre = tables([t for t in taps if t not in RECORDED])
        with hook_taps(self.model, hooked, rec, inputs=pre):
            # logits of the text after the audio: [/INST], [TRANSCRIBE] and the teacher tokens
            keep = 2 + teacher.shape[1]
            out = self.model(input_ids=ids, input_features=torch.from_numpy(feats),
                             logits_to_keep=keep)
        rec["logits"] = out.logits.float().numpy().copy()
        del out
        gen = self.model.generate(input_ids=torch.from_numpy(prompt),
                                  input_features=torch.from_numpy(feats), do_sample=False,
                                  max_new_tokens=max_new_tokens,
                                  eos_token_id=self.model.config.text_config.eos_token_id,
                                  pad_token_id=self.model.config.text_config.eos_token_id)
        rec["generated"] = gen[:, prompt.shape[1]:].numpy().astype(np.int64)
        return rec

    @torch.no_grad()
    def transcribe_tokens(self, audio: np.ndarray, max_new_tokens: int) -> list[int]:
        """Greedy new tokens for `audio` with the transcription prompt (benchmarks)."""
        feats = self.input_features(audio)
        n_tokens = feats.shape[0] * (self.n_frames // 2) // 4
        prompt = torch.tensor([transcription_prompt(n_tokens)])
        eos = self.model.config.text_config.eos_token_id
        gen = self.model.generate(input_ids=prompt, input_features=torch.from_numpy(feats),
                                  do_sample=False, max_new_tokens=max_new_tokens,
                                  eos_token_id=eos, pad_token_id=eos)
        return gen[0, prompt.shape[1]:].tolist()
