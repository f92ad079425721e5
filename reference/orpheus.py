"""Reference adapter for Orpheus: transformers `LlamaForCausalLM` (seeded) + the `snac` package.

Upstream: transformers 5.24.0 (`LlamaForCausalLM`, `LlamaConfig` with `rope_parameters`
llama3), snac 1.2.1, torch 2.13.0, CPU, float32, eager attention.

Weights: no checkpoint is downloaded (canopylabs/orpheus-3b-0.1-ft is gated on the hub).
`build_model(preset, seed)` writes a model folder `lm/` + `snac/`:
- `lm/`: `LlamaForCausalLM(LlamaConfig(**preset["lm"]))` built under `torch.manual_seed(seed)`
  (transformers' initialisation), every RMSNorm gain re-drawn as 1 + N(0, 0.1^2) from a
  generator seeded with `seed` (upstream initialises them to exactly 1, which would hide a port
  that ignored them), written with `save_pretrained` (config.json + model.safetensors);
- `snac/`: `reference.snac.build_random(preset["snac"], seed)` (its documented re-draws),
  written as the hub's snac folders (config.json + pytorch_model.bin);
atomically into a cache folder outside the repository, keyed by (config, seed, init, versions).
`mlx_impl.orpheus.load.load_tts` reads the same folder.

Tokens: both sides are fed ids (`mlx_impl.orpheus.tokens.prompt_ids`, the offline test
tokenizer with Orpheus's real special ids; the Llama-3 tokenizer files come only from the hub).

Generation (`OrpheusReference.generate`): a manual torch loop with the KV cache
(`cache`) and transformers' own processors, in `generate()`'s order:
`AudioGrammar` (below) -> `RepetitionPenaltyLogitsProcessor` (on the last `window` ids when a
window is set) -> `TemperatureLogitsWarper` -> `TopKLogitsWarper` -> `TopPLogitsWarper` ->
`MinPLogitsWarper`; then the token is argmax(scores + g) with g the step's Gumbel noise, or the
argmax at temperature 0. Why not `model.generate(do_sample=True)`: it draws with
`torch.multinomial`, which cannot be given the port's random numbers; argmax(scores + Gumbel) is
the same distribution and takes injected noise. The noise of step s is
`rng.gumbel(size=(1, vocab)).astype(float32)` from `numpy.random.default_rng(seed)`, one draw per
sampled step: `mlx_impl.layers.sampling.draw_noise(rng, "gumbel", shape)`'s numbers (written
again here: reference/ never imports mlx).
`AudioGrammar` is the port's documented audio-token mask (mlx_impl/orpheus/generate.py): at frame
position p only the 4096 ids of position p (plus end of speech 128258 at p = 0) stay, others -inf.
Stop: at 128258 (kept as the last generated id) or after `max_tokens`.

Taps of a teacher-forced forward pass over the prompt + a code sequence (`tables`): `model.embed`
(output of `model.embed_tokens`), `model.layers.{i}.self_attn` (first output), `.mlp`,
`model.layers.{i}`, `model.norm`, and the logits (the spec keeps the last positions).
"""

from __future__ import annotations

import gc
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
import transformers
from transformers import LlamaConfig, LlamaForCausalLM
from transformers.generation.logits_process import (
    MinPLogitsWarper,
    RepetitionPenaltyLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from reference.checkpoints import from_pretrained_strict, seeded_checkpoint
from reference.hooks import hook_taps, numpy_of
from reference.snac import build_random as build_snac
from reference.snac import fed_noise

INIT = "orpheus-init-v1"  # bump when the initialisation below changes (part of the cache key)
NORM_GAIN_STD = 0.1

# Orpheus ids (orpheus_tts 0.1 engine_class.py / decoder.py, mlx-audio 0.6.2; the port's
# mlx_impl/orpheus/tokens.py cites them)
END_OF_SPEECH = 128258
AUDIO_OFFSET = 128266
CODEBOOK_SIZE = 4096
FRAME = 7


def versions() -> dict:
    import snac

    return {"torch": torch.__version__, "transformers": transformers.__version__,
            "snac": snac.__version__}


def build_lm(config: Mapping, seed: int) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    model = LlamaForCausalLM(LlamaConfig(**json.loads(json.dumps(dict(config))))).eval()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1 + NORM_GAIN_STD * torch.randn(p.shape, generator=gen))
    return model


