"""Reference adapter for Dia: transformers `DiaForConditionalGeneration` (seeded) with its own
`DiaProcessor` (`DiaTokenizer`, byte level, offline; `DiaFeatureExtractor` at 44.1 kHz, hop 512;
transformers `DacModel` as the audio tokenizer).

Upstream: transformers 5.24.0, torch 2.13.0, CPU, float32, eager attention.

Weights: no checkpoint is downloaded. `build_model(preset, seed)` writes a model folder:
- `lm/`: `DiaForConditionalGeneration(DiaConfig(**preset["lm"]))` built under
  `torch.manual_seed(seed)` (transformers' initialisation), then from a generator seeded with
  `seed`: every RMSNorm gain 1 + N(0, 0.1^2) (upstream's 1 would hide a port that ignored them)
  and `logits_dense` N(0, 1 / hidden) (upstream's N(0, 0.02^2) gives logits of std ~0.16 on the
  tiny model, nearly uniform; unit-scale logits make greedy margins and sampled choices
  meaningful); `save_pretrained` (config.json + model.safetensors);
- `dac/`: `reference.dac.build_random(preset["dac"], seed)` (its documented re-draws),
  `save_pretrained`;
atomically into a cache folder outside the repository, keyed by (config, seed, init, versions).
`mlx_impl.dia.load.load_tts` reads the same folder.

Generation (`DiaReference.generate`) is upstream's own `model.generate(**processor(text))`
(CFG batch, delay mask, Dia's logits processors, eos criteria with the delayed tail, the delay
mask applied to the output). Greedy: `do_sample=False`. Sampled: `do_sample=True`, and the draw
made from injected noise: one more logits processor is appended to upstream's list (by wrapping
`_get_logits_processor`; Dia's override drops user processors) that keeps only argmax(scores +
g), g the step's Gumbel noise `numpy.random.default_rng(seed).gumbel(size=(C, V))` (one draw
per step, the numbers of `mlx_impl.layers.sampling.draw_noise`); `torch.multinomial` then
picks that id with probability 1. argmax(scores + Gumbel) is a draw from softmax(scores), as
multinomial's, but takes the port's random numbers.
Decoding: `processor.batch_decode` (revert the delay, cut bos rows and channel 0's eos, DAC
decode); the codes the DAC receives are recorded. Voice cloning: `processor(text=[transcript +
text], audio=[clip])` (the processor's DAC encodes the clip into the decoder's prompt rows) and
`batch_decode(audio_prompt_len=get_audio_prompt_len(...))`, upstream's documented usage.

Benchmark (`speak`, `TTS_REFERENCE`, timed by benchmarks/tts.py as the torch engine): text ids
-> the text they encode (the tokenizer's added tokens by name, the rest as UTF-8 bytes; checked
to re-encode to the same ids through `DiaProcessor`) -> `generate` with the port's
`SamplingOptions` (as a dict) and seed -> `decode`; it returns the generated rows (every row
after the bos row: frames, the eos row and the delayed tail, (steps, 9)).

Taps of a teacher-forced pass (`forward_taps`): module outputs under their module paths
(`model.encoder.embedding`, `model.encoder.layers.{i}[.self_attention|.mlp]`,
`model.encoder.norm`, `model.decoder.embeddings`, `model.decoder.layers.{i}[.self_attention|
.cross_attention|.mlp]`, `model.decoder.norm`) and the logits viewed (B, T, C, V).
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
from reference.dac import build_random as build_dac
from reference.hooks import hook_taps, numpy_of

INIT = "dia-init-v1"  # bump when the initialisation below changes (part of the cache key)
NORM_GAIN_STD = 0.1


def versions() -> dict:
    return {"torch": torch.__version__, "transformers": transformers.__version__}


def build_lm(config: Mapping, seed: int):
    from transformers import DiaConfig, DiaForConditionalGeneration

    torch.manual_seed(seed)
    model = DiaForConditionalGeneration(DiaConfig(**json.loads(json.dumps(dict(config))))).eval()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1 + NORM_GAIN_STD * torch.randn(p.shape, generator=gen))
        w = model.logits_dense.weight
        w.copy_(torch.randn(w.shape, generator=gen) / w.shape[1] ** 0.5)
    return model


def build_model(preset: Mapping, seed: int = 0, cache: Path | None = None) -> Path:
    """The model folder (lm/ + dac/) of `preset` ({"lm": DiaConfig kwargs, "dac": DacConfig
    kwargs}) with seeded random weights, built once and reused from the cache."""

    def write(folder: Path) -> None:
        lm = build_lm(preset["lm"], seed)
        lm.save_pretrained(folder / "lm")
        del lm
        gc.collect()
        build_dac(preset["dac"], seed).save_pretrained(folder / "dac")

    dec = preset["lm"]["decoder_config"]
    return seeded_checkpoint("dia", preset, seed, {"init": INIT, **versions()},
                             ("lm/model.safetensors", "lm/config.json", "dac/model.safetensors",
                              "dac/config.json"), write, cache,
                             prefix=f"{dec['hidden_size']}h{dec['num_hidden_layers']}l-")


def tables(enc_layers: int, dec_layers: int) -> dict:
    t = {"model.encoder.embedding": "model.encoder.embedding"}
    for i in range(enc_layers):
        p = f"model.encoder.layers.{i}"
        t[f"{p}.self_attention"] = f"{p}.self_attention"
        t[f"{p}.mlp"] = f"{p}.mlp"
        t[p] = p
    t["model.encoder.norm"] = "model.encoder.norm"
    t["model.decoder.embeddings"] = "model.decoder.embeddings"
    for i in range(dec_layers):
        p = f"model.decoder.layers.{i}"
        for sub in ("self_attention", "cross_attention", "mlp"):
            t[f"{p}.{sub}"] = f"{p}.{sub}"
        t[p] = p
    t["model.decoder.norm"] = "model.decoder.norm"
    return t


class GumbelDraw:
    """transformers-style logits processor: keep only argmax(scores + g) (module docstring)."""

    def __init__(self, noise: Callable[[int], np.ndarray]):
        self.noise, self.step = noise, 0

    def __call__(self, input_ids, scores: torch.Tensor) -> torch.Tensor:
        g = torch.from_numpy(self.noise(self.step))
        self.step += 1
        pick = torch.argmax(scores + g, dim=-1)
        out = torch.full_like(scores, -float("inf"))
        out[torch.arange(scores.shape[0]), pick] = 0.0
        return out


def gumbel_noise(seed: int, shape: tuple[int, int]) -> Callable[[int], np.ndarray]:
    rng = np.random.default_rng(seed)
    return lambda step: rng.gumbel(size=shape).astype(np.float32)


class DiaReference:
    def __init__(self, folder: Path):
        from transformers import (
            DacModel,
            DiaFeatureExtractor,
            DiaForConditionalGeneration,
            DiaProcessor,
            DiaTokenizer,
        )

        self.folder = Path(folder)
        self.model = from_pretrained_strict(DiaForConditionalGeneration, self.folder / "lm",
                                            dtype=torch.float32)
        self.dac = DacModel.from_pretrained(str(self.folder / "dac")).float().eval()
        fe = DiaFeatureExtractor(sampling_rate=self.dac.config.sampling_rate,
                                 hop_length=int(np.prod(self.dac.config.downsampling_ratios)))
        self.processor = DiaProcessor(fe, DiaTokenizer(), self.dac)
        self.config = self.model.config.to_dict()
        self.versions = versions()
        dec = self.model.config.decoder_config
        self.channels, self.vocab = dec.num_channels, dec.vocab_size

    def inputs(self, text: str, audio: np.ndarray | None = None) -> dict:
        """`DiaProcessor(text=[text], audio=[audio])`: with an audio prompt (voice cloning;
        `text` then starts with the clip's transcript) the decoder rows hold its DAC codes."""
        if audio is None:
            return self.processor(text=[text], padding=True, return_tensors="pt")
        return self.processor(text=[text], audio=[np.asarray(audio, np.float32)], padding=True,
                              return_tensors="pt")

    def prompt_frames(self, audio: np.ndarray) -> np.ndarray:
        """The audio prompt's codes (F, C) as the processor lays them into the decoder rows."""
        rows = self.inputs("[S1]", audio)["decoder_input_ids"][0].numpy().astype(np.int64)
        delays = self.model.config.delay_pattern
        f = rows.shape[0] - 1 - max(delays)
        return np.stack([rows[1 + d:1 + d + f, c] for c, d in enumerate(delays)], axis=1)

    def text_ids(self, text: str) -> np.ndarray:
        return self.inputs(text)["input_ids"].numpy().astype(np.int64)

    @torch.no_grad()
    def forward_taps(self, text_ids: np.ndarray, codes: np.ndarray, keep_logits: int,
                     taps: Sequence[str]) -> dict:
        """Teacher-forced pass over text ids (1, S) and decoder rows (1, T, C)."""
        cfg = self.model.config
        table = {k: v for k, v in tables(cfg.encoder_config.num_hidden_layers,
                                         cfg.decoder_config.num_hidden_layers).items()
                 if v in taps}
        table = {k: (v, numpy_of) for k, v in table.items()}
        rec: dict[str, np.ndarray] = {}
        ids = torch.from_numpy(np.asarray(text_ids, np.int64))
        dec = torch.from_numpy(np.asarray(codes, np.int64))
        with hook_taps(self.model, table, rec):
            out = self.model(input_ids=ids, attention_mask=torch.ones_like(ids),
                             decoder_input_ids=dec, use_cache=False)
        b, t = dec.shape[:2]
        logits = out.logits.float().reshape(b, self.channels, t, self.vocab).transpose(1, 2)
        rec["logits"] = logits[:, -keep_logits:].numpy().copy()
        rec["logits.argmax"] = logits.argmax(-1).numpy().astype(np.int64)
        return rec

    @torch.no_grad()
    def generate(self, text: str, temperature: float, top_k: int | None = None,
                 top_p: float = 1.0, cfg_scale: float = 1.0, max_tokens: int = 80,
                 seed: int = 0, noise: Callable[[int], np.ndarray] | None = None,
                 audio: np.ndarray | None = None) -> np.ndarray:
        """Upstream generate's output sequence (T, C) (module docstring); `audio`: an audio
        prompt at the DAC's rate (voice cloning)."""
        inputs = self.inputs(text, audio)
        kw = dict(max_new_tokens=max_tokens, guidance_scale=cfg_scale, top_k=top_k)
        model = self.model
        original = model._get_logits_processor
        if temperature > 0:
            draw = GumbelDraw(noise or gumbel_noise(seed, (self.channels, self.vocab)))
            kw.update(do_sample=True, temperature=temperature, top_p=top_p)

            def with_draw(*args, **kwargs):
                procs = original(*args, **kwargs)
                procs.append(draw)
                return procs
            model._get_logits_processor = with_draw
        else:
            kw.update(do_sample=False)
        try:
            out = model.generate(**inputs, **kw)
        finally:
            model._get_logits_processor = original
        return out[0].numpy().astype(np.int64)

    @torch.no_grad()
    def decode(self, sequence: np.ndarray, audio_prompt_len: int | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """(codes (C, F) the DAC received, audio (N,)) of a generated sequence (T, C) through
        `processor.batch_decode` (`audio_prompt_len`: upstream `get_audio_prompt_len`, prompt
        frames + 1, to decode the generated part only)."""
        seen = {}
        original = self.dac.decode

        def spy(*args, **kwargs):
            seen["codes"] = kwargs["audio_codes"][0].numpy().astype(np.int64).copy()
            return original(*args, **kwargs)
        self.dac.decode = spy
        try:
            audio = self.processor.batch_decode(torch.from_numpy(sequence[None]),
                                                audio_prompt_len=audio_prompt_len)[0]
        finally:
            del self.dac.decode
        return seen["codes"], audio.numpy().astype(np.float32).reshape(-1)

    # -- benchmark (module docstring) -------------------------------------------------------

    def text_of(self, ids: Sequence[int]) -> str:
        """The text that `DiaTokenizer` encodes as `ids` (added tokens by name, bytes as UTF-8)."""
        added = {i: t.content for i, t in self.processor.tokenizer.added_tokens_decoder.items()}
        parts, run = [], bytearray()
        for i in ids:
            i = int(i)
            if i in added:
                parts += [run.decode("utf-8"), added[i]]
                run = bytearray()
            elif 0 <= i < 256:
                run.append(i)
            else:
                raise ValueError(f"id {i} is neither a byte nor a DiaTokenizer added token")
        return "".join(parts) + run.decode("utf-8")

    def speak(self, prompt: Sequence[int], options: Mapping, seed: int = 0) -> tuple:
        """Text ids -> (generated rows (steps, C), (N,) float32 audio, sample rate) through
        `generate` and `decode` (module docstring: benchmark)."""
        if options.get("draw", "gumbel") != "gumbel" or options.get("min_p", 0.0) != 0 \
                or options.get("repetition_penalty", 1.0) != 1.0:
            raise ValueError("the Dia reference samples with Gumbel noise and no min-p or "
                             f"repetition penalty; got {dict(options)}")
        text = self.text_of(prompt)
        ids = self.text_ids(text)[0].tolist()
        if ids != [int(i) for i in prompt]:
            raise ValueError(f"DiaProcessor encodes {text!r} as {ids[:12]}..., not as the "
                             f"prompt's {list(prompt)[:12]}...")
        seq = self.generate(text, options["temperature"], options.get("top_k") or None,
                            options.get("top_p", 1.0), options.get("cfg_scale", 1.0),
                            options["max_tokens"], seed)
        bos = self.model.config.decoder_config.bos_token_id
        if not (seq[0] == bos).all() or (seq[1:, 0] == bos).any():
            raise RuntimeError("expected one bos prompt row (no audio prompt)")
        _, audio = self.decode(seq)
        return seq[1:], audio, int(self.dac.config.sampling_rate)

    def stop_reason(self, rows: np.ndarray, options: Mapping) -> str:
        """The port's stop reason of generated rows (steps, C): "max_tokens" when channel 0's eos
        came at the row the length limit forces (max_tokens - max delay - 1), "eos" earlier."""
        eos = self.model.config.decoder_config.eos_token_id
        at = np.flatnonzero(np.asarray(rows)[:, 0] == eos)
        forced = options["max_tokens"] - max(self.model.config.delay_pattern) - 1
        return "max_tokens" if at.size == 0 or at[0] >= forced else "eos"


TTS_REFERENCE = DiaReference  # what benchmarks.tts times as the torch engine (`speak`)
