"""Reference adapter for OuteTTS 1.0: transformers `LlamaForCausalLM` (seeded) + transformers
`DacModel` (the reference DAC of reference/dac.py) with 2 codebooks.

Upstream: transformers 5.24.0, torch 2.13.0, CPU, float32, eager attention. The `outetts`
package (0.4.4) itself is not imported: it pins transformers 4.52 and imports llama.cpp / vLLM
/ exl2 backends, `dac` (descript) and the hub at import time; its prompt, token and sampler code
was read instead (mlx_impl/outetts/tokens.py and generate.py cite the files). Its sampler is
transformers' processors with one patch, the repetition penalty over the last 64 ids
(`models/hf_model.py` `RepetitionPenaltyLogitsProcessorPatch`): here transformers'
`RepetitionPenaltyLogitsProcessor` applied to the last 64 ids of the history, which is the same
operation (each id of the window penalised once, from the unpenalised score).

Weights: no checkpoint is downloaded. `build_model(preset, seed)` writes a model folder `lm/`
(`reference.orpheus.write_lm`: transformers' init under `torch.manual_seed(seed)`, RMSNorm gains
1 + N(0, 0.1^2)) + `dac/` (`reference.dac.build_random`: its documented re-draws), atomically
into a cache folder outside the repository keyed by (config, seed, init, versions).
`mlx_impl.outetts.load.load_tts` reads the same folder.

Tokens: both sides are fed ids (`mlx_impl.outetts.tokens.prompt_ids`, the offline TEST token
layout; OuteTTS's tokenizer comes only from the hub).

Generation: `reference.orpheus.generate_loop` (the manual KV-cached loop with transformers'
processors and injected Gumbel noise) with `CodeGrammar`, the port's documented c1/c2 mask
(mlx_impl/outetts/generate.py): at even steps after the prompt only c1_0..c1_1023 and eos, at
odd steps only c2_0..c2_1023. Stop: eos `<|im_end|>` (kept) or `max_tokens`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from reference.checkpoints import seeded_checkpoint
from reference.dac import build_random as build_dac
from reference.orpheus import LlamaCodesReference, _generate_kwargs, load_lm, write_lm
from reference.orpheus import versions as _versions

INIT = "outetts-init-v1"  # bump when the initialisation changes (part of the cache key)

# the TEST token layout of mlx_impl/outetts/tokens.py (written again: reference/ never imports
# mlx_impl): Llama-3's 128256 ids, 16 specials (im_start, im_end, ...), c1_0.., c2_0..
TEXT_VOCAB = 128256
EOS = TEXT_VOCAB + 1  # <|im_end|>
C1_0 = TEXT_VOCAB + 16
C2_0 = C1_0 + 1025
CODEBOOK_SIZE = 1024


def versions() -> dict:
    v = _versions()
    v.pop("snac", None)
    return v


def build_model(preset: Mapping, seed: int = 0, cache: Path | None = None) -> Path:
    """The model folder (lm/ + dac/) of `preset` ({"lm": LlamaConfig dict, "dac": DacConfig
    dict}) with seeded random weights, built once and reused from the cache."""

    def write(folder: Path) -> None:
        write_lm(folder / "lm", preset["lm"], seed)
        build_dac(preset["dac"], seed).save_pretrained(folder / "dac")

    return seeded_checkpoint("outetts", preset, seed, {"init": INIT, **versions()},
                             ("lm/model.safetensors", "lm/config.json", "dac/model.safetensors",
                              "dac/config.json"), write, cache,
                             prefix=f"{preset['lm']['hidden_size']}h{preset['lm']['num_hidden_layers']}l-")


class CodeGrammar:
    """transformers-style logits processor: the port's c1/c2 mask (module docstring)."""

    def __init__(self, n_prompt: int, vocab: int):
        self.n_prompt = n_prompt
        self.allowed = torch.zeros(2, vocab, dtype=torch.bool)
        self.allowed[0, C1_0:C1_0 + CODEBOOK_SIZE] = True
        self.allowed[0, EOS] = True
        self.allowed[1, C2_0:C2_0 + CODEBOOK_SIZE] = True

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        p = (input_ids.shape[1] - self.n_prompt) % 2
        return scores.masked_fill(~self.allowed[p], -float("inf"))


def extract_codes(tokens) -> np.ndarray:
    """outetts `extract_audio_from_tokens`: c1 ids and c2 ids in order, cut to the shorter ->
    (2, T) int64 DAC codes."""
    ids = np.asarray(tokens, np.int64).reshape(-1)
    c1 = ids[(ids >= C1_0) & (ids < C1_0 + 1025)] - C1_0
    c2 = ids[(ids >= C2_0) & (ids < C2_0 + 1025)] - C2_0
    t = min(c1.size, c2.size)
    return np.stack([c1[:t], c2[:t]])


class OuteTTSReference(LlamaCodesReference):
    grammar, stop = CodeGrammar, EOS

    def __init__(self, folder: Path):
        from transformers import DacModel

        self.folder = Path(folder)
        self.model = load_lm(self.folder / "lm")
        self.dac = DacModel.from_pretrained(str(self.folder / "dac")).float().eval()
        self.config = self.model.config.to_dict()
        self.versions = versions()

    @torch.no_grad()
    def decode(self, codes: np.ndarray) -> np.ndarray:
        """DAC codes (2, T) -> (T * hop,) float32."""
        c = torch.from_numpy(np.ascontiguousarray(np.asarray(codes, np.int64)))[None]
        if c.shape[-1] == 0:
            return np.zeros(0, np.float32)
        return self.dac.decode(audio_codes=c).audio_values[0].numpy().copy()

    def speak(self, prompt, options: Mapping, seed: int = 0) -> tuple:
        """Prompt ids -> (generated ids, (N,) float32 audio, sample rate): `generate` with the
        sampling `options` (the port's `SamplingOptions` fields as a dict) and seed, then the
        c1/c2 codes (`extract_codes`) through the DAC (`benchmarks.tts`'s torch engine)."""
        tokens = self.generate(prompt, **_generate_kwargs(options), seed=seed)
        return tokens, self.decode(extract_codes(tokens)), int(self.dac.config.sampling_rate)


TTS_REFERENCE = OuteTTSReference  # what benchmarks.tts times as the torch engine (`speak`)
