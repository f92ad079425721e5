"""Reference adapter for Parakeet: transformers `ParakeetForCTC` / `ParakeetForRNNT` /
`ParakeetForTDT` with seeded random weights.

Upstream: transformers 5.24.0 (`models/parakeet`: modeling, generation, feature extraction),
torch 2.13.0, CPU, float32, eval mode, eager attention.

Weights: no checkpoint is downloaded. `build_checkpoint(config, seed, vocab)` builds the model
under `torch.manual_seed(seed)` (transformers' own initialisation), then, from a generator seeded
with `seed`, replaces upstream's small init (std 0.02: the front end's output then hardly
depends on the input, so the encoder output is nearly the same at every frame and greedy
decoding emits one class forever, which tests nothing) and perturbs what upstream initialises
to constants (a port that swapped or ignored those would still match):
- every linear and conv weight N(0, g^2 / fan_in), g = sqrt(2) for the ReLU front end, else 1;
  the prediction-network embedding N(0, 1); the LSTM keeps torch's U(-1/sqrt(H), 1/sqrt(H));
- every LayerNorm and batch-norm gain 1 + N(0, 0.1^2), every bias N(0, 0.05^2), the batch
  norms' running mean N(0, 0.1^2) and variance U(0.5, 1.5);
- deep encoders (more than 2 layers: the 0.6b configs' 24) draw the output projection of
  every residual branch (feed-forward `linear2`, attention `o_proj`, conv `pointwise_conv2`)
  with gain `residual_gain(config)` = 0.15 instead of 1. At unit gain each of the 24 conformer
  layers mixes in its attention's average over frames and its nonlinearities' per-channel
  offsets, so the part of the encoder output that varies over time fell from 0.65 of its RMS
  after the front end to 0.145 at the last layer (fox, first 0.5 s), and the transducers'
  joint saw nearly the same frame at every step: parakeet-tdt/rnnt-0.6b emitted only blanks and
  one duration, parakeet-ctc-0.6b one class in every frame. Measured on parakeet-tdt-0.6b's
  case (2026-12-05): gain 0.5 -> 0.154, 0.29 (sqrt(2/24)) -> 0.31 and still one duration,
  0.15 -> 0.50 with tokens of two ids and durations 1 and 3, 0.08 -> 0.56 but a token looping
  on duration 0 to the length limit. Centring every branch on noise (its mean over the frames
  of a calibration input subtracted) was tried first: 0.134, no better. The 2-layer tiny
  configs keep gain 1 (their last layer varies by 0.63);
- the joint bias favours blank (+`blank_bias(config)`: 2.75 for the tiny configs, tuned there so
  that blanks, emissions and all durations occur; 2.0 for the 0.6b configs, where 2.75 left
  every step blank at gain 0.15 and 2.0 gives blanks, two tokens and durations 0, 1, 3 on the
  fox case) and lowers every TDT duration logit by the same
  amount (DURATION_BIAS: the argmax over durations is unchanged, but the token block stays the
  larger one, because upstream's generate() emits the argmax of the concatenated
  token+duration logits as the token).
The model is written with `save_pretrained` (config.json + model.safetensors) plus vocab.json
(a list of pieces) into a cache folder outside the repository, keyed by a hash of (config,
seed, vocab, init version, torch and transformers versions). The MLX side reads that folder
with our converter.

`ParakeetReference(folder)` loads it back with `from_pretrained` (missing or unexpected keys are
an error) and records the taps it is given (the spec's list: encoder submodule paths, hooked
through `hook_taps`), then the heads' outputs and `greedy()`'s.
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
    ParakeetCTCConfig,
    ParakeetFeatureExtractor,
    ParakeetForCTC,
    ParakeetForRNNT,
    ParakeetForTDT,
    ParakeetRNNTConfig,
    ParakeetTDTConfig,
)

from reference.checkpoints import from_pretrained_strict, save_pretrained_atomically
from reference.hooks import hook_taps

INIT_VERSION = 4  # bump when the perturbation below changes (part of the cache key)
NORM_GAIN_STD = 0.1
BIAS_STD = 0.05
RELU_GAIN = 2 ** 0.5  # front-end convs feed ReLUs
BLANK_BIAS = 2.75  # tuned on the tiny configs: blanks, emissions and all durations occur
BLANK_BIAS_DEEP = 2.0  # the 24-layer configs, with DEEP_RESIDUAL_GAIN (see the docstring)
DURATION_BIAS = -3.0
DEEP_RESIDUAL_GAIN = 0.15  # residual-branch output projections of encoders deeper than 2 layers
RESIDUAL_BRANCH_OUTPUTS = ("linear2.weight", "o_proj.weight", "pointwise_conv2.weight")


def _deep(config: Mapping) -> bool:
    return config["encoder_config"]["num_hidden_layers"] > 2


def residual_gain(config: Mapping) -> float:
    """Gain of the encoder's residual-branch output projections (the docstring says why)."""
    return DEEP_RESIDUAL_GAIN if _deep(config) else 1.0


def blank_bias(config: Mapping) -> float:
    """What the joint's blank logit is raised by (the docstring says why)."""
    return BLANK_BIAS_DEEP if _deep(config) else BLANK_BIAS

