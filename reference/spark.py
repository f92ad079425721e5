"""Reference adapter for Spark-TTS: `spark-tts-lib` 0.2.1 (SparkAudio's BiCodec) + transformers
`Wav2Vec2Model` (XLSR features) + transformers `Qwen2ForCausalLM` (the LM).

Upstream: spark-tts-lib 0.2.1 (PyPI; `models/bicodec.py` `BiCodec`, `models/audio_tokenizer.py`
`BiCodecTokenizer`, `SparkTTS.py` prompt building), torch 2.13.0, torchaudio 2.11, transformers
5.24.0, CPU, float32. spark-tts-lib is not in .venv: `scripts/setup_spark_refs.sh`
(`make spark-refs`) installs it with `--no-deps` (plus einx, frozendict, omegaconf, antlr4) into
`<cache>/refs/spark` (or $SPARK_REFS), which `spark_modules` puts on sys.path for this adapter
only. The package `__init__` (its hub downloader needs `retrying`) is not run: the package is
registered bare and `spark_tts_lib.models.audio_tokenizer` imported from it. HF_HUB_OFFLINE=1.

Weights: nothing is downloaded. `build_model(preset, seed)` writes the Spark-TTS model folder
layout that `BiCodecTokenizer(model_dir)` and `SparkTTS` read:
- `config.yaml` (sample_rate, ref_segment_duration, latent_hop_length, volume_normalize);
- `BiCodec/config.yaml` + `BiCodec/model.safetensors`: `BiCodec` built from the config's
  modules under `torch.manual_seed(seed)` (upstream's init), then re-drawn from a generator
  seeded `seed + 1` where upstream's init would hide a swapped or ignored parameter or kill the
  signal: every conv / linear bias N(0, 0.05^2) (the Vocos init zeroes them, and a zero bias
  before a layer norm hides any scale error: a SamplingBlock summing two of its three branches
  passed unnoticed); every LayerNorm affine 1 + N(0, 0.1^2) / N(0, 0.1^2); the AdaLayerNorm condition
  projections (upstream: trunc-normal 0.02 weights and zero biases after the Vocos init, so the
  scale is ~0) weights N(0, 0.3^2 / cond_dim), scale bias 1 + N(0, 0.1^2), shift bias
  N(0, 0.1^2); BatchNorm running mean N(0, 0.1^2), running var exp(N(0, 0.2^2)), affine as
  LayerNorm; Snake alphas exp(N(0, 0.3^2)); the Perceiver RMSNorm gain 1 + N(0, 0.1^2).
  `BiCodec.load_from_checkpoint(folder / "BiCodec")` reads it (strict here: a missing or
  unexpected key, which upstream only prints, is an error);
- `wav2vec2-large-xlsr-53/`: a seeded `Wav2Vec2Model` (`save_pretrained`; layer-norm gains and
  biases perturbed as reference.wav2vec2 does) + the feature extractor's preprocessor config;
- `LLM/`: a seeded `Qwen2ForCausalLM` (`save_pretrained`; RMSNorm gains 1 + N(0, 0.1^2)).
All atomically into a cache folder keyed by (preset, seed, init, versions).

Taps (MLX layout, channels last) of `SparkReference.tokenize` / `detokenize`, in execution order:
`wav2vec2.features` (the mean of hidden states 11, 14, 16), `encoder.encoder` (the first Vocos
backbone), `encoder` (after the projection), `quantizer.in_project`, `semantic_tokens`, `mel`,
`speaker.ecapa.layer{1..4}`, `speaker.ecapa.conv` (before the ReLU), `speaker.perceiver`,
`global_tokens`; then `quantizer.detokenize` (z_q after out_project), `speaker.d_vector`,
`prenet.vocos_backbone`, `prenet`, `decoder.model.{i}` and `audio`.
"""

from __future__ import annotations

import gc
import importlib
import json
import math
import types
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
import transformers

from reference.checkpoints import seeded_checkpoint
from reference.hooks import channels_last, hook_taps, numpy_of
from reference.isolated import IsolatedPackage

VERSION = "0.2.1"
INIT = "spark-init-v2"  # bump when the re-draws below change (part of the cache key)
NORM_STD = 0.1
SNAKE_STD = 0.3
BIAS_STD = 0.05


SPARK = IsolatedPackage("spark", "spark_tts_lib", "spark_tts_lib", VERSION, "SPARK_REFS")