def write_lm(folder: Path, config: Mapping, seed: int) -> None:
    """`build_lm(config, seed)` written with `save_pretrained` (also OuteTTS's `lm/`)."""
    lm = build_lm(config, seed)
    lm.save_pretrained(folder)
    del lm
    gc.collect()


def build_model(preset: Mapping, seed: int = 0, cache: Path | None = None) -> Path:
    """The model folder (lm/ + snac/) of `preset` ({"lm": LlamaConfig dict, "snac": SNAC
    kwargs}) with seeded random weights, built once and reused from the cache."""

    def write(folder: Path) -> None:
        write_lm(folder / "lm", preset["lm"], seed)
        (folder / "snac").mkdir()
        torch.save(build_snac(preset["snac"], seed).state_dict(), folder / "snac" / "pytorch_model.bin")
        (folder / "snac" / "config.json").write_text(json.dumps(dict(preset["snac"]), indent=2))

    return seeded_checkpoint("orpheus", preset, seed, {"init": INIT, **versions()},
                             ("lm/model.safetensors", "lm/config.json", "snac/config.json",
                              "snac/pytorch_model.bin"), write, cache,
                             prefix=f"{preset['lm']['hidden_size']}h{preset['lm']['num_hidden_layers']}l-")


def load_lm(folder: Path) -> LlamaForCausalLM:
    return from_pretrained_strict(LlamaForCausalLM, folder, dtype=torch.float32)


def load_snac(folder: Path):
    from snac import SNAC

    model = SNAC.from_config(str(folder / "config.json"))
    model.load_state_dict(torch.load(folder / "pytorch_model.bin", map_location="cpu",
                                     weights_only=True))
    return model.eval()


def tables(n_layers: int) -> dict:
    t = {"model.embed_tokens": ("model.embed", numpy_of)}
    for i in range(n_layers):
        p = f"model.layers.{i}"
        t[f"{p}.self_attn"] = (f"{p}.self_attn", numpy_of)
        t[f"{p}.mlp"] = (f"{p}.mlp", numpy_of)
        t[p] = (p, numpy_of)
    t["model.norm"] = ("model.norm", numpy_of)
    return t


@torch.no_grad()
def forward_taps(model, ids: np.ndarray, keep_logits: int, taps: Sequence[str]) -> dict:
    """Teacher-forced pass of a `LlamaForCausalLM` over `ids` (1, L): the hooked taps that
    `taps` names, and `logits` of the last `keep_logits` positions, `logits.argmax` of every
    position."""
    table = {k: v for k, v in tables(model.config.num_hidden_layers).items() if v[0] in taps}
    rec: dict[str, np.ndarray] = {}
    with hook_taps(model, table, rec):
        out = model(input_ids=torch.from_numpy(np.asarray(ids, np.int64)))
    logits = out.logits.float()
    rec["logits"] = logits[:, -keep_logits:].numpy().copy()
    rec["logits.argmax"] = logits.argmax(-1).numpy().astype(np.int64)
    return rec


class AudioGrammar:
    """transformers-style logits processor: the port's audio-token mask (module docstring).
    `n_prompt`: prompt length, so position = (len(ids) - n_prompt) % 7."""

    def __init__(self, n_prompt: int, vocab: int):
        self.n_prompt = n_prompt
        self.allowed = torch.zeros(FRAME, vocab, dtype=torch.bool)
        for p in range(FRAME):
            lo = AUDIO_OFFSET + p * CODEBOOK_SIZE
            self.allowed[p, lo:lo + CODEBOOK_SIZE] = True
        self.allowed[0, END_OF_SPEECH] = True

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        p = (input_ids.shape[1] - self.n_prompt) % FRAME
        return scores.masked_fill(~self.allowed[p], -float("inf"))


