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

VERSION = "0.6.2"
SNAC_REPO = "mlx-community/snac_24khz"
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
    from safetensors.numpy import load_file, save_file

    src = Path(plan["folder"])
    config = _lm_config(src, final, plan["sample_rate"])
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    os.symlink(src / "lm" / "model.safetensors", folder / "model.safetensors")
    write_outetts_tokenizer(folder / "tokenizer")
    dac = json.loads((src / "dac" / "config.json").read_text())
    (folder / "dac").mkdir()
    (folder / "dac" / "config.json").write_text(json.dumps({
        "encoder_dim": dac["encoder_hidden_size"], "encoder_rates": dac["downsampling_ratios"],
        "latent_dim": dac["hidden_size"], "decoder_dim": dac["decoder_hidden_size"],
        "decoder_rates": dac["upsampling_ratios"], "n_codebooks": dac["n_codebooks"],
        "codebook_size": dac["codebook_size"], "codebook_dim": dac["codebook_dim"],
        "sample_rate": dac["sampling_rate"]}, indent=2))
    save_file(dac_to_mlx_audio(load_file(str(src / "dac" / "model.safetensors")),
                               len(dac["upsampling_ratios"])),
              str(folder / "dac" / "model.safetensors"))


PREPARE = {"orpheus": prepare_orpheus, "outetts": prepare_outetts}


def prepare(plan: dict, cache: Path) -> Path:
    """The mlx-audio layout of the plan's checkpoint, built once (atomically: a temporary
    folder renamed into place; a stamp names the source and the layout version)."""
    _require_peer(cache)
    if plan["package"] not in PREPARE:
        raise NotImplementedError(_unsupported(plan["package"]))
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
    "csm": "mlx-audio 0.6.2's Sesame/Marvis (tts.models.sesame) reads Sesame's original names "
           "(backbone/decoder/text_embeddings/audio_head) and builds its codec with "
           "`Mimi.from_pretrained(\"kyutai/moshiko-pytorch-bf16\")`: a hub download of kyutai's "
           "moshi-layout weights at the fixed mimi_202407(32) configuration (the tiny models' "
           "8-codebook Mimi cannot be expressed there); our csm folders are transformers "
           "CsmForConditionalGeneration saves with a transformers MimiModel inside, and the "
           "transformers -> Sesame and transformers Mimi -> moshi conversions are not written "
           "in benchmarks/tts_peers.py",
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


def generate_stages(model, plan: dict, kwargs: dict) -> list[BenchStage]:
    """The synthesize and stream stages of an mlx-audio `Model.generate` with `kwargs`."""
    import mlx.core as mx

    seed, max_tokens, sr = plan["seed"], plan["options"]["max_tokens"], model.sample_rate

    def run(stream: bool) -> dict:
        mx.random.seed(seed)
        t0 = time.perf_counter()
        first, chunks, n = None, [], 0
        extra = ({"stream": True, "streaming_interval":
                  (ORPHEUS_STREAM_TOKENS + 0.5) / STREAM_TOKENS_PER_SECOND} if stream else {})
        for r in model.generate(plan["text"], **kwargs, **extra):
            audio = np.array(r.audio.astype(mx.float32))
            if first is None and audio.size:
                first = time.perf_counter() - t0
            chunks.append(audio)
            n += int(r.token_count)
        audio = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
        from benchmarks.tts import speech_facts

        stop = "max_tokens" if n >= max_tokens else "end_of_speech"
        facts = speech_facts(np.zeros(n), audio, sr, stop, ids_sha256=None)
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


BUILDERS = {"orpheus": build_orpheus, "outetts": build_outetts}


def build(plan: dict, dtype: str) -> list[BenchStage]:
    cache = Path(plan["cache"])
    if plan["package"] not in BUILDERS:
        raise NotImplementedError(_unsupported(plan["package"]))
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