def refs_installed() -> bool:
    return SPARK.installed()


def spark_modules() -> types.SimpleNamespace:
    """spark-tts-lib's modules, imported from the isolated folder without the package __init__."""
    SPARK.activate()
    return types.SimpleNamespace(
        bicodec=importlib.import_module("spark_tts_lib.models.bicodec"),
        tokenizer=importlib.import_module("spark_tts_lib.models.audio_tokenizer"),
        audio=importlib.import_module("spark_tts_lib.utils.audio"),
        vocos=importlib.import_module("spark_tts_lib.modules.blocks.vocos"),
        layers=importlib.import_module("spark_tts_lib.modules.blocks.layers"),
        perceiver=importlib.import_module("spark_tts_lib.modules.speaker.perceiver_encoder"))


def versions() -> dict:
    import torchaudio

    return {"torch": torch.__version__, "torchaudio": torchaudio.__version__,
            "transformers": transformers.__version__, "spark-tts-lib": VERSION}


def build_bicodec(config: Mapping, seed: int):
    """`BiCodec` of `config` (the `audio_tokenizer` block) with the re-draws of the docstring."""
    m = spark_modules()
    b = m.bicodec
    torch.manual_seed(seed)
    c = json.loads(json.dumps(dict(config)))
    model = b.BiCodec(
        mel_params=c["mel_params"], encoder=b.Encoder(**c["encoder"]),
        decoder=b.WaveGenerator(**c["decoder"]), quantizer=b.FactorizedVectorQuantize(**c["quantizer"]),
        speaker_encoder=b.SpeakerEncoder(**c["speaker_encoder"]), prenet=b.Decoder(**c["prenet"]),
        postnet=b.Decoder(**c["postnet"])).eval()
    g = torch.Generator().manual_seed(seed + 1)

    def normal(t, mean=0.0, std=NORM_STD):
        return mean + std * torch.randn(t.shape, generator=g)

    with torch.no_grad():
        for mod in model.modules():  # first every bias (the AdaLN ones are re-drawn below)
            if isinstance(mod, (torch.nn.Conv1d, torch.nn.ConvTranspose1d, torch.nn.Linear)) \
                    and mod.bias is not None:
                mod.bias.copy_(normal(mod.bias, std=BIAS_STD))
        for mod in model.modules():
            if isinstance(mod, torch.nn.LayerNorm) and mod.weight is not None:
                mod.weight.copy_(normal(mod.weight, 1.0))
                mod.bias.copy_(normal(mod.bias))
            elif isinstance(mod, torch.nn.BatchNorm1d):
                mod.weight.copy_(normal(mod.weight, 1.0))
                mod.bias.copy_(normal(mod.bias))
                mod.running_mean.copy_(normal(mod.running_mean))
                mod.running_var.copy_(torch.exp(normal(mod.running_var, std=0.2)))
            elif isinstance(mod, m.vocos.AdaLayerNorm):
                cond = mod.scale.weight.shape[1]
                for lin, mean in ((mod.scale, 1.0), (mod.shift, 0.0)):
                    lin.weight.copy_(normal(lin.weight, std=0.3 / math.sqrt(cond)))
                    lin.bias.copy_(normal(lin.bias, mean))
            elif isinstance(mod, m.layers.Snake1d):
                mod.alpha.copy_(torch.exp(normal(mod.alpha, std=SNAKE_STD)))
            elif isinstance(mod, m.perceiver.RMSNorm) and mod.gamma is not None:
                mod.gamma.copy_(normal(mod.gamma, 1.0))
    return model


def _perturb_norms(model, seed: int, biases: bool) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1 + NORM_STD * torch.randn(p.shape, generator=g))
            elif biases and name.endswith(".bias"):
                p.copy_(0.05 * torch.randn(p.shape, generator=g))


def build_wav2vec2(config: Mapping, seed: int):
    torch.manual_seed(seed)
    model = transformers.Wav2Vec2Model(transformers.Wav2Vec2Config(**dict(config))).eval()
    _perturb_norms(model, seed, biases=True)
    return model


def build_lm(config: Mapping, seed: int):
    torch.manual_seed(seed)
    model = transformers.Qwen2ForCausalLM(transformers.Qwen2Config(**dict(config))).eval()
    _perturb_norms(model, seed, biases=False)
    return model


