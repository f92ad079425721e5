"""mlx-audio 0.6.2 as the TTS benchmarks' same-framework peer (the `mlx-audio` engine of
benchmarks/tts.py), on the same seeded checkpoint as ours and the torch reference.

Install: `scripts/setup_bench_peers.sh` (`make bench-peers`) puts mlx-audio 0.6.2 with
`pip install --no-deps --target <cache>/peers/mlx-audio-0.6.2`: an isolated folder, never
.venv's site-packages. Its declared dependencies that the Orpheus path imports (mlx 0.32.4, the
same as ours; transformers, huggingface_hub, numpy, scipy, tqdm, jinja2) are already in .venv at
our pins; miniaudio, sentencepiece and sounddevice are imported lazily by other models' code only,
so they are not installed. The worker puts the folder first on sys.path and checks the version.

Orpheus (`mlx_audio.tts.models.llama`), read from mlx-audio 0.6.2's source; what this adapter
does and why, each measured here on orpheus-test-tiny:
- Layout: its loader (`mlx_audio.tts.utils.load_model`) reads an HF folder: config.json +
  *.safetensors in transformers' Llama names (our `lm/` as is, linked) and `tokenizer_name` in
  config.json (default the hub's `mlx-community/orpheus-3b-0.1-ft-bf16`). The prepared folder's
  config.json is our `lm/config.json` plus `rope_theta` / `rope_scaling` (transformers 5 writes
  them as `rope_parameters`, which its ModelArgs does not read: without them it would run plain
  RoPE instead of llama3's), `tokenizer_name` (the folder below) and `sample_rate`.
- Tokenizer: the hub's Llama-3 tokenizer cannot be fetched; `tokenizer/` is a tokenizers-library
  tokenizer.json built here that encodes exactly as ours' offline TEST tokenizer (UTF-8 bytes
  as ids 0-255 after `<|begin_of_text|>` 128000; every other id a named placeholder so that
  any id decodes). The worker checks that mlx-audio's prompt equals ours, id for id.
- SNAC: `llama.py` loads `SNAC.from_pretrained("mlx-community/snac_24khz")` at import time (a
  hub download: LocalEntryNotFoundError offline). Its hub fetch (`snac.fetch_from_hub`) is
  pointed at `snac/`: our seeded torch SNAC converted to mlx-audio's layout (Sequential indices
  under `.layers.`, weight-norm `parametrizations.weight.original0/1` -> `weight_g`/`weight_v`,
  kernels (out, in, k) -> (out, k, in)), loaded strictly by its own `load_weights`.
- Prompt: mlx-audio ends the prompt at end-of-human (128260) and leaves start-of-AI, start-of-
  speech (128261, 128257) to a trained model; orpheus_tts and ours put them in the prompt. Its
  `prepare_input_ids` output gets those two ids appended (the random-weight LM under the grammar
  could never emit them, and its `parse_output` crops the codes after the last 128257).
- Grammar: ours and the reference mask the logits to the 7 frame positions' audio ids (random
  weights otherwise emit non-audio ids, which mlx-audio's SNAC decode would index out of range);
  the same mask (`mlx_impl.orpheus.generate.audio_masks`) is appended to mlx-audio's logits
  processors (its `make_logits_processors`, wrapped), so the three engines do the same work.
- Sampling: its own (`make_sampler`: temperature, top-p, top-k; `make_logits_processors`:
  repetition penalty over `repetition_context_size` ids, given the prompt + max_tokens so it
  covers the whole history as ours' default does), seeded with `mx.random.seed(seed)` per call:
  other draws than ours' numpy Gumbel noise, so its ids (and where it stops) differ from ours;
  tokens/s and audio seconds per wall second are per its own run.
- Streaming: `generate(stream=True, streaming_interval=...)` with the interval set to 84
  generated tokens (12 frames), when ours' `stream` hands out its first chunk (chunk 8 frames +
  4 of look-ahead), so time to first audio compares the same amount of generation.

OuteTTS (`mlx_audio.tts.models.outetts`), the same way; where it differs from Orpheus:
- Layout: the prepared folder's name starts with "outetts-" (mlx-audio picks the OuteTTS class
  from the folder name's parts, as for the hub's Llama-OuteTTS-1.0-1B; the config's model_type
  "llama" then selects its Llama backbone); `tokenizer/` encodes as ours' OuteTTS TEST token
  layout (UTF-8 bytes, then OuteTTS's special, c1/c2, time and feature tokens as added tokens
  at ours' ids; eos `<|im_end|>`).
- DAC: its `AudioProcessor` (built inside every `generate` call) loads
  `DAC.from_pretrained("mlx-community/dac-speech-24khz-1.5kbps")`; that hub fetch
  (`descript.dac.fetch_from_hub`) is pointed at `dac/`: our seeded transformers DacModel in
  descript's layout (mlx-audio's names: Sequential indices, snake1/conv1/res_unit* -> their
  positions; each fused conv weight W stored as weight_v = W (MLX kernel layout) and weight_g =
  its norm, so their weight norm rebuilds W; snake alpha (1, C, 1) -> (1, 1, C)).
- Voice: ours' default is no speaker; mlx-audio's `get_speaker(None, None)` loads its bundled
  default speaker profile (codes of its real DAC), so `get_speaker` returns None here.
- Text: its `chunk_text` splits at sentence punctuation and drops it (the bench text's final
  "." would vanish); the text is one 18-word sentence, one chunk either way, so `chunk_text`
  returns it whole and all engines get the same prompt (checked id for id).
- Grammar: ours' c1/c2 masks (`mlx_impl.outetts.generate.audio_masks`) appended to its logits
  processors. Sampling: its `make_sampler(temperature, top_p, min_p, top_k)` and repetition
  penalty over 64 ids: ours' defaults are the same numbers.

CSM / Marvis (`mlx_audio.tts.models.sesame`, which mlx-audio also uses for Marvis), measured
here on csm-test-tiny and marvis-test-tiny (greedy: its audio equals ours' to 3.3e-6 at rms 2.4,
so the frames are identical; 2026-12-05):
- Layout: its loader reads config.json (model_type "csm") + model.safetensors in Sesame's
  original names. `csm_to_sesame` renames our transformers checkpoint (backbone_model ->
  model.backbone, depth_decoder.model -> model.decoder, embed_text_tokens -> text_embeddings,
  the depth decoder's codebook embeddings (tied to the backbone's) -> audio_embeddings,
  inputs_embeds_projector -> projection, lm_head -> codebook0_head, codebooks_head ->
  audio_head) and puts the q/k projection rows back into the interleaved RoPE layout its
  attention rotates (Sesame's torchtune RoPE; transformers' conversion permutes them to
  rotate_half). The config gets rope_theta / rope_scaling (also in depth_decoder_config),
  audio_vocab_size / audio_num_codebooks, its local tokenizer and use_default_voice_prompt
  false (its default voice prompt is a hub download of sesame/csm-1b's prompts).
- Tokenizer: `tokenizer/` encodes as ours' CSM/Marvis TEST tokenizer ([bos] + UTF-8 bytes of
  "[speaker]text" + [eos], each family's bos/eos ids); the worker checks its prompt ids (its
  `_tokenize_text_segment`, speaker 0, no context) equal ours.
- Mimi: sesame.py builds `Mimi.from_pretrained("kyutai/moshiko-pytorch-bf16")`, a hub download
  at the fixed mimi_202407(32) configuration. Its `Mimi` name in sesame.py is pointed at a
  subclass whose from_pretrained builds mlx-audio's own `Mimi` at our codec's configuration
  (`local_mimi`: its MimiConfig from the transformers MimiConfig fields, so the tiny 8-codebook
  Mimi too) and loads `mimi/` strictly: our seeded transformers MimiModel in its names and MLX
  layouts (`mimi_to_mlx_audio`: SEANet layers by position, fused q/k/v in_proj with q/k back in
  the interleaved RoPE layout, codebook sums), then its own in-place updates. Its decode of the
  same codes equals ours' (csm-test-tiny: max |diff| 3.3e-6 at rms 3.1).
- Sampling: its `make_sampler(temp, top_p, min_p, top_k)` (one sampler for both heads, as
  ours' options) behind ours' codec mask (ids >= the codebook size to -inf), passed as its
  `sampler`; seeded with mx.random.seed. Its watermarker needs silentcipher, which is not
  installed (the worker refuses to run if it were: ours does not watermark).
- Prompt: speaker `plan["voice"]` (0), no context, the text as one piece (split_pattern None);
  max_audio_length_ms = max_tokens x 80 (its max frames = ms / 80). Its stop: a frame of ALL
  zeros (not appended); ours' and upstream's: codebooks 0..K-2 zero (the end frame counted).
- Counting: its `token_count` is frames; n_tokens = frames x K as ours'. Streaming:
  `generate(stream=True)` with streaming_interval (4 + 0.5) / 12.5 s (its interval in frames is
  int(interval x 12.5) = 4, ours' `stream` chunk of 4 frames).

Dia (`mlx_audio.tts.models.dia`, nari-labs' original architecture), measured here on
dia-test-tiny (2026-12-05):
- Layout: its loader picks the Dia class from the prepared folder's name ("dia-..."; its config
  has no model_type) and reads nari-labs' config json (`dia_nari_config`: model encoder/decoder
  sizes, vocabularies, RoPE timescale, data text/audio lengths, special ids, delay pattern;
  training dtype float32, its default is bfloat16) and nari-labs' names and DenseGeneral kernel
  shapes (`dia_to_nari`: q/k/v (E, H, D), o (H, D, E), the fused gate/up (E, 2, I), wo (I, E),
  one embedding table per channel, logits_dense (E, C, V)).
- DAC: its Model builds `DAC.from_pretrained("mlx-community/descript-audio-codec-44khz")`; that
  hub fetch is pointed at `dac/`, our seeded DAC in descript's layout (`write_dac`, as OuteTTS).
  Its decode of the same codes equals ours' (max |diff| 3.2e-6 at rms 0.34).
- A model difference, kept: its attention applies RoPE in the decoder's cross-attention too (q
  at the decoder positions, k at the text positions; nari-labs' code), transformers 5.24's Dia
  (ours' and the reference's) does not. With that rotation switched off its teacher-forced
  logits equal ours' (max |diff| 1.7e-6 at rms 1.0), so the weights map exactly; with it they
  differ by up to 0.05. It does the same amount of work either way.
- Its generation differs from upstream's in ways it owns: the text padded to the encoder's
  1024 positions (both CFG rows; ours' encodes the text alone), CFG as cond + 3 (cond -
  uncond) then top-k 35 / top-p 0.95 on the guided logits (ours' and transformers': guidance
  top-k on the conditional logits), ids above eos masked, no eos forcing at the length limit,
  its own draws (mx.random). `Model.generate` passes no sampling options on, so its defaults
  (temperature 1.3, top-p 0.95, top-k 35, cfg 3) are used: the worker checks they are ours'.
- Counting: its token_count is rows; n_tokens = rows x 9 as ours'. Its audio: the rows less its
  bos column and the last 30 rows (`codebook_to_audio`), so max_tokens must exceed 31 and its
  audio seconds are its own. No streaming API: no `stream` row.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from parity.spec import BenchStage


class EngineUnavailable(RuntimeError):
    """An engine that cannot bench this model (no reference speak(), no peer adapter): the
    runner writes that engine's FAILED row with this message."""

