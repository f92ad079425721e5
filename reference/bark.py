"""Reference adapter for Bark: transformers `BarkModel` (semantic, coarse and fine GPTs and its
`EncodecModel`), run through its own `generate`.

Upstream: transformers 5.24.0, torch 2.13.0, CPU, float32, eager attention.

Weights: no checkpoint is downloaded. `build_model(preset, seed)` writes one `BarkModel.
save_pretrained` folder (config.json + generation_config.json + model.safetensors):
`BarkModel(BarkConfig(**preset["model"]))` built under `torch.manual_seed(seed)` (transformers'
init: N(0, 0.02) linears and embeddings), then from a generator seeded with `seed`: every
LayerNorm gain 1 + N(0, 0.1^2) and bias N(0, 0.1^2) (upstream's 1 and 0 would hide a port that
ignored them), the semantic and coarse `lm_head` and the fine embeddings (tied to its heads)
N(0, 1 / hidden) (upstream's N(0, 0.02^2) gives nearly uniform logits: unit-scale logits make
greedy margins and sampled choices meaningful); `codec_model` gets the weights of
`reference.encodec.build_random(codec_config, seed)` (its data-initialised codebooks and
normalised convolutions); `generation_config` is a plain `GenerationConfig` with the three
sub-configs as dicts (building `BarkGenerationConfig` directly makes `generate` raise a
TypeError in 5.24.0). Written atomically into a cache folder keyed by (config, seed, init,
versions). `mlx_impl.bark.load` reads the same folder.

Generation (`BarkReference.generate`) is upstream's own `BarkModel.generate(input_ids,
attention_mask, history_prompt, ...)` with the processor's layout (text ids padded to 256 with
0 and an attention mask, as `BarkProcessor` pads); the three stages' outputs and the codes given
to EnCodec are recorded by wrapping the sub-models' `generate` and `codec_decode`. Sampled
stages draw from injected noise:
- semantic and coarse (`do_sample=True`): one more logits processor, inserted just before
  upstream's final `LogitNormalization` (`_get_logits_processor` wrapped on the sub-model), that
  keeps only argmax(scores + g), g the step's Gumbel noise; `torch.multinomial` then picks that
  id with probability 1;
- fine (temperature != 1): `torch.multinomial(probs, 1)` is replaced, during the fine stage
  only, by argmax(log(probs) + g) over the same rows.
g comes from one `numpy.random.default_rng(seed)` stream consumed in call order (`rng.gumbel`,
float32), as `mlx_impl.bark.generate.seeded_noise`.

Taps of teacher-forced passes (`forward_taps`): `{part}.embeds` (the `drop` module's output:
input embeddings + positions), `{part}.layers.{i}`, `{part}.layernorm_final`, `{part}.logits`
(`lm_head`; fine: `lm_heads[k - 1]`) for the semantic prompt (text + history embeddings and the
infer token), one coarse window prompt, and one fine window predicting codebook `FINE_TAP_CODEBOOK`.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
import transformers

from reference.checkpoints import from_pretrained_strict, seeded_checkpoint
from reference.encodec import build_random as build_encodec
from reference.hooks import hook_taps, numpy_of

INIT = "bark-init-v1"  # bump when the initialisation below changes (part of the cache key)
NORM_STD = 0.1
FINE_TAP_CODEBOOK = 7  # sums all 8 embedding tables, the last head
PARTS = ("semantic", "coarse_acoustics", "fine_acoustics")


def versions() -> dict:
    return {"torch": torch.__version__, "transformers": transformers.__version__}


def build_bark(preset: Mapping, seed: int):
    from transformers import BarkConfig, BarkModel, GenerationConfig

    torch.manual_seed(seed)
    model = BarkModel(BarkConfig(**json.loads(json.dumps(dict(preset["model"]))))).eval()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for part in PARTS:
            sub = getattr(model, part)
            for name, p in sub.named_parameters():
                if "layernorm" in name and name.endswith(".weight"):
                    p.copy_(1 + NORM_STD * torch.randn(p.shape, generator=gen))
                elif "layernorm" in name and name.endswith(".bias"):
                    p.copy_(NORM_STD * torch.randn(p.shape, generator=gen))
        for w in (model.semantic.lm_head.weight, model.coarse_acoustics.lm_head.weight,
                  *(e.weight for e in model.fine_acoustics.input_embeds_layers)):
            w.copy_(torch.randn(w.shape, generator=gen) / w.shape[1] ** 0.5)
        codec = build_encodec(preset["model"]["codec_config"], seed)
        model.codec_model.load_state_dict(codec.state_dict())
    model.generation_config = GenerationConfig(**json.loads(json.dumps(preset["generation"])))
    return model


def build_model(preset: Mapping, seed: int = 0, cache: Path | None = None) -> Path:
    """The `BarkModel.save_pretrained` folder of `preset` ({"model": BarkConfig kwargs,
    "generation": the generation sub-configs}) with seeded random weights, built once."""

    def write(folder: Path) -> None:
        model = build_bark(preset, seed)
        model.save_pretrained(folder)
        del model
        gc.collect()

    sem = preset["model"]["semantic_config"]
    return seeded_checkpoint("bark", preset, seed, {"init": INIT, **versions()},
                             ("model.safetensors", "config.json", "generation_config.json"),
                             write, cache,
                             prefix=f"{sem['hidden_size']}h{sem['num_layers']}l-")


class GumbelDraw:
    """Logits processor: keep only argmax(scores + g) (module docstring)."""

    def __init__(self, noise: Callable[[tuple], np.ndarray]):
        self.noise = noise

    def __call__(self, input_ids, scores: torch.Tensor) -> torch.Tensor:
        g = torch.from_numpy(self.noise(tuple(scores.shape)))
        pick = torch.argmax(scores + g, dim=-1)
        out = torch.full_like(scores, -float("inf"))
        out[torch.arange(scores.shape[0]), pick] = 0.0
        return out


def gumbel_noise(seed: int) -> Callable[[tuple], np.ndarray]:
    rng = np.random.default_rng(seed)
    return lambda shape: rng.gumbel(size=shape).astype(np.float32)


def _with_draw(sub, draw: GumbelDraw):
    """Wrap `sub._get_logits_processor` to insert `draw` before LogitNormalization."""
    from transformers.generation.logits_process import LogitNormalization

    original = sub._get_logits_processor

    def wrapped(*args, **kwargs):
        procs = original(*args, **kwargs)
        at = len(procs) - 1 if procs and isinstance(procs[-1], LogitNormalization) else len(procs)
        procs.insert(at, draw)
        return procs
    sub._get_logits_processor = wrapped
    return original


class BarkReference:
    def __init__(self, folder: Path):
        from transformers import BarkModel

        self.folder = Path(folder)
        self.model = from_pretrained_strict(BarkModel, self.folder, dtype=torch.float32)
        self.versions = versions()
        self.sample_rate = int(self.model.generation_config.sample_rate)

    # -- teacher-forced taps ---------------------------------------------------------------

    def _table(self, part: str, n_layers: int, head: str, taps: Sequence[str]) -> dict:
        t = {f"{part}.drop": f"{part}.embeds", f"{part}.layernorm_final":
             f"{part}.layernorm_final", f"{part}.{head}": f"{part}.logits"}
        t.update({f"{part}.layers.{i}": f"{part}.layers.{i}" for i in range(n_layers)})
        return {k: (v, numpy_of) for k, v in t.items() if v in taps}

    @torch.no_grad()
    def forward_taps(self, semantic_text: np.ndarray, semantic_history: np.ndarray,
                     coarse_prompt: np.ndarray, fine_window: np.ndarray,
                     taps: Sequence[str]) -> dict:
        """Teacher-forced passes (module docstring): semantic text/history rows (256,), a coarse
        prompt (1, L), a fine window (1, T, 8)."""
        m, rec = self.model, {}
        cfg = m.config
        sem = m.semantic
        infer = m.generation_config.semantic_config["semantic_infer_token"]
        emb = sem.input_embeds_layer
        merged = torch.cat([emb(torch.from_numpy(semantic_text[None]))
                            + emb(torch.from_numpy(semantic_history[None])),
                            emb(torch.tensor([[infer]]))], dim=1)
        with hook_taps(m, self._table("semantic", cfg.semantic_config.num_layers, "lm_head",
                                      taps), rec):
            sem(inputs_embeds=merged, use_cache=False)
        with hook_taps(m, self._table("coarse_acoustics",
                                      cfg.coarse_acoustics_config.num_layers, "lm_head", taps),
                       rec):
            m.coarse_acoustics(input_ids=torch.from_numpy(coarse_prompt), use_cache=False)
        k = FINE_TAP_CODEBOOK
        head = f"lm_heads.{k - cfg.fine_acoustics_config.n_codes_given}"
        with hook_taps(m, self._table("fine_acoustics", cfg.fine_acoustics_config.num_layers,
                                      head, taps), rec):
            m.fine_acoustics(k, input_ids=torch.from_numpy(fine_window))
        return rec

    # -- generation ------------------------------------------------------------------------

    @torch.no_grad()
    def generate(self, text_ids: Sequence[int], history: Mapping[str, np.ndarray] | None,
                 semantic: Mapping, coarse: Mapping, fine_temperature: float,
                 semantic_max_tokens: int, min_eos_p: float | None = None,
                 seed: int = 0) -> dict:
        """Upstream `BarkModel.generate` -> {"semantic", "coarse", "fine" (8, F), "audio"};
        `semantic` / `coarse`: {"temperature", "top_k", "top_p"} (temperature 0: greedy)."""
        m = self.model
        n = m.generation_config.semantic_config["max_input_semantic_length"]
        ids = np.zeros((1, n), np.int64)
        ids[0, :len(text_ids)] = text_ids
        mask = np.zeros((1, n), np.int64)
        mask[0, :len(text_ids)] = 1
        noise = gumbel_noise(seed)
        kw: dict = {"semantic_max_new_tokens": semantic_max_tokens}
        if min_eos_p is not None:
            kw["min_eos_p"] = min_eos_p
        restore = []
        for prefix, sub, opts in (("semantic", m.semantic, semantic),
                                  ("coarse", m.coarse_acoustics, coarse)):
            if opts["temperature"] > 0:
                kw.update({f"{prefix}_do_sample": True,
                           f"{prefix}_temperature": opts["temperature"],
                           f"{prefix}_top_k": opts.get("top_k", 0),
                           f"{prefix}_top_p": opts.get("top_p", 1.0)})
                restore.append((sub, _with_draw(sub, GumbelDraw(noise))))
            else:
                kw[f"{prefix}_do_sample"] = False
        kw["fine_temperature"] = fine_temperature
        seen: dict = {}

        def spy(sub, name):
            original = sub.generate

            def wrapped(*args, **kwargs):
                out = original(*args, **kwargs)
                seen[name] = (out[0] if isinstance(out, tuple) else out)[0].numpy().astype(
                    np.int64).copy()
                return out
            sub.generate = wrapped

        original_multinomial = torch.multinomial

        def multinomial(probs, num_samples=1, **_):
            g = torch.from_numpy(noise(tuple(probs.shape)))
            return torch.argmax(torch.log(probs) + g, dim=-1, keepdim=True)

        fine_generate = m.fine_acoustics.generate

        def fine_with_noise(*args, **kwargs):
            torch.multinomial = multinomial
            try:
                return fine_generate(*args, **kwargs)
            finally:
                torch.multinomial = original_multinomial

        spy(m.semantic, "semantic")
        spy(m.coarse_acoustics, "coarse")
        m.fine_acoustics.generate = fine_with_noise
        spy(m.fine_acoustics, "fine")
        hist = None if history is None else {
            k: torch.from_numpy(np.asarray(history[k]).astype(np.int64))
            for k in ("semantic_prompt", "coarse_prompt", "fine_prompt")}
        try:
            audio = m.generate(torch.from_numpy(ids), attention_mask=torch.from_numpy(mask),
                               history_prompt=hist, **kw)
        finally:
            for sub in (m.semantic, m.coarse_acoustics, m.fine_acoustics):
                sub.__dict__.pop("generate", None)
            for sub, original in restore:
                sub._get_logits_processor = original
        seen["audio"] = audio[0].float().numpy().copy()
        return seen


FINE_TEMPERATURE = 0.5  # the port's BarkTTS fine temperature (mlx_impl.bark.tts.FINE_TEMPERATURE)


class BarkSpeaker(BarkReference):
    """The torch engine of benchmarks/tts.py: `speak(prompt ids, options, seed)` -> (the fine
    codes (8 x F, flattened), (N,) float32 audio, sample rate) through `generate`, with the
    port's `SamplingOptions` (as a dict) applied to the semantic and coarse stages, as
    `mlx_impl.bark.tts.BarkTTS` does, and the same seeded noise."""

    def speak(self, prompt: Sequence[int], options: Mapping, seed: int = 0) -> tuple:
        if options.get("draw", "gumbel") != "gumbel" or options.get("min_p", 0.0) != 0 \
                or options.get("repetition_penalty", 1.0) != 1.0:
            raise ValueError(f"the Bark reference samples with Gumbel noise only; got "
                             f"{dict(options)}")
        stage = {k: options.get(k, d) for k, d in (("temperature", 0.7), ("top_k", 0),
                                                   ("top_p", 1.0))}
        out = self.generate(list(prompt), None, stage, stage, FINE_TEMPERATURE,
                            int(options["max_tokens"]), seed=seed)
        self.last = out
        return out["fine"].reshape(-1), out["audio"], self.sample_rate

    def stop_reason(self, ids, options: Mapping) -> str:
        sem = self.last["semantic"]
        return "eos" if sem.size and sem[-1] == 10_000 and sem.size <= options["max_tokens"] \
            else "max_tokens"


TTS_REFERENCE = BarkSpeaker  # what benchmarks.tts times as the torch engine (`speak`)