_CLASSES = {"parakeet_ctc": (ParakeetCTCConfig, ParakeetForCTC),
            "parakeet_rnnt": (ParakeetRNNTConfig, ParakeetForRNNT),
            "parakeet_tdt": (ParakeetTDTConfig, ParakeetForTDT)}


def default_cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mlx-audio-parity" / "parakeet"


def versions() -> dict:
    return {"torch": torch.__version__, "transformers": transformers.__version__}


def model_config(config: Mapping):
    cfg_cls, _ = _CLASSES[config["model_type"]]
    return cfg_cls(**{k: v for k, v in config.items() if k != "model_type"})


def _perturb(model: torch.nn.Module, config: Mapping, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)

    def randn(shape, std):
        return std * torch.randn(shape, generator=gen)

    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim >= 2 and not name.startswith("decoder.lstm") and "embedding" not in name:
                fan_in = int(np.prod(p.shape[1:]))  # linears and convs: unit gain
                gain = RELU_GAIN if name.startswith("encoder.subsampling.layers") else 1.0
                if name.startswith("encoder.layers.") and name.endswith(RESIDUAL_BRANCH_OUTPUTS):
                    gain = residual_gain(config)
                p.copy_(randn(p.shape, gain / fan_in ** 0.5))
            elif name.endswith(".bias"):
                p.copy_(randn(p.shape, BIAS_STD))
            elif ".norm" in name and name.endswith(".weight"):  # layer and batch norm gains
                p.copy_(1 + randn(p.shape, NORM_GAIN_STD))
        for name, buf in model.named_buffers():
            if name.endswith("running_mean"):
                buf.copy_(randn(buf.shape, 0.1))
            elif name.endswith("running_var"):
                buf.copy_(0.5 + torch.rand(buf.shape, generator=gen))
        if config["model_type"] == "parakeet_ctc":
            return
        emb = model.decoder.embedding.weight
        emb.copy_(randn(emb.shape, 1.0))
        bound = config["decoder_hidden_size"] ** -0.5  # torch's own LSTM init
        for name, w in model.decoder.lstm.named_parameters():
            if name.startswith("weight"):
                w.copy_((2 * torch.rand(w.shape, generator=gen) - 1) * bound)
        bias = model.joint.head.bias
        b = bias.clone()
        b[config["blank_token_id"]] += blank_bias(config)
        b[config["vocab_size"]:] += DURATION_BIAS  # TDT only (an empty slice for RNN-T)
        bias.copy_(b)