VERSION = "0.6.2"
SNAC_REPO = "mlx-community/snac_24khz"
CSM_STREAM_FRAMES = 4  # ours' CsmTTS.stream chunk_frames: the first chunk after 4 frames
ORPHEUS_STREAM_TOKENS = 84  # ours' first streamed chunk: (8 + 4 look-ahead) frames x 7 tokens
STREAM_TOKENS_PER_SECOND = 137.5  # mlx-audio 0.6.2 llama.py: streaming interval (s) x 137.5
DAC_REPO = "mlx-community/dac-speech-24khz-1.5kbps"
LAYOUT = "mlx-audio-tts-v1"  # bump when a prepared layout changes


def peer_dir(cache: Path) -> Path:
    return Path(cache) / "peers" / f"mlx-audio-{VERSION}"


def _require_peer(cache: Path) -> Path:
    folder = peer_dir(cache)
    if not (folder / "mlx_audio").is_dir():
        raise FileNotFoundError(f"mlx-audio {VERSION} is not installed in {folder}; run "
                                "`scripts/setup_bench_peers.sh` (make bench-peers)")
    return folder


def prepared_folder(plan: dict, cache: Path) -> Path:
    return Path(cache) / "mlx-audio" / f"{plan['package']}-{Path(plan['folder']).name}"


# ---------------------------------------------------------------------------------------------
# the prepared layout (parent process)