def gumbel_noise(seed: int, vocab: int) -> Callable[[int], np.ndarray]:
    rng = np.random.default_rng(seed)
    return lambda step: rng.gumbel(size=(1, vocab)).astype(np.float32)


@torch.no_grad()
def generate_loop(model, prompt: Sequence[int], grammar, stop: int, temperature: float,
                  top_p: float = 1.0, top_k: int = 0, min_p: float = 0.0,
                  repetition_penalty: float = 1.0, repetition_window: int = 0,
                  max_tokens: int = 70, seed: int = 0,
                  noise: Callable[[int], np.ndarray] | None = None) -> np.ndarray:
    """The manual loop of the module docstring for any `LlamaForCausalLM` and audio grammar (a
    transformers-style processor, applied first) stopping at `stop` (kept as the last id). The
    windowed repetition penalty (`repetition_window` > 0: transformers'
    `RepetitionPenaltyLogitsProcessor` on the last `repetition_window` ids) is OuteTTS's
    `RepetitionPenaltyLogitsProcessorPatch` (outetts 0.4.4 models/hf_model.py, last 64 ids)."""
    vocab = model.config.vocab_size
    noise = noise or gumbel_noise(seed, vocab)
    procs = [grammar]
    if repetition_penalty != 1.0:
        rep = RepetitionPenaltyLogitsProcessor(repetition_penalty)
        procs.append(lambda ids, s: rep(ids[:, -repetition_window:] if repetition_window
                                        else ids, s))
    if temperature > 0:
        if temperature != 1.0:
            procs.append(TemperatureLogitsWarper(temperature))
        if top_k > 0:
            procs.append(TopKLogitsWarper(top_k))
        if top_p < 1.0:
            procs.append(TopPLogitsWarper(top_p))
        if min_p > 0:
            procs.append(MinPLogitsWarper(min_p))
    ids = torch.tensor([list(prompt)], dtype=torch.long)
    out = model(input_ids=ids, use_cache=True)
    past = out.cache
    scores = out.logits[:, -1].float()
    generated: list[int] = []
    for step in range(max_tokens):
        for proc in procs:
            scores = proc(ids, scores)
        if temperature > 0:
            token = int(torch.argmax(scores + torch.from_numpy(noise(step)), dim=-1)[0])
        else:
            token = int(torch.argmax(scores, dim=-1)[0])
        generated.append(token)
        if token == stop:
            break
        ids = torch.cat([ids, torch.tensor([[token]])], dim=1)
        if step + 1 < max_tokens:
            out = model(input_ids=ids[:, -1:], cache=past, use_cache=True)
            past = out.cache
            scores = out.logits[:, -1].float()
    return np.array(generated, dtype=np.int64)


class LlamaCodesReference:
    """The shared part of the Llama-based TTS references (Orpheus, OuteTTS): `self.model` a
    `LlamaForCausalLM`; subclasses name their audio grammar (`grammar(n_prompt, vocab)`, a
    transformers-style processor) and their stop id."""

    grammar: type
    stop: int

    def forward_taps(self, ids: np.ndarray, keep_logits: int, taps: Sequence[str]) -> dict:
        return forward_taps(self.model, ids, keep_logits, taps)

    def generate(self, prompt: Sequence[int], temperature: float, top_p: float = 1.0,
                 top_k: int = 0, min_p: float = 0.0, repetition_penalty: float = 1.0,
                 repetition_window: int = 0, max_tokens: int = 70, seed: int = 0,
                 noise: Callable[[int], np.ndarray] | None = None) -> np.ndarray:
        """Generated ids (`generate_loop`), the stop token included when it came."""
        return generate_loop(self.model, prompt, self.grammar(len(prompt),
                             self.model.config.vocab_size), self.stop, temperature, top_p,
                             top_k, min_p, repetition_penalty, repetition_window, max_tokens,
                             seed, noise)