def _yaml(data: Mapping) -> str:
    import yaml

    return yaml.safe_dump(json.loads(json.dumps(dict(data))), sort_keys=False)


def build_model(preset: Mapping, seed: int = 0, cache: Path | None = None) -> Path:
    """The Spark-TTS model folder of `preset` ({"config", "bicodec", "wav2vec2", "lm"}) with
    seeded random weights (module docstring), built once and reused from the cache."""
    from safetensors.torch import save_file

    def write(folder: Path) -> None:
        (folder / "config.yaml").write_text(_yaml(preset["config"]))
        (folder / "BiCodec").mkdir()
        (folder / "BiCodec" / "config.yaml").write_text(_yaml({"audio_tokenizer": preset["bicodec"]}))
        model = build_bicodec(preset["bicodec"], seed)
        save_file({k: v.contiguous() for k, v in model.state_dict().items()},
                  str(folder / "BiCodec" / "model.safetensors"))
        w2v = folder / "wav2vec2-large-xlsr-53"
        build_wav2vec2(preset["wav2vec2"], seed).save_pretrained(w2v)
        transformers.Wav2Vec2FeatureExtractor(
            feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True,
            return_attention_mask=True).save_pretrained(w2v)
        if "lm" in preset:
            build_lm(preset["lm"], seed).save_pretrained(folder / "LLM")
        gc.collect()

    files = ("BiCodec/model.safetensors", "config.yaml", "BiCodec/config.yaml",
             "wav2vec2-large-xlsr-53/model.safetensors")
    if "lm" in preset:
        files += ("LLM/model.safetensors",)
    return seeded_checkpoint("spark", preset, seed, {"init": INIT, **versions()}, files, write,
                             cache, prefix=f"{preset['bicodec']['encoder']['vocos_dim']}d-")


def tap_table(n_decoder_modules: int) -> tuple[dict, dict]:
    """(tokenize hooks, detokenize hooks): BiCodec submodule path -> (tap, converter)."""
    tok = {"encoder.encoder": ("encoder.encoder", numpy_of),
           "encoder": ("encoder", channels_last),
           "quantizer.in_project": ("quantizer.in_project", channels_last),
           "mel_transformer": ("mel", lambda t: t.squeeze(1).transpose(1, 2).numpy().copy())}
    for i in range(1, 5):
        tok[f"speaker_encoder.speaker_encoder.layer{i}"] = (f"speaker.ecapa.layer{i}", channels_last)
    tok["speaker_encoder.speaker_encoder.conv"] = ("speaker.ecapa.conv", channels_last)
    tok["speaker_encoder.perceiver_sampler"] = ("speaker.perceiver", numpy_of)
    detok = {"quantizer.out_project": ("quantizer.detokenize", channels_last),
             "speaker_encoder.project": ("speaker.d_vector", numpy_of),
             "prenet.vocos_backbone": ("prenet.vocos_backbone", numpy_of),
             "prenet": ("prenet", channels_last)}
    for i in range(n_decoder_modules):
        detok[f"decoder.model.{i}"] = (f"decoder.model.{i}", channels_last)
    return tok, detok