def bytes_to_unicode() -> dict[int, str]:
    """The byte -> printable character table of byte-level BPE (GPT-2's scheme, which the
    tokenizers library's ByteLevel pre-tokenizer and decoder use)."""
    keep = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
            + list(range(ord("®"), ord("ÿ") + 1)))
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def write_test_tokenizer(folder: Path, vocab_size: int) -> None:
    """tokenizer.json + tokenizer_config.json encoding as ours' Orpheus test tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors

    chars = bytes_to_unicode()
    vocab = {chars[b]: b for b in range(256)}
    names = {128000: "<|begin_of_text|>", 128009: "<|eot_id|>"}
    for i in range(256, vocab_size):
        vocab[names.get(i, f"<custom_token_{i - 128256}>" if i >= 128256
                        else f"<|reserved_{i}|>")] = i
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.TemplateProcessing(
        single="<|begin_of_text|> $A", special_tokens=[("<|begin_of_text|>", 128000)])
    folder.mkdir(parents=True, exist_ok=True)
    tok.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<|begin_of_text|>",
        "eos_token": "<|eot_id|>", "model_max_length": 131072}, indent=2))


def write_outetts_tokenizer(folder: Path) -> None:
    """tokenizer.json + tokenizer_config.json encoding as ours' OuteTTS TEST token layout
    (`mlx_impl.outetts.tokens`): bytes as ids 0-255, every OuteTTS token string an added token
    at ours' id."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

    from mlx_impl.outetts import tokens as T

    chars = bytes_to_unicode()
    vocab = {chars[b]: b for b in range(256)}
    vocab |= {f"<|reserved_{i}|>": i for i in range(256, T.TEXT_VOCAB)}
    added = {T.SPECIAL[name]: f"<|{name}|>" for name in T.SPECIALS}
    added |= {T.C1_0 + i: f"<|c1_{i}|>" for i in range(T.N_CODE_TOKENS)}
    added |= {T.C2_0 + i: f"<|c2_{i}|>" for i in range(T.N_CODE_TOKENS)}
    added |= {T.TIME_0 + i: f"<|t_{i / 100:.2f}|>" for i in range(T.N_TIME)}
    added |= {T.FEATURE_0[f] + v: f"<|{f}_{v}|>" for f in T.FEATURES for v in range(101)}
    if sorted(added) != list(range(T.TEXT_VOCAB, T.VOCAB_SIZE)):
        raise AssertionError("the OuteTTS test layout's added ids are not contiguous")
    vocab |= {text: i for i, text in added.items()}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(added[i], special=True, normalized=False)
                            for i in sorted(added)])
    folder.mkdir(parents=True, exist_ok=True)
    tok.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<|im_start|>",
        "eos_token": "<|im_end|>", "model_max_length": 131072}, indent=2))


def dac_to_mlx_audio(state: dict, n_blocks: int) -> dict:
    """A transformers `DacModel` state dict -> mlx-audio 0.6.2 descript DAC parameter names and
    layouts (module docstring). `n_blocks`: encoder and decoder blocks (len of the rates)."""
    from mlx_impl.layers.conv import torch_to_mlx_kernel

    unit = {"snake1": "0", "conv1": "1", "snake2": "2", "conv2": "3"}

    def rename(k: str) -> str:
        m = re.fullmatch(r"(encoder|decoder)\.(conv1|conv2|snake1)\.(.+)", k)
        if m:
            side, part, leaf = m.groups()
            pos = {"conv1": 0, "snake1": n_blocks + 1, "conv2": n_blocks + 2}[part]
            return f"{side}.{'block' if side == 'encoder' else 'model'}.layers.{pos}.{leaf}"
        m = re.fullmatch(r"(encoder|decoder)\.block\.(\d+)\.(.+)", k)
        if m:
            side, i, rest = m.groups()
            head = (f"encoder.block.layers.{int(i) + 1}" if side == "encoder"
                    else f"decoder.model.layers.{int(i) + 1}")
            r = re.fullmatch(r"res_unit(\d)\.(snake1|conv1|snake2|conv2)\.(.+)", rest)
            if r:  # encoder: res units 0-2; decoder: snake 0, conv_t 1, res units 2-4
                j = int(r.group(1)) - 1 + (0 if side == "encoder" else 2)
                return f"{head}.block.layers.{j}.block.layers.{unit[r.group(2)]}.{r.group(3)}"
            r = re.fullmatch(r"(snake1|conv1|conv_t1)\.(.+)", rest)
            pos = {("encoder", "snake1"): 3, ("encoder", "conv1"): 4,
                   ("decoder", "snake1"): 0, ("decoder", "conv_t1"): 1}[(side, r.group(1))]
            return f"{head}.block.layers.{pos}.{r.group(2)}"
        if k.startswith("quantizer."):
            return k
        raise KeyError(f"unexpected DAC parameter {k}")

    out = {}
    for k, v in state.items():
        v = np.asarray(v, np.float32)
        name = rename(k)
        if name.endswith(".alpha"):
            out[name] = np.ascontiguousarray(v.transpose(0, 2, 1))  # (1, C, 1) -> (1, 1, C)
        elif name.endswith(".weight") and v.ndim == 3:
            transposed = ".conv_t1." in k
            w = torch_to_mlx_kernel(v, transposed)  # (out, k, in)
            axes = (0, 1) if transposed else (1, 2)  # weight norm over all but its dim
            base = name[: -len(".weight")]
            out[base + ".weight_v"] = np.ascontiguousarray(w)
            out[base + ".weight_g"] = np.sqrt((w.astype(np.float64) ** 2).sum(
                axis=axes, keepdims=True)).astype(np.float32)
        else:
            out[name] = v
    return out


def snac_to_mlx_audio(state: dict) -> dict:
    """A `snac` package state dict (torch names) -> mlx-audio 0.6.2 SNAC parameter names and
    layouts (module docstring)."""
    out = {}
    for k, v in state.items():
        v = np.asarray(v, np.float32)
        name = re.sub(r"\b(model|block)\.(\d+)", r"\1.layers.\2", k)
        if name.endswith("parametrizations.weight.original0"):
            name = name.replace("parametrizations.weight.original0", "weight_g")
        elif name.endswith("parametrizations.weight.original1"):
            name = name.replace("parametrizations.weight.original1", "weight_v")
            v = np.ascontiguousarray(v.transpose(0, 2, 1))
        out[name] = v
    return out


def prepare_orpheus(plan: dict, folder: Path, final: Path) -> None:
    """Write the layout into `folder`, which will be renamed to `final` (the config names the
    tokenizer by its final path)."""
    import torch
    from safetensors.numpy import save_file

    src = Path(plan["folder"])
    config = _lm_config(src, final, plan["sample_rate"])
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    os.symlink(src / "lm" / "model.safetensors", folder / "model.safetensors")
    write_test_tokenizer(folder / "tokenizer", config["vocab_size"])
    (folder / "snac").mkdir()
    state = torch.load(src / "snac" / "pytorch_model.bin", map_location="cpu", weights_only=True)
    save_file(snac_to_mlx_audio({k: t.numpy() for k, t in state.items()}),
              str(folder / "snac" / "model.safetensors"))
    shutil.copy(src / "snac" / "config.json", folder / "snac" / "config.json")


def _lm_config(src: Path, final: Path, sample_rate: int) -> dict:
    """Our lm/config.json for mlx-audio's Llama: llama3 RoPE as rope_theta / rope_scaling (its
    ModelArgs does not read transformers 5's rope_parameters) and the local tokenizer."""
    config = json.loads((src / "lm" / "config.json").read_text())
    rope = dict(config.get("rope_parameters") or {})
    config["rope_theta"] = rope.pop("rope_theta", config.get("rope_theta", 10000.0))
    if rope.get("rope_type", "default") != "default":
        config["rope_scaling"] = rope
    config["tokenizer_name"] = str(final / "tokenizer")
    config["sample_rate"] = sample_rate
    return config


def prepare_outetts(plan: dict, folder: Path, final: Path) -> None:
    src = Path(plan["folder"])
    config = _lm_config(src, final, plan["sample_rate"])
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    os.symlink(src / "lm" / "model.safetensors", folder / "model.safetensors")
    write_outetts_tokenizer(folder / "tokenizer")
    write_dac(src / "dac", folder / "dac")