class OrpheusReference(LlamaCodesReference):
    grammar, stop = AudioGrammar, END_OF_SPEECH

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.model = load_lm(self.folder / "lm")
        self.snac = load_snac(self.folder / "snac")
        self.snac_config = json.loads((self.folder / "snac" / "config.json").read_text())
        self.config = self.model.config.to_dict()
        self.versions = versions()

    @torch.no_grad()
    def decode(self, audio_tokens: np.ndarray, noise: list[np.ndarray]) -> np.ndarray:
        """Whole frames of audio tokens -> (N,) float32 through SNAC with the given noise
        ((1, T_k, 1) per noise block, MLX layout; `reference.snac.fed_noise`)."""
        ids = np.asarray(audio_tokens, np.int64).reshape(-1, FRAME)
        codes = ids - AUDIO_OFFSET - np.arange(FRAME) * CODEBOOK_SIZE
        if (codes < 0).any() or (codes >= CODEBOOK_SIZE).any():
            raise ValueError("audio tokens outside their frame position's range")
        # orpheus_tts decoder.py convert_to_audio: [a0], [a1, a4], [a2, a3, a5, a6]
        layers = [codes[:, [0]], codes[:, [1, 4]], codes[:, [2, 3, 5, 6]]]
        cb = [torch.from_numpy(np.ascontiguousarray(c.reshape(1, -1))) for c in layers]
        with fed_noise(noise):
            y = self.snac.decode(cb)
        return y[0, 0].numpy().copy()

    def snac_noise(self, first: int, last: int, seed: int) -> list[np.ndarray]:
        """The port's per-frame SNAC noise (mlx_impl/orpheus/tts.py `snac_noise`): frame f of
        noise block k from `default_rng([seed, k, f])`."""
        c = self.snac_config
        if not c["noise"]:
            return []
        out, per = [], max(c["vq_strides"]) // min(c["vq_strides"])
        for k, r in enumerate(c["decoder_rates"]):
            per *= r
            out.append(np.concatenate([
                np.random.default_rng([seed, k, f]).standard_normal(per).astype(np.float32)
                for f in range(first, last)])[None, :, None])
        return out

    def speak(self, prompt: Sequence[int], options: Mapping, seed: int = 0) -> tuple:
        """Prompt ids -> (generated ids, (N,) float32 audio, sample rate): `generate` with the
        sampling `options` (the port's `SamplingOptions` fields as a dict) and seed, then the
        whole frames through SNAC with the port's per-frame noise (the pipeline the parity check
        runs; `benchmarks.tts` times it as the torch engine)."""
        tokens = self.generate(prompt, **_generate_kwargs(options), seed=seed)
        kept = tokens[tokens != END_OF_SPEECH]
        n = kept.size // FRAME
        audio = self.decode(kept[: n * FRAME], self.snac_noise(0, n, seed))
        return tokens, audio, int(self.snac_config["sampling_rate"])


def _generate_kwargs(options: Mapping) -> dict:
    """`LlamaCodesReference.generate`'s keyword arguments from a `SamplingOptions` dict (the
    fields it has no use for, cfg_scale at 1 and the gumbel draw, are checked, not dropped)."""
    if options.get("cfg_scale", 1.0) != 1.0 or options.get("draw", "gumbel") != "gumbel":
        raise ValueError(f"the Llama-codes reference samples without guidance, with Gumbel "
                         f"noise; got cfg_scale={options.get('cfg_scale')}, "
                         f"draw={options.get('draw')!r}")
    keys = ("temperature", "top_p", "top_k", "min_p", "repetition_penalty", "repetition_window",
            "max_tokens")
    return {k: options[k] for k in keys}


TTS_REFERENCE = OrpheusReference  # what benchmarks.tts times as the torch engine (`speak`)