class SparkReference:
    """Upstream's `BiCodecTokenizer` over a model folder, plus the LM when the folder has one."""

    def __init__(self, folder: Path, with_lm: bool = True):
        m = spark_modules()
        self.folder = Path(folder)
        self.tokenizer = m.tokenizer.BiCodecTokenizer(self.folder, device=torch.device("cpu"))
        self.tokenizer.feature_extractor.eval()
        self._check_keys(m)
        self.bicodec = self.tokenizer.model
        self.config = dict(self.tokenizer.config)
        self.audio_utils = m.audio
        self.lm = None
        if with_lm and (self.folder / "LLM").is_dir():
            from reference.checkpoints import from_pretrained_strict

            self.lm = from_pretrained_strict(transformers.Qwen2ForCausalLM, self.folder / "LLM")
        self.versions = versions()

    def _check_keys(self, m) -> None:
        """Upstream's loader only prints missing / unexpected keys: here they are an error."""
        from safetensors.torch import load_file

        state = load_file(str(self.folder / "BiCodec" / "model.safetensors"))
        missing, unexpected = self.tokenizer.model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise ValueError(f"BiCodec checkpoint mismatch: missing {missing}, unexpected "
                             f"{unexpected}")

    def prepare(self, wav: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Raw 16 kHz audio -> (volume-normalised wav, reference clip), as `process_audio`."""
        wav = np.asarray(wav, np.float64)
        if self.config["volume_normalize"]:
            wav = self.audio_utils.audio_volume_normalize(wav)
        return wav, self.tokenizer.get_ref_clip(wav)

    @torch.no_grad()
    def tokenize(self, wav: np.ndarray, taps: Sequence[str] = ()) -> dict:
        """`BiCodecTokenizer.tokenize` on raw 16 kHz audio (no file): the taps named in `taps`
        plus `global_tokens` (B, 1, 32) and `semantic_tokens` (B, T)."""
        wav, ref = self.prepare(wav)
        rec: dict = {}
        feat = self.tokenizer.extract_wav2vec2_features(wav)
        rec["wav2vec2.features"] = feat.float().numpy().copy()
        batch = {"wav": torch.from_numpy(wav).unsqueeze(0).float(),
                 "ref_wav": torch.from_numpy(ref).unsqueeze(0).float(), "feat": feat}
        tok, _ = tap_table(0)
        with hook_taps(self.bicodec, {k: v for k, v in tok.items() if v[0] in taps}, rec):
            semantic, global_ = self.bicodec.tokenize(batch)
        rec["semantic_tokens"] = semantic.numpy().astype(np.int64)
        rec["global_tokens"] = global_.numpy().astype(np.int64)
        return rec

    @torch.no_grad()
    def detokenize(self, global_tokens: np.ndarray, semantic_tokens: np.ndarray,
                   taps: Sequence[str] = ()) -> dict:
        """`BiCodecTokenizer.detokenize`: global (1, 32) or (1, 1, 32), semantic (1, T) ->
        taps + `audio` (N,)."""
        g = torch.from_numpy(np.asarray(global_tokens, np.int64).reshape(1, -1))
        s = torch.from_numpy(np.asarray(semantic_tokens, np.int64).reshape(1, -1))
        rec: dict = {}
        _, detok = tap_table(len(self.bicodec.decoder.model))
        with hook_taps(self.bicodec, {k: v for k, v in detok.items() if v[0] in taps}, rec):
            audio = self.tokenizer.detokenize(g, s)
        rec["audio"] = np.asarray(audio, np.float32).reshape(-1)
        return rec


class SparkGrammar:
    """transformers-style processor: the port's token-kind mask (mlx_impl/spark/generate.py).
    `layout`: {"global_0", "n_global", "semantic_0", "n_semantic", "eos", "n_global_tokens"}
    (the test token layout, passed in by the spec); control mode allows only global ids for the
    first `n_global_tokens` steps, then (and in cloning mode always) semantic ids and the eos."""

    def __init__(self, n_prompt: int, vocab: int, layout: Mapping, control: bool):
        self.n_prompt, self.control, self.n_glob = n_prompt, control, layout["n_global_tokens"]
        self.sem = torch.zeros(vocab, dtype=torch.bool)
        self.sem[layout["semantic_0"]:layout["semantic_0"] + layout["n_semantic"]] = True
        self.sem[layout["eos"]] = True
        self.glo = torch.zeros(vocab, dtype=torch.bool)
        self.glo[layout["global_0"]:layout["global_0"] + layout["n_global"]] = True

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        step = input_ids.shape[1] - self.n_prompt
        allowed = self.glo if self.control and step < self.n_glob else self.sem
        return scores.masked_fill(~allowed, -float("inf"))


def lm_forward_taps(ref: SparkReference, ids: np.ndarray, keep_logits: int,
                    taps: Sequence[str]) -> dict:
    from reference.orpheus import forward_taps

    return forward_taps(ref.lm, ids, keep_logits, taps)


def lm_generate(ref: SparkReference, prompt: Sequence[int], layout: Mapping, control: bool,
                temperature: float, top_p: float = 1.0, top_k: int = 0, max_tokens: int = 70,
                seed: int = 0, noise=None) -> np.ndarray:
    """`reference.orpheus.generate_loop` (transformers processors, Gumbel noise from `seed`)
    over the Qwen2 LM with Spark's grammar; stops at the eos (kept)."""
    from reference.orpheus import generate_loop

    grammar = SparkGrammar(len(prompt), ref.lm.config.vocab_size, layout, control)
    return generate_loop(ref.lm, prompt, grammar, layout["eos"], temperature, top_p, top_k,
                         max_tokens=max_tokens, seed=seed, noise=noise)