def write_dac(src: Path, out: Path) -> None:
    """Our seeded transformers DacModel folder -> mlx-audio's descript DAC folder (module
    docstring: OuteTTS's DAC)."""
    from safetensors.numpy import load_file, save_file

    dac = json.loads((src / "config.json").read_text())
    out.mkdir()
    (out / "config.json").write_text(json.dumps({
        "encoder_dim": dac["encoder_hidden_size"], "encoder_rates": dac["downsampling_ratios"],
        "latent_dim": dac["hidden_size"], "decoder_dim": dac["decoder_hidden_size"],
        "decoder_rates": dac["upsampling_ratios"], "n_codebooks": dac["n_codebooks"],
        "codebook_size": dac["codebook_size"], "codebook_dim": dac["codebook_dim"],
        "sample_rate": dac["sampling_rate"]}, indent=2))
    save_file(dac_to_mlx_audio(load_file(str(src / "model.safetensors")),
                               len(dac["upsampling_ratios"])),
              str(out / "model.safetensors"))


def dia_to_nari(state: dict, config: dict) -> dict:
    """A transformers `DiaForConditionalGeneration` state dict -> mlx-audio 0.6.2 Dia names
    and DenseGeneral kernel shapes (nari-labs' layout; module docstring: Dia)."""
    dec = config["decoder_config"]
    c, v = dec["num_channels"], dec["vocab_size"]
    out = {}
    for k, w in state.items():
        w = np.asarray(w, np.float32)
        if k == "logits_dense.weight":  # (C V, E) -> (E, C, V)
            out["decoder.logits_dense.weight"] = np.ascontiguousarray(
                w.reshape(c, v, -1).transpose(2, 0, 1))
            continue
        if k == "model.decoder.embeddings.embed.weight":  # channel c's table: rows c V..
            for ch in range(c):
                out[f"decoder.embeddings.{ch}.weight"] = np.ascontiguousarray(
                    w[ch * v:(ch + 1) * v])
            continue
        name = k.removeprefix("model.")
        m = re.fullmatch(r"(.+)\.(self_attention|cross_attention)\.(q|k|v|o)_proj\.weight", name)
        if m:
            side = "encoder" if name.startswith("encoder.") else "decoder"
            head_dim = (config["encoder_config"]["head_dim"] if side == "encoder" else
                        dec["cross_head_dim"] if m.group(2) == "cross_attention"
                        else dec["head_dim"])
            if m.group(3) == "o":  # (E, H D) -> (H, D, E)
                w = w.T.reshape(-1, head_dim, w.shape[0])
            else:  # (H D, E) -> (E, H, D)
                w = w.T.reshape(w.shape[1], -1, head_dim)
            out[name] = np.ascontiguousarray(w)
            continue
        if name.endswith("mlp.gate_up_proj.weight"):  # (2 I, E) -> (E, 2, I): gate, up
            out[name.replace("gate_up_proj", "wi_fused")] = np.ascontiguousarray(
                w.T.reshape(w.shape[1], 2, -1))
            continue
        if name.endswith("mlp.down_proj.weight"):  # (E, I) -> (I, E)
            out[name.replace("down_proj", "wo")] = np.ascontiguousarray(w.T)
            continue
        if name.endswith("norm.weight") or name == "encoder.embedding.weight":
            out[name] = w
            continue
        raise KeyError(f"unexpected Dia parameter {k}")
    return out


def dia_nari_config(config: dict, sample_rate: int) -> dict:
    """mlx-audio's DiaConfig (nari-labs' json) of our transformers DiaConfig, float32."""
    enc, dec = config["encoder_config"], config["decoder_config"]
    rope = (enc.get("rope_parameters") or {}).get("rope_theta", 10000.0)
    if (dec.get("rope_parameters") or {}).get("rope_theta", 10000.0) != rope:
        raise ValueError("mlx-audio's Dia has one RoPE timescale for encoder and decoder")
    return {"version": "1.0", "model": {
        "encoder": {"n_layer": enc["num_hidden_layers"], "n_embd": enc["hidden_size"],
                    "n_hidden": enc["intermediate_size"], "n_head": enc["num_attention_heads"],
                    "head_dim": enc["head_dim"]},
        "decoder": {"n_layer": dec["num_hidden_layers"], "n_embd": dec["hidden_size"],
                    "n_hidden": dec["intermediate_size"],
                    "gqa_query_heads": dec["num_attention_heads"],
                    "kv_heads": dec["num_key_value_heads"], "gqa_head_dim": dec["head_dim"],
                    "cross_query_heads": dec["cross_num_attention_heads"],
                    "cross_head_dim": dec["cross_head_dim"]},
        "src_vocab_size": enc["vocab_size"], "tgt_vocab_size": dec["vocab_size"],
        "normalization_layer_epsilon": dec["norm_eps"], "weight_dtype": "float32",
        "rope_min_timescale": 1, "rope_max_timescale": int(rope), "sample_rate": sample_rate},
        "training": {"dtype": "float32", "logits_dot_in_fp32": True},
        "data": {"text_length": enc["max_position_embeddings"],
                 "audio_length": dec["max_position_embeddings"],
                 "channels": dec["num_channels"], "text_pad_value": 0,
                 "audio_eos_value": dec["eos_token_id"], "audio_pad_value": dec["pad_token_id"],
                 "audio_bos_value": dec["bos_token_id"],
                 "delay_pattern": list(config["delay_pattern"])}}


