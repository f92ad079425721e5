"""Reference adapter for CSM / Marvis: transformers `CsmForConditionalGeneration` (seeded).

Upstream: transformers 5.24.0 (`CsmForConditionalGeneration`, its `CsmGenerationMixin`, the
codec `MimiModel` inside it), torch 2.13.0, CPU, float32, eager attention.

Weights: no checkpoint is downloaded (sesame/csm-1b is gated; Marvis's is on the hub only).
`build_model(preset, seed)` writes ONE folder, as the published transformers checkpoints are
laid out (the codec's weights inside, under `codec_model.*`):
`CsmForConditionalGeneration(CsmConfig(**preset["csm"]))` built under `torch.manual_seed(seed)`
(transformers' initialisation), every RMSNorm gain re-drawn as 1 + N(0, 0.1^2) from a generator
seeded with `seed` (upstream initialises them to 1, which would hide a port that ignored them),
and the codec replaced by `reference.mimi.build_random(codec_config, seed)` (transformers zeroes
Mimi's codebooks; that builder draws them from the encoder's latents), written with
`save_pretrained` atomically into a cache folder keyed by (config, seed, init, versions).
`mlx_impl.csm.load.load_tts` reads the same folder.

Tokens: both sides are fed ids (`mlx_impl.csm.tokens.prompt`, the offline test tokenizer with
each family's real special ids).

`CsmReference`:
- `teacher(ids, audio, n_depth)`: upstream's own forward `model(input_ids, input_values,
  input_values_cutoffs)` (the context clip encoded by upstream's Mimi and merged by
  `_merge_input_ids_with_input_values`), hooked: `backbone_model.embed` (layer 0's input),
  every backbone layer (`.self_attn` first output, `.mlp`, the layer), `backbone_model.norm`,
  `logits` (codebook 0, every position); then the depth decoder teacher-forced on the first
  `n_depth` context frames (`depth_decoder(input_ids=[0, c_0..c_{K-2}],
  backbone_last_hidden_state=` the normed state before the frame`)`), hooked the same way
  (`depth_decoder.model.embed` = layer 0's input, after the projector), `depth_decoder.logits`;
  `context.codes` (K, F): upstream Mimi's codes of the clip.
- `generate_upstream(ids, audio, max_frames)`: greedy through upstream's own
  `model.generate(do_sample=False)` (its `_sample` loop and stop test), with the port's codec mask
  (mlx_impl/csm/generate.py) as a logits processor of the backbone and, by wrapping
  `model.depth_decoder.generate`, of the depth decoder.
- `generate(ids, audio, options..., noise)`: the same loop written out in torch (backbone and
  depth decoder forwards with their caches, `codec mask -> TemperatureLogitsWarper ->
  TopKLogitsWarper -> TopPLogitsWarper -> MinPLogitsWarper`, then argmax(scores + Gumbel noise)
  or argmax at temperature 0; stop when codebooks 0..K-2 are all 0, as upstream). Why not
  `generate(do_sample=True)`: it draws with `torch.multinomial`, which cannot be given the port's
  random numbers; argmax(scores + Gumbel) is the same distribution and takes injected noise. The
  noise of draw (frame f, codebook k) is the (f K + k)-th `rng.gumbel(size=(1, V))` of
  `numpy.random.default_rng(seed)` (`mlx_impl.layers.sampling.draw_noise`, written again here).
- `speak(ids, options, seed)` (`TTS_REFERENCE`, timed by benchmarks/tts.py as the torch
  engine): `generate` without a context clip at the port's `SamplingOptions` (a dict;
  max_tokens = frames) and seed, then `decode`; returns every generated frame (n, K), the
  end-of-audio frame included.
- `decode(frames)`: upstream's `output_audio` path: `codec_model.decode` of the frames before
  the first all-zero frame.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
import transformers
from transformers import CsmConfig, CsmForConditionalGeneration
from transformers.generation.logits_process import (
    LogitsProcessorList,
    MinPLogitsWarper,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from reference.checkpoints import from_pretrained_strict, seeded_checkpoint
from reference.hooks import hook_taps, numpy_of
from reference.mimi import build_random as build_mimi

INIT = "csm-init-v1"  # bump when the initialisation below changes (part of the cache key)
NORM_GAIN_STD = 0.1


def versions() -> dict:
    return {"torch": torch.__version__, "transformers": transformers.__version__}


def build(config: Mapping, seed: int) -> CsmForConditionalGeneration:
    cfg = json.loads(json.dumps(dict(config)))
    torch.manual_seed(seed)
    model = CsmForConditionalGeneration(CsmConfig(**cfg)).eval()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight") and not name.startswith("codec_model."):
                p.copy_(1 + NORM_GAIN_STD * torch.randn(p.shape, generator=gen))
        model.codec_model.load_state_dict(build_mimi(cfg["codec_config"], seed).state_dict())
    return model


def build_model(preset: Mapping, seed: int = 0, cache: Path | None = None) -> Path:
    """The model folder of `preset` ({"csm": CsmConfig dict, ...}) with seeded random weights,
    built once and reused from the cache."""
    config = preset["csm"]

    def write(folder: Path) -> None:
        model = build(config, seed)
        model.save_pretrained(folder)
        del model
        gc.collect()

    return seeded_checkpoint("csm", config, seed, {"init": INIT, **versions()},
                             ("model.safetensors", "config.json"), write, cache,
                             prefix=f"{config['hidden_size']}h{config['num_hidden_layers']}l-")


class CodecMask:
    """transformers-style logits processor: ids >= the codec's codebook_size to -inf (the
    port's documented deviation, mlx_impl/csm/generate.py)."""

    def __init__(self, codebook_size: int):
        self.codebook_size = codebook_size

    def __call__(self, input_ids, scores: torch.FloatTensor) -> torch.FloatTensor:
        out = scores.clone()
        out[..., self.codebook_size:] = -float("inf")
        return out