def checkpoint_key(config: Mapping, seed: int, vocab: list[str]) -> str:
    blob = json.dumps({"config": dict(config), "seed": seed, "vocab": list(vocab),
                       "init": INIT_VERSION, "gains": [NORM_GAIN_STD, BIAS_STD, RELU_GAIN,
                                                       BLANK_BIAS, DURATION_BIAS,
                                                       BLANK_BIAS_DEEP, DEEP_RESIDUAL_GAIN],
                       **versions()}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def build_model(config: Mapping, seed: int):
    """The seeded, perturbed model in eval mode (not saved)."""
    torch.manual_seed(seed)
    _, model_cls = _CLASSES[config["model_type"]]
    model = model_cls(model_config(config)).eval()
    _perturb(model, config, seed)
    return model


def build_checkpoint(config: Mapping, seed: int, vocab: list[str],
                     cache_root: Path | None = None) -> Path:
    """The folder of a seeded random Parakeet model (built once, then reused from the cache)."""
    root = Path(cache_root) if cache_root is not None else default_cache_root()
    kind = config["model_type"].split("_")[1]
    width = config["encoder_config"]["hidden_size"]
    folder = root / f"{kind}-{width}h-seed{seed}-{checkpoint_key(config, seed, vocab)}"
    if (folder / "model.safetensors").is_file() and (folder / "vocab.json").is_file():
        return folder
    if len(vocab) != config["vocab_size"]:
        raise ValueError(f"vocab has {len(vocab)} pieces but vocab_size is {config['vocab_size']}")
    model = build_model(config, seed)
    return save_pretrained_atomically(model, folder, {
        "vocab.json": json.dumps(list(vocab), ensure_ascii=False),
        "provenance.json": json.dumps(
            {"generator": "reference.parakeet.build_checkpoint", "seed": seed, "init": INIT_VERSION,
             "config": dict(config), **versions()}, indent=1),
    })


def feature_extractor(n_mels: int) -> ParakeetFeatureExtractor:
    """The released checkpoints' preprocessor settings (upstream defaults) with `n_mels` bins."""
    return ParakeetFeatureExtractor(feature_size=n_mels, sampling_rate=16000, hop_length=160,
                                    n_fft=512, win_length=400, preemphasis=0.97)


def features(audio: np.ndarray, n_mels: int) -> tuple[np.ndarray, np.ndarray]:
    """(input_features (1, T, n_mels) float32, attention_mask (1, T) bool) for one clip."""
    if audio.ndim != 1 or audio.dtype != np.float32:
        raise ValueError(f"expected mono float32 audio (N,), got {audio.dtype} {audio.shape}")
    out = feature_extractor(n_mels)(audio, sampling_rate=16000, return_tensors="pt",
                                    return_attention_mask=True)
    return out["input_features"].numpy(), out["attention_mask"].numpy().astype(bool)


def load_model(folder: Path):
    config = json.loads((Path(folder) / "config.json").read_text())
    _, model_cls = _CLASSES[config["model_type"]]
    return from_pretrained_strict(model_cls, folder)


def greedy(model, feats: np.ndarray, mask: np.ndarray) -> dict[str, np.ndarray]:
    """Upstream generate() on one clip: CTC {"tokens" (1, T')}; transducers {"tokens",
    "durations" (1, S + 1), "joint" (S, n_out): the joint output at every step}."""
    x, m = torch.from_numpy(feats), torch.from_numpy(mask)
    if model.config.model_type == "parakeet_ctc":
        return {"tokens": model.generate(input_features=x, attention_mask=m).numpy()
                .astype(np.int64)}
    joint: list[np.ndarray] = []
    handle = model.joint.register_forward_hook(
        lambda _mod, _inp, out: joint.append(out.detach().float().numpy().reshape(-1)))
    try:
        out = model.generate(input_features=x, attention_mask=m)
    finally:
        handle.remove()
    tokens = out.sequences.numpy().astype(np.int64)
    if (tokens >= model.config.vocab_size).any():
        raise RuntimeError("upstream generate() emitted a duration index as a token (it takes the "
                           "argmax over the concatenated token+duration logits); these weights "
                           "hit that upstream quirk")
    return {"joint": np.stack(joint), "tokens": tokens,
            "durations": out.durations.numpy().astype(np.int64)}


def processor(vocab: list[str], n_mels: int, decoder_type: str):
    """Upstream `ParakeetProcessor` over `vocab` (index = id, blank last), built in code (no
    download): a word-level `tokenizers` model over the pieces with the Metaspace decoder, so
    pieces decode as the released SentencePiece tokenizers' do ("▁" -> space)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import ParakeetProcessor, ParakeetTokenizer

    tok = Tokenizer(models.WordLevel({p: i for i, p in enumerate(vocab)}, unk_token=vocab[0]))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always")
    tokenizer = ParakeetTokenizer(tokenizer_object=tok, unk_token=vocab[0], pad_token=vocab[-1])
    return ParakeetProcessor(feature_extractor(n_mels), tokenizer, blank_token=vocab[-1],
                             decoder_type=decoder_type)


def token_timestamps(folder: Path, sequences: np.ndarray, durations: np.ndarray) -> list[dict]:
    """Upstream's token timestamps for one transducer `generate()` output (sequences and
    durations (1, S + 1)): `ParakeetProcessor.decode(..., durations=)` -> [{"token": text,
    "start": s, "end": s}], frame = cumsum(durations) - durations, times = frame * 8 * 10 ms;
    TDT spans its duration and puts punctuation at the previous token's end, RNN-T spans 1."""
    config = json.loads((Path(folder) / "config.json").read_text())
    vocab = json.loads((Path(folder) / "vocab.json").read_text())
    kind = {"parakeet_tdt": "tdt", "parakeet_rnnt": "rnnt"}[config["model_type"]]
    proc = processor(vocab, config["encoder_config"]["num_mel_bins"], kind)
    _, stamps = proc.decode(torch.from_numpy(np.asarray(sequences)),
                            durations=torch.from_numpy(np.asarray(durations)),
                            skip_special_tokens=True)
    return stamps[0]


# taps recorded here rather than hooked: the features, the heads' outputs, `greedy()`'s
RECORDED = ("features", "logits", "encoder_projector", "joint", "tokens", "durations")


class ParakeetReference:
    """Callable: {"audio": (N,) float32 16 kHz} -> taps (numpy, execution order): features, the
    encoder taps, CTC logits or the projected encoder output, then `greedy()`'s outputs."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.model = load_model(self.folder)
        self.config = self.model.config.to_dict()
        self.kind = self.config["model_type"]
        self.n_mels = self.config["encoder_config"]["num_mel_bins"]
        self.versions = versions()

    @torch.no_grad()
    def __call__(self, inputs: Mapping[str, np.ndarray],
                 taps: Sequence[str] = ()) -> dict[str, np.ndarray]:
        """`taps`: names to hook beyond `RECORDED`: the encoder's, submodule paths of the
        model (`encoder.subsampling`, `encoder.layers.{i}[.feed_forward1|...]`)."""
        out: dict[str, np.ndarray] = {}
        feats, mask = features(np.asarray(inputs["audio"]), self.n_mels)
        out["features"] = feats
        with hook_taps(self.model, {t: t for t in taps if t not in RECORDED}, out):
            x, m = torch.from_numpy(feats), torch.from_numpy(mask)
            if self.kind == "parakeet_ctc":
                out["logits"] = self.model(input_features=x, attention_mask=m).logits.numpy()
            else:
                enc = self.model.get_audio_features(input_features=x, attention_mask=m)
                out["encoder_projector"] = enc.pooler_output.numpy()
        out |= greedy(self.model, feats, mask)
        return out