def prepare_dia(plan: dict, folder: Path, final: Path) -> None:
    from safetensors.numpy import load_file, save_file

    src = Path(plan["folder"])
    config = json.loads((src / "lm" / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(dia_nari_config(config, plan["sample_rate"]),
                                                   indent=2))
    save_file(dia_to_nari(load_file(str(src / "lm" / "model.safetensors")), config),
              str(folder / "model.safetensors"))
    write_dac(src / "dac", folder / "dac")


def unpermute_rope(w: np.ndarray, n_heads: int) -> np.ndarray:
    """q/k projection rows from transformers' half-split RoPE layout back to the interleaved
    (pairs (2i, 2i+1)) layout that Sesame/torchtune and moshi rotate: the inverse of the row
    permutation transformers' conversion scripts apply, per head."""
    out_dim, in_dim = w.shape
    d = out_dim // n_heads
    return np.ascontiguousarray(w.reshape(n_heads, 2, d // 2, in_dim).transpose(0, 2, 1, 3)
                                .reshape(out_dim, in_dim))


def csm_to_sesame(state: dict, config: dict) -> dict:
    """A transformers `CsmForConditionalGeneration` state dict (codec excluded) -> mlx-audio
    0.6.2 Sesame names (module docstring: CSM)."""
    heads = {"backbone_model": config["num_attention_heads"],
             "depth_decoder.model": config["depth_decoder_config"]["num_attention_heads"]}
    kv_heads = {"backbone_model": config["num_key_value_heads"],
                "depth_decoder.model": config["depth_decoder_config"]["num_key_value_heads"]}
    fixed = {"embed_text_tokens.weight": "model.text_embeddings.weight",
             "depth_decoder.model.embed_tokens.weight": "model.audio_embeddings.weight",
             "lm_head.weight": "model.codebook0_head.weight",
             "depth_decoder.model.inputs_embeds_projector.weight": "model.projection.weight",
             "depth_decoder.codebooks_head.weight": "model.audio_head",
             "backbone_model.norm.weight": "model.backbone.norm.weight",
             "depth_decoder.model.norm.weight": "model.decoder.norm.weight"}
    out = {}
    for k, v in state.items():
        if k.startswith("codec_model."):
            continue
        v = np.asarray(v, np.float32)
        if k in fixed:
            out[fixed[k]] = v
            continue
        m = re.fullmatch(r"(backbone_model|depth_decoder\.model)\.layers\.(\d+)\.(.+)", k)
        if m is None:
            raise KeyError(f"unexpected CSM parameter {k}")
        part, i, rest = m.groups()
        if rest == "self_attn.q_proj.weight":
            v = unpermute_rope(v, heads[part])
        elif rest == "self_attn.k_proj.weight":
            v = unpermute_rope(v, kv_heads[part])
        side = "backbone" if part == "backbone_model" else "decoder"
        out[f"model.{side}.layers.{i}.{rest}"] = v
    if "model.audio_embeddings.weight" not in out:
        raise KeyError("no audio embeddings (depth_decoder.model.embed_tokens.weight) in the "
                       "checkpoint")
    return out


def mimi_to_mlx_audio(state: dict, codec: dict) -> dict:
    """transformers `MimiModel` parameters (`codec_model.` prefix removed) -> mlx-audio 0.6.2
    Mimi parameter names and MLX layouts (module docstring: CSM)."""
    n = len(codec["upsampling_ratios"])
    heads = codec["num_attention_heads"]
    kv_heads = codec.get("num_key_value_heads") or heads
    enc, dec = {0: "encoder.init_conv1d", 3 * n + 2: "encoder.final_conv1d"}, {
        0: "decoder.init_conv1d", 3 * n + 2: "decoder.final_conv1d"}
    for j in range(n):
        enc[1 + 3 * j] = f"encoder.layers.{j}.residuals.0"
        enc[3 + 3 * j] = f"encoder.layers.{j}.downsample"
        dec[2 + 3 * j] = f"decoder.layers.{j}.upsample"
        dec[3 + 3 * j] = f"decoder.layers.{j}.residuals.0"
    layer = {"input_layernorm": "norm1", "post_attention_layernorm": "norm2",
             "self_attn_layer_scale": "layer_scale_1", "mlp_layer_scale": "layer_scale_2",
             "mlp.fc1": "gating.linear1", "mlp.fc2": "gating.linear2",
             "self_attn.o_proj": "self_attn.out_proj"}
    out, qkv = {}, {}
    for k, v in state.items():
        v = np.asarray(v, np.float32)
        m = re.fullmatch(r"(encoder|decoder)\.layers\.(\d+)\.(?:block\.(\d)\.)?conv\.(weight|bias)", k)
        if m:
            side, i, blk, leaf = m.groups()
            head = (enc if side == "encoder" else dec)[int(i)]
            if blk is not None:
                head = f"{head}.block.{ {'1': 0, '3': 1}[blk] }.conv.conv"
            elif head.endswith("upsample"):
                head = f"{head}.convtr.convtr"
            else:
                head = f"{head}.conv.conv"
            if leaf == "weight":
                v = (v.transpose(1, 2, 0) if head.endswith("convtr") else v.swapaxes(-1, -2))
            out[f"{head}.{leaf}"] = np.ascontiguousarray(v)
            continue
        m = re.fullmatch(r"(encoder|decoder)_transformer\.layers\.(\d+)\.(.+)\.(weight|bias|scale)", k)
        if m:
            side, i, mod, leaf = m.groups()
            base = f"{side}_transformer.transformer.layers.{i}"
            if mod in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"):
                h = {"q": heads, "k": kv_heads}.get(mod[-6])
                qkv.setdefault(base, {})[mod[-6]] = v if h is None else unpermute_rope(v, h)
                continue
            out[f"{base}.{layer[mod]}.{leaf}"] = v
            continue
        if k == "downsample.conv.weight":
            out["downsample.conv.conv.conv.weight"] = np.ascontiguousarray(v.swapaxes(-1, -2))
            continue
        if k == "upsample.conv.weight":  # depthwise conv transpose (C, 1, k) -> (C, k, 1)
            out["upsample.convtr.convtr.convtr.weight"] = np.ascontiguousarray(
                v.transpose(0, 2, 1))
            continue
        m = re.fullmatch(r"quantizer\.(semantic|acoustic)_residual_vector_quantizer\.(.+)", k)
        if m:
            part, rest = m.groups()
            rvq = "rvq_first" if part == "semantic" else "rvq_rest"
            if rest in ("input_proj.weight", "output_proj.weight"):
                out[f"quantizer.{rvq}.{rest}"] = np.ascontiguousarray(v.swapaxes(-1, -2))
                continue
            r = re.fullmatch(r"layers\.(\d+)\.codebook\.(embed_sum|cluster_usage|initialized)", rest)
            if r:
                leaf = "embedding_sum" if r.group(2) == "embed_sum" else r.group(2)
                out[f"quantizer.{rvq}.vq.layers.{r.group(1)}.codebook.{leaf}"] = v
                continue
        raise KeyError(f"unexpected Mimi parameter {k}")
    for base, parts in qkv.items():
        out[f"{base}.self_attn.in_proj.weight"] = np.concatenate([parts["q"], parts["k"],
                                                                  parts["v"]])
    return out


def write_csm_tokenizer(folder: Path, vocab_size: int, bos: int, eos: int) -> None:
    """tokenizer.json + tokenizer_config.json encoding as ours' CSM/Marvis TEST tokenizer:
    [bos] + UTF-8 bytes of the text + [eos] (`mlx_impl.csm.tokens.encode_text`). A byte whose
    id is a special one (SmolLM2: bos 1, eos 2) has no token: such control bytes do not occur in
    speakable text."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors

    chars = bytes_to_unicode()
    names = {bos: "<|bos|>", eos: "<|eos|>"}
    vocab = {chars[b]: b for b in range(256) if b not in names}
    for i in range(vocab_size):
        if i in names:
            vocab[names[i]] = i
        elif i >= 256:
            vocab[f"<|reserved_{i}|>"] = i
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.TemplateProcessing(
        single="<|bos|> $A <|eos|>", special_tokens=[("<|bos|>", bos), ("<|eos|>", eos)])
    folder.mkdir(parents=True, exist_ok=True)
    tok.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<|bos|>",
        "eos_token": "<|eos|>", "model_max_length": 131072}, indent=2))


def _rope_fields(config: dict) -> dict:
    """rope_theta + rope_scaling (mlx-audio's names) from transformers 5's rope_parameters."""
    rope = dict(config.get("rope_parameters") or {})
    theta = rope.pop("rope_theta", config.get("rope_theta", 10000.0))
    return {"rope_theta": theta, "rope_scaling": rope or {"rope_type": "default", "factor": 1.0}}


def prepare_csm(plan: dict, folder: Path, final: Path) -> None:
    from safetensors.numpy import load_file, save_file

    src = Path(plan["folder"])
    config = json.loads((src / "config.json").read_text())
    state = load_file(str(src / "model.safetensors"))
    save_file(csm_to_sesame(state, config), str(folder / "model.safetensors"))
    codec = config["codec_config"]
    (folder / "mimi").mkdir()
    save_file(mimi_to_mlx_audio({k[len("codec_model."):]: v for k, v in state.items()
                                 if k.startswith("codec_model.")}, codec),
              str(folder / "mimi" / "model.safetensors"))
    (folder / "mimi" / "config.json").write_text(json.dumps(codec, indent=2))
    del state
    write_csm_tokenizer(folder / "tokenizer", config["text_vocab_size"], config["bos_token_id"],
                        {128000: 128001, 1: 2}[config["bos_token_id"]])
    out = dict(config, **_rope_fields(config))
    out.pop("codec_config")
    out["depth_decoder_config"] = dict(config["depth_decoder_config"],
                                       **_rope_fields(config["depth_decoder_config"]))
    out |= {"audio_vocab_size": config["vocab_size"],
            "audio_num_codebooks": config["num_codebooks"],
            "text_tokenizer": str(final / "tokenizer"), "use_default_voice_prompt": False,
            "sample_rate": plan["sample_rate"]}
    (folder / "config.json").write_text(json.dumps(out, indent=2))


PREPARE = {"orpheus": prepare_orpheus, "outetts": prepare_outetts, "csm": prepare_csm,
           "dia": prepare_dia}


def prepare(plan: dict, cache: Path) -> Path:
    """The mlx-audio layout of the plan's checkpoint, built once (atomically: a temporary
    folder renamed into place; a stamp names the source and the layout version)."""
    _require_peer(cache)
    if plan["package"] not in PREPARE:
        raise EngineUnavailable(_unsupported(plan["package"]))
    out = prepared_folder(plan, cache)
    stamp = {"source": plan["folder"], "layout": LAYOUT}
    if (out / "stamp.json").is_file() and json.loads((out / "stamp.json").read_text()) == stamp:
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        PREPARE[plan["package"]](plan, tmp, out)
        (tmp / "stamp.json").write_text(json.dumps(stamp))
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


# Why a family has no adapter (yet): what mlx-audio 0.6.2's code needs that our seeded
# transformers-layout checkpoints do not give, read from its source in the peer folder.
UNSUPPORTED = {
    "dia": "mlx-audio 0.6.2's Dia (tts.models.dia) reads nari-labs' original checkpoint layout "
           "(its DiaConfig json with data/model/training sections and nari-labs' layer names "
           "and kernel shapes) and fetches mlx-community/descript-audio-codec-44khz from the hub; "
           "our dia folders are transformers DiaForConditionalGeneration + DacModel saves, and a "
           "transformers -> nari-labs conversion is not written in benchmarks/tts_peers.py",
}


def _unsupported(package: str) -> str:
    why = UNSUPPORTED.get(package)
    return (f"no mlx-audio adapter for {package!r} in benchmarks/tts_peers.py"
            + (f": {why}" if why else ""))


# ---------------------------------------------------------------------------------------------
# the engine (worker process)


def _import_peer(cache: Path):
    folder = _require_peer(cache)
    from benchmarks.worker import preload_blas

    preload_blas()  # the same BLAS as ours
    sys.path.insert(0, str(folder))
    import mlx_audio

    version = installed_version(cache)
    if version != VERSION:
        raise RuntimeError(f"{folder} holds mlx-audio {version}, not {VERSION}; rerun "
                           "scripts/setup_bench_peers.sh")
    if Path(mlx_audio.__file__).resolve().parent.parent != folder.resolve():
        raise RuntimeError(f"mlx_audio imported from {mlx_audio.__file__}, not {folder}")
    return mlx_audio


def build_orpheus(plan: dict, dtype: str, folder: Path) -> list[BenchStage]:
    import mlx.core as mx

    import mlx_audio.codec.models.snac.snac as snac_module

    def local_fetch(repo_id: str) -> Path:
        if repo_id != SNAC_REPO:
            raise RuntimeError(f"mlx-audio asked for {repo_id}; nothing is downloaded here")
        return folder / "snac"

    snac_module.fetch_from_hub = local_fetch  # module docstring: SNAC
    import mlx_audio.tts.models.llama.llama as llama_module
    from mlx_audio.tts.utils import load_model

    from mlx_impl.orpheus.generate import audio_masks

    model = load_model(folder, strict=True)
    if dtype != "float32":
        raise ValueError(f"mlx-audio is timed in float32 here (its folder is float32), not {dtype}")
    prompt, opts = plan["prompt"], plan["options"]
    n_prompt, frame = len(prompt), 7
    masks = audio_masks(model.args.vocab_size)
    minus_inf = mx.array(-mx.inf, mx.float32)

    def grammar(tokens, logits):
        return mx.where(masks[(tokens.size - n_prompt) % frame], logits, minus_inf)

    make_processors = llama_module.make_logits_processors
    llama_module.make_logits_processors = lambda *a, **k: make_processors(*a, **k) + [grammar]
    prepare_ids = model.prepare_input_ids

    def prompt_ids(*a, **k):
        ids = prepare_ids(*a, **k)
        return mx.concatenate([ids, mx.array([[128261, 128257]], dtype=ids.dtype)], axis=1)

    model.prepare_input_ids = prompt_ids
    theirs = prompt_ids(plan["text"], plan["voice"]).tolist()[0]
    if theirs != prompt:
        raise RuntimeError(f"mlx-audio's prompt differs from ours: {theirs[:12]}... vs "
                           f"{prompt[:12]}... ({len(theirs)} vs {n_prompt} ids)")
    if opts["min_p"] or opts["repetition_window"] or opts["cfg_scale"] != 1.0:
        raise ValueError(f"options {opts} are not all expressible in mlx-audio's Orpheus")
    kwargs = dict(voice=plan["voice"], temperature=opts["temperature"], top_p=opts["top_p"],
                  top_k=opts["top_k"], max_tokens=opts["max_tokens"],
                  repetition_penalty=opts["repetition_penalty"],
                  repetition_context_size=n_prompt + opts["max_tokens"], verbose=False)
    return generate_stages(model, plan, kwargs)


def generate_stages(model, plan: dict, kwargs: dict, per_token: int = 1,
                    stop: str = "end_of_speech", stream_interval: float | None = None
                    ) -> list[BenchStage]:
    """The synthesize and stream stages of an mlx-audio `Model.generate` with `kwargs`;
    `per_token`: ids per counted token (CSM: K codes per frame), `stop`: the stop reason when
    it ended before max_tokens, `stream_interval`: its `streaming_interval` (default: ours'
    first Orpheus chunk)."""
    import mlx.core as mx

    seed, max_tokens, sr = plan["seed"], plan["options"]["max_tokens"], model.sample_rate
    if stream_interval is None:
        stream_interval = (ORPHEUS_STREAM_TOKENS + 0.5) / STREAM_TOKENS_PER_SECOND

    def run(stream: bool) -> dict:
        mx.random.seed(seed)
        t0 = time.perf_counter()
        first, chunks, n = None, [], 0
        extra = ({"stream": True, "streaming_interval": stream_interval} if stream else {})
        for r in model.generate(plan["text"], **kwargs, **extra):
            audio = np.array(r.audio.astype(mx.float32))
            if first is None and audio.size:
                first = time.perf_counter() - t0
            chunks.append(audio)
            n += int(r.token_count)
        audio = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
        from benchmarks.tts import speech_facts

        reason = "max_tokens" if n >= max_tokens else stop
        facts = speech_facts(np.zeros(n * per_token), audio, sr, reason, ids_sha256=None)
        facts["ids_sha256"], facts["ids_head"] = None, None  # generate() returns no ids
        if stream:
            facts |= {"ttfa_s": first, "n_chunks": len(chunks)}
        return facts

    return [BenchStage("synthesize", lambda: run(False), 0.0),
            BenchStage("stream", lambda: run(True), 0.0)]


def build_outetts(plan: dict, dtype: str, folder: Path) -> list[BenchStage]:
    import mlx.core as mx

    import mlx_audio.codec.models.descript.dac as dac_module

    def local_fetch(repo_id: str) -> Path:
        if repo_id != DAC_REPO:
            raise RuntimeError(f"mlx-audio asked for {repo_id}; nothing is downloaded here")
        return folder / "dac"

    dac_module.fetch_from_hub = local_fetch  # module docstring: DAC
    import mlx_audio.tts.models.outetts.outetts as outetts_module
    from mlx_audio.tts.utils import load_model

    from mlx_impl.outetts.generate import audio_masks

    if dtype != "float32":
        raise ValueError(f"mlx-audio is timed in float32 here (its folder is float32), not {dtype}")
    model = load_model(folder, strict=True)
    if type(model).__module__ != outetts_module.__name__:
        raise RuntimeError(f"mlx-audio loaded {type(model).__module__}, not its OuteTTS")
    prompt, opts = plan["prompt"], plan["options"]
    if plan["voice"] is not None:
        raise ValueError("the mlx-audio OuteTTS engine runs without a speaker (ours' default)")
    n_prompt, frame = len(prompt), 2
    masks = audio_masks(model.config.vocab_size)
    minus_inf = mx.array(-mx.inf, mx.float32)

    def grammar(tokens, logits):
        return mx.where(masks[(tokens.size - n_prompt) % frame], logits, minus_inf)

    make_processors = outetts_module.make_logits_processors
    outetts_module.make_logits_processors = lambda *a, **k: make_processors(*a, **k) + [grammar]
    model.get_speaker = lambda voice, ref_audio: None  # module docstring: voice
    model.chunk_text = lambda text, max_words=30: [text]  # module docstring: text
    from mlx_audio.tts.models.outetts.prompt_processor import PromptProcessor

    completion = PromptProcessor(model.tokenizer).get_completion_prompt(plan["text"], None)
    theirs = model.tokenizer.encode(completion, add_special_tokens=False)
    if theirs != prompt:
        raise RuntimeError(f"mlx-audio's prompt differs from ours: {theirs[:12]}... vs "
                           f"{prompt[:12]}... ({len(theirs)} vs {n_prompt} ids)")
    if opts["cfg_scale"] != 1.0 or opts["repetition_window"] != 64:
        raise ValueError(f"options {opts} are not all expressible in mlx-audio's OuteTTS")
    kwargs = dict(voice=None, temperature=opts["temperature"], top_p=opts["top_p"],
                  top_k=opts["top_k"], min_p=opts["min_p"], max_tokens=opts["max_tokens"],
                  repetition_penalty=opts["repetition_penalty"],
                  repetition_context_size=opts["repetition_window"], verbose=False)
    return generate_stages(model, plan, kwargs)


MIMI_REPO = "kyutai/moshiko-pytorch-bf16"  # mlx-audio 0.6.2 sesame.py's codec repo


def local_mimi(folder: Path):
    """mlx-audio's own `Mimi` at our codec's configuration (its `MimiConfig` from the
    transformers MimiConfig fields), loaded strictly from the prepared `mimi/` folder, then its
    own in-place updates (codebook embeddings from their sums, conv-transpose weights)."""
    import mlx.core as mx

    from mlx_audio.codec.models.mimi.mimi import Mimi, MimiConfig
    from mlx_audio.codec.models.mimi.modules import (ConvTranspose1d, EuclideanCodebook,
                                                     SeanetConfig, TransformerConfig)

    c = json.loads((folder / "config.json").read_text())
    seanet = SeanetConfig(
        dimension=c["hidden_size"], channels=c["audio_channels"], causal=c["use_causal_conv"],
        nfilters=c["num_filters"], nresidual_layers=c["num_residual_layers"],
        ratios=list(c["upsampling_ratios"]), ksize=c["kernel_size"],
        residual_ksize=c["residual_kernel_size"], last_ksize=c["last_kernel_size"],
        dilation_base=c["dilation_growth_rate"], pad_mode=c["pad_mode"],
        true_skip=not c["use_conv_shortcut"], compress=c["compress"])
    rope = c.get("rope_parameters") or {}
    transformer = TransformerConfig(
        d_model=c["hidden_size"], num_heads=c["num_attention_heads"],
        num_layers=c["num_hidden_layers"], causal=True, norm_first=True, bias_ff=False,
        bias_attn=c["attention_bias"], layer_scale=c["layer_scale_initial_scale"],
        positional_embedding="rope", use_conv_bias=True, gating=False, norm="layer_norm",
        context=c["sliding_window"], max_period=int(rope.get("rope_theta", 10000.0)),
        max_seq_len=c["max_position_embeddings"],
        kv_repeat=c["num_attention_heads"] // c["num_key_value_heads"],
        dim_feedforward=c["intermediate_size"], conv_layout=True, use_conv_block=False,
        cross_attention=False, conv_kernel_size=3)
    hop = int(np.prod(c["upsampling_ratios"]))
    cfg = MimiConfig(channels=c["audio_channels"], sample_rate=c["sampling_rate"],
                     frame_rate=c["sampling_rate"] / hop / 2, renormalize=True, seanet=seanet,
                     transformer=transformer, quantizer_nq=c["num_quantizers"],
                     quantizer_bins=c["codebook_size"],
                     quantizer_dim=c["vector_quantization_hidden_dimension"])
    model = Mimi(cfg)
    model.load_weights(str(folder / "model.safetensors"), strict=True)

    def update(module, name, _):
        if isinstance(module, EuclideanCodebook) and name == "initialized":
            module.update_in_place()
        if isinstance(module, ConvTranspose1d) and name == "weight":
            module.update_in_place()
        return True

    model.filter_and_map(update)
    mx.eval(model.parameters())
    return model


def build_csm(plan: dict, dtype: str, folder: Path) -> list[BenchStage]:
    import mlx.core as mx

    import mlx_audio.tts.models.sesame.sesame as sesame_module
    from mlx_audio.lm.sample_utils import make_sampler
    from mlx_audio.tts.utils import load_model

    if dtype != "float32":
        raise ValueError(f"mlx-audio is timed in float32 here (its folder is float32), not {dtype}")
    if sesame_module.watermark is not None:
        raise RuntimeError("silentcipher is importable here: mlx-audio would watermark its "
                           "audio (work ours does not do); run without it")
    base = sesame_module.Mimi

    class LocalMimi(base):
        @classmethod
        def from_pretrained(cls, repo_id, filename=None):
            if repo_id != MIMI_REPO:
                raise RuntimeError(f"mlx-audio asked for {repo_id}; nothing is downloaded here")
            return local_mimi(folder / "mimi")

    sesame_module.Mimi = LocalMimi  # module docstring: CSM
    model = load_model(folder, strict=True)
    if type(model).__module__ != sesame_module.__name__:
        raise RuntimeError(f"mlx-audio loaded {type(model).__module__}, not its Sesame")
    prompt, opts = plan["prompt"], plan["options"]
    speaker = plan["voice"]
    theirs = np.array(model._tokenize_text_segment(plan["text"], speaker)[0][:, -1]).tolist()
    if theirs != prompt:
        raise RuntimeError(f"mlx-audio's prompt differs from ours: {theirs[:12]}... vs "
                           f"{prompt[:12]}... ({len(theirs)} vs {len(prompt)} ids)")
    if opts["repetition_penalty"] != 1.0 or opts["cfg_scale"] != 1.0:
        raise ValueError(f"options {opts} are not all expressible in mlx-audio's Sesame")
    args = model.model.args
    allowed = mx.arange(args.audio_vocab_size) < json.loads(
        (folder / "mimi" / "config.json").read_text())["codebook_size"]
    minus_inf = mx.array(-mx.inf, mx.float32)
    draw = make_sampler(temp=opts["temperature"], top_p=opts["top_p"] if opts["top_p"] < 1
                        else 0.0, min_p=opts["min_p"], top_k=opts["top_k"])

    def sampler(logits):  # ours' codec mask, then mlx-audio's own sampler
        return draw(mx.where(allowed, logits, minus_inf))

    k = args.audio_num_codebooks
    kwargs = dict(voice=None, speaker=speaker, context=[], split_pattern=None, sampler=sampler,
                  max_audio_length_ms=opts["max_tokens"] * 80.0)
    return generate_stages(model, plan, kwargs, per_token=k, stop="end_of_audio",
                           stream_interval=(CSM_STREAM_FRAMES + 0.5) / 12.5)


DIA_DAC_REPO = "mlx-community/descript-audio-codec-44khz"  # mlx-audio 0.6.2 dia.py
DIA_PEER_DEFAULTS = dict(temperature=1.3, top_p=0.95, top_k=35, cfg_scale=3.0)  # its _generate


def build_dia(plan: dict, dtype: str, folder: Path) -> list[BenchStage]:
    import mlx.core as mx

    import mlx_audio.codec.models.descript.dac as dac_module

    def local_fetch(repo_id: str) -> Path:
        if repo_id != DIA_DAC_REPO:
            raise RuntimeError(f"mlx-audio asked for {repo_id}; nothing is downloaded here")
        return folder / "dac"

    dac_module.fetch_from_hub = local_fetch  # module docstring: Dia
    import mlx_audio.tts.models.dia.dia as dia_module
    from mlx_audio.tts.utils import load_model

    if dtype != "float32":
        raise ValueError(f"mlx-audio is timed in float32 here (its folder is float32), not {dtype}")
    model = load_model(folder, strict=True)
    if type(model).__module__ != dia_module.__name__:
        raise RuntimeError(f"mlx-audio loaded {type(model).__module__}, not its Dia")
    prompt, opts = plan["prompt"], plan["options"]
    ids = np.array(model._prepare_text_input(plan["text"])[0][0]).tolist()
    pad = model.config.data.text_pad_value
    if ids[:len(prompt)] != prompt or any(t != pad for t in ids[len(prompt):]):
        raise RuntimeError(f"mlx-audio's prompt differs from ours: {ids[:12]}... vs "
                           f"{prompt[:12]}...")
    if plan["voice"] is not None:
        raise ValueError("the mlx-audio Dia engine runs without an audio prompt (ours' default)")
    fixed = {k: opts[k] for k in DIA_PEER_DEFAULTS}
    if fixed != DIA_PEER_DEFAULTS:  # Model.generate does not pass them on to _generate
        raise ValueError(f"mlx-audio's Dia samples at {DIA_PEER_DEFAULTS}, not {fixed}")
    seed, max_tokens, sr = plan["seed"], opts["max_tokens"], model.sample_rate
    k = model.config.data.channels
    from benchmarks.tts import speech_facts

    def synthesize() -> dict:
        mx.random.seed(seed)
        chunks, n = [], 0
        for r in model.generate(plan["text"], max_tokens=max_tokens, verbose=False):
            chunks.append(np.array(r.audio.astype(mx.float32)).reshape(-1))
            n += int(r.token_count)
        audio = np.concatenate(chunks)
        facts = speech_facts(np.zeros(n * k), audio, sr,
                             "max_tokens" if n >= max_tokens else "eos")
        facts["ids_sha256"], facts["ids_head"] = None, None  # generate() returns no ids
        return facts

    return [BenchStage("synthesize", synthesize, 0.0)]


BUILDERS = {"orpheus": build_orpheus, "outetts": build_outetts, "csm": build_csm,
            "dia": build_dia}


def build(plan: dict, dtype: str) -> list[BenchStage]:
    cache = Path(plan["cache"])
    if plan["package"] not in BUILDERS:
        raise EngineUnavailable(_unsupported(plan["package"]))
    _import_peer(cache)
    folder = prepared_folder(plan, cache)
    if not (folder / "stamp.json").is_file():
        raise FileNotFoundError(f"{folder} is missing: the runner's prepare step builds it")
    info = {"mlx_audio": VERSION, "peer_dir": str(peer_dir(cache))}
    stages = BUILDERS[plan["package"]](plan, dtype, folder)
    return [BenchStage(s.name, _with_info(s.run, info), s.audio_seconds) for s in stages]


def _with_info(fn, info: dict):
    return lambda: {**fn(), "engine_info": info}


def installed_version(cache: Path) -> str | None:
    dist = next(peer_dir(cache).glob("mlx_audio-*.dist-info"), None)
    if dist is None:
        return None
    try:
        return importlib.metadata.Distribution.at(dist).version
    except Exception:  # noqa: BLE001  (a broken dist-info reads as not installed)
        return None