def gumbel_noise(seed: int, vocab: int) -> Callable[[int], np.ndarray]:
    rng = np.random.default_rng(seed)
    return lambda step: rng.gumbel(size=(1, vocab)).astype(np.float32)


def _layer_tables(prefix: str, n: int) -> dict:
    t = {}
    for i in range(n):
        p = f"{prefix}.layers.{i}"
        t[f"{p}.self_attn"] = (f"{p}.self_attn", numpy_of)
        t[f"{p}.mlp"] = (f"{p}.mlp", numpy_of)
        t[p] = (p, numpy_of)
    t[f"{prefix}.norm"] = (f"{prefix}.norm", numpy_of)
    return t


class CsmReference:
    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.model = from_pretrained_strict(CsmForConditionalGeneration, self.folder,
                                            dtype=torch.float32)
        self.config = self.model.config
        self.k = self.config.num_codebooks
        self.codebook_size = self.config.codec_config.codebook_size
        self.versions = versions()

    # -- inputs ------------------------------------------------------------------------------

    def _inputs(self, ids: np.ndarray, audio: np.ndarray | None) -> dict:
        ids_t = torch.from_numpy(np.asarray(ids, np.int64)[None])
        # the processor's attention mask (all ones for one unpadded prompt): without it
        # `generate` infers padding from pad_token_id, which CsmConfig sets to the audio
        # placeholder 128002, and would mask every context frame out
        out = {"input_ids": ids_t, "attention_mask": torch.ones_like(ids_t)}
        if audio is not None:
            a = torch.from_numpy(np.asarray(audio, np.float32))
            out["input_values"] = a[None, None]  # (1, 1, N)
            out["input_values_cutoffs"] = torch.tensor([[a.shape[0]]])
        return out

    @torch.no_grad()
    def encode(self, audio: np.ndarray) -> np.ndarray:
        """upstream Mimi codes of a clip, (F, K) (the call `_merge_input_ids_with_input_values`
        makes)."""
        x = torch.from_numpy(np.asarray(audio, np.float32))[None, None]
        return self.model.codec_model.encode(x).audio_codes[0].T.numpy().astype(np.int64)

    @torch.no_grad()
    def embeds(self, ids: np.ndarray, audio: np.ndarray | None) -> torch.Tensor:
        inp = self._inputs(ids, audio)
        return self.model._merge_input_ids_with_input_values(
            inp["input_ids"], inp.get("input_values"), inp.get("input_values_cutoffs"))[
            "inputs_embeds"]

    # -- teacher-forced taps -----------------------------------------------------------------

    @torch.no_grad()
    def teacher(self, ids: np.ndarray, audio: np.ndarray, n_depth: int,
                taps: Sequence[str]) -> dict:
        m, cfg = self.model, self.config
        rec: dict[str, np.ndarray] = {}
        table = _layer_tables("backbone_model", cfg.num_hidden_layers)
        with hook_taps(m, {k: v for k, v in table.items() if v[0] in taps}, rec,
                       inputs={"backbone_model.layers.0": "backbone_model.embed"}):
            out = m(**self._inputs(ids, audio), output_hidden_states=True)
        rec["logits"] = out.logits.float().numpy().copy()
        rec["logits.argmax"] = out.logits.argmax(-1).numpy().astype(np.int64)
        codes = self.encode(audio)  # (F, K)
        rec["context.codes"] = codes.T.copy()
        h = out.hidden_states[-1]  # (1, T, C) normed
        pos = np.flatnonzero(np.asarray(ids) == cfg.audio_token_id)[:n_depth]
        frames = torch.from_numpy(codes[:n_depth])  # (n, K)
        dd_ids = torch.nn.functional.pad(frames[:, :-1], (1, 0), value=0)  # [0, c_0..c_{K-2}]
        dtable = _layer_tables("depth_decoder.model",
                               cfg.depth_decoder_config.num_hidden_layers)
        with hook_taps(m, {k: v for k, v in dtable.items() if v[0] in taps}, rec,
                       inputs={"depth_decoder.model.layers.0": "depth_decoder.model.embed"}):
            dout = m.depth_decoder(input_ids=dd_ids,
                                   backbone_last_hidden_state=h[0, torch.from_numpy(pos - 1)])
        rec["depth_decoder.logits"] = dout.logits.float().numpy().copy()
        rec["depth_decoder.logits.argmax"] = dout.logits.argmax(-1).numpy().astype(np.int64)
        return {k: v for k, v in rec.items() if k in taps}

    # -- generation --------------------------------------------------------------------------

    @torch.no_grad()
    def generate_upstream(self, ids: np.ndarray, audio: np.ndarray | None,
                          max_frames: int) -> np.ndarray:
        """Greedy frames (n, K) from upstream's own `generate` (module docstring)."""
        m = self.model
        mask = LogitsProcessorList([CodecMask(self.codebook_size)])
        plain = m.depth_decoder.generate

        def depth_generate(*args, **kwargs):
            return plain(*args, logits_processor=mask, **kwargs)

        m.depth_decoder.generate = depth_generate  # instance attribute, removed below
        try:
            out = m.generate(**self._inputs(ids, audio), do_sample=False,
                             max_new_tokens=max_frames, logits_processor=mask)
        finally:
            del m.depth_decoder.generate
        return out[0].numpy().astype(np.int64)

    @torch.no_grad()
    def generate(self, ids: np.ndarray, audio: np.ndarray | None, temperature: float,
                 top_k: int = 0, top_p: float = 1.0, min_p: float = 0.0, max_frames: int = 64,
                 seed: int = 0, noise: Callable[[int], np.ndarray] | None = None) -> np.ndarray:
        """Frames (n, K) from the written-out loop (module docstring), the end frame included."""
        m, k_total = self.model, self.k
        eos = self.config.codebook_eos_token_id
        noise = noise or gumbel_noise(seed, self.config.vocab_size)
        procs = [CodecMask(self.codebook_size)]
        if temperature > 0:
            if temperature != 1.0:
                procs.append(TemperatureLogitsWarper(temperature))
            if top_k > 0:
                procs.append(TopKLogitsWarper(top_k))
            if top_p < 1.0:
                procs.append(TopPLogitsWarper(top_p))
            if min_p > 0:
                procs.append(MinPLogitsWarper(min_p))

        def pick(logits: torch.Tensor, step: int) -> int:
            scores = logits.float()
            for p in procs:
                scores = p(None, scores)
            if temperature > 0:
                scores = scores + torch.from_numpy(noise(step))
            return int(torch.argmax(scores, dim=-1)[0])

        out = m.backbone_model(inputs_embeds=self.embeds(ids, audio), use_cache=True)
        cache, h = out.cache, out.last_hidden_state[:, -1]
        frames: list[list[int]] = []
        for f in range(max_frames):
            frame = [pick(m.lm_head(h), f * k_total)]
            d = m.depth_decoder(input_ids=torch.tensor([[0, frame[0]]]),
                                backbone_last_hidden_state=h, use_cache=True, logits_to_keep=1)
            for k in range(1, k_total):
                frame.append(pick(d.logits[:, -1], f * k_total + k))
                if k + 1 < k_total:
                    d = m.depth_decoder(input_ids=torch.tensor([[frame[k]]]), cache=d.cache,
                                        use_cache=True, logits_to_keep=1)
            frames.append(frame)
            if all(c == eos for c in frame[:-1]):
                break
            if f + 1 < max_frames:
                out = m.backbone_model(input_ids=torch.tensor([[frame]]), cache=cache,
                                       use_cache=True)
                cache, h = out.cache, out.last_hidden_state[:, -1]
        return np.array(frames, np.int64).reshape(-1, k_total)

    @torch.no_grad()
    def decode(self, frames: np.ndarray) -> np.ndarray:
        """upstream `output_audio`: the frames before the first all-zero frame -> (N,)."""
        frames = np.asarray(frames, np.int64)
        done = np.flatnonzero((frames == self.config.codebook_eos_token_id).all(axis=1))
        frames = frames[: done[0]] if done.size else frames
        if frames.shape[0] == 0:
            return np.zeros(0, np.float32)
        codes = torch.from_numpy(frames.T[None].copy())  # (1, K, F)
        return self.model.codec_model.decode(codes).audio_values[0, 0].numpy().copy()

    # -- benchmark (module docstring) -------------------------------------------------------

    def speak(self, prompt: Sequence[int], options: Mapping, seed: int = 0) -> tuple:
        """Prompt ids (no context clip) -> (frames (n, K), (N,) float32 audio, sample rate)."""
        if options.get("draw", "gumbel") != "gumbel" or options.get("cfg_scale", 1.0) != 1.0 \
                or options.get("repetition_penalty", 1.0) != 1.0:
            raise ValueError("the CSM reference samples with Gumbel noise, without guidance or "
                             f"repetition penalty; got {dict(options)}")
        frames = self.generate(np.asarray(prompt, np.int64), None, options["temperature"],
                               options.get("top_k", 0), options.get("top_p", 1.0),
                               options.get("min_p", 0.0), max_frames=options["max_tokens"],
                               seed=seed)
        return frames, self.decode(frames), int(self.config.codec_config.sampling_rate)

    def stop_reason(self, frames: np.ndarray, options: Mapping) -> str:
        """The port's stop reason: "end_of_audio" when the last frame is an end frame (codebooks
        0..K-2 all `codebook_eos_token_id`), else "max_tokens"."""
        frames = np.asarray(frames)
        eos = self.config.codebook_eos_token_id
        return ("end_of_audio" if len(frames) and (frames[-1][:-1] == eos).all()
                else "max_tokens")


TTS_REFERENCE = CsmReference  # what benchmarks.tts times as the torch engine (`speak`)
