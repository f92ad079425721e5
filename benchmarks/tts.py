"""Text-to-speech benchmarks: every TTS model id of `mlx_impl.tts.models.MODELS`, on three engines
of the benchmark runner (`python -m benchmarks run orpheus-test-tiny`):

- `mlx` (ours): `mlx_impl.<package>.load.load_tts(folder)` -> `synthesize(text, voice, options,
  seed)`; where the model has `stream`, a second stage times its first audio chunk.
- `torch`: the reference adapter, `reference.<package>.TTS_REFERENCE(folder).speak(prompt ids,
  options, seed)` (transformers' processors with the same injected Gumbel noise, then the codec:
  the pipeline the parity check compares token for token; the same ids come out).
- `mlx-audio`: mlx-audio 0.6.2, the same-framework peer, from an isolated folder
  (`scripts/setup_bench_peers.sh`; never in .venv's site-packages: it would pull its own pins),
  on the same seeded checkpoint (benchmarks/tts_peers.py says how its layout is made and what
  had to be redirected to run offline).

A new TTS model is benched by its registry entry (package, id) alone on `mlx`; the `torch`
engine needs its reference module to export `TTS_REFERENCE` (a class built from the model
folder, with `speak(prompt, options: dict, seed) -> (ids, audio, sample_rate)`), and the
`mlx-audio` engine an adapter in benchmarks/tts_peers.py. A missing one is that engine's
FAILED row in the report, with the reason, never a silent skip.

Every engine speaks the same `TEXT` with the model's default voice, seed `SEED` and the model's
default sampling options (`tts.defaults`) with `max_tokens` = `MAX_TOKENS`. The prompt ids are
computed once by ours' tokenizer code in a separate process (`prepare`, in the parent, untimed)
and written to `<cache>/tts-bench/<id>.json`, so no torch or mlx-audio process imports mlx_impl
before it needs to (the mlx-audio engine loads the same BLAS as ours, as mlx-whisper's does).

Model folder: a real-size id whose parity spec exists (orpheus-3b, outetts-1.0-1b) is timed on
the seeded checkpoint of that spec: its REDUCED DEPTH (2 decoder layers at the real widths; the
full models are 12.9 and ~5 GB per side, more than this machine's budget for one run). Other ids
use the registry's folder (`python -m parity.tts_models build <id>`).

Stages and facts: `synthesize` (the whole call: generation + codec decode; facts: generated
tokens, audio seconds, stop reason, sha256 of the ids) and `stream` (time to first audio = the
first chunk handed out; facts as above). An engine without a streaming API has no `stream` row.

Generated tokens (`n_tokens`, the ids hashed) and `max_tokens`, per model family (`COUNTING`):
- Orpheus, OuteTTS: LM tokens (one id per decoder step; `max_tokens` counts them too);
- Dia: decoder rows x 9 channels (each step emits one row of 9 codes, under CFG a batch of 2
  forward passes; `max_tokens` is Dia's own limit in rows, upstream's max_new_tokens, so the
  eos row and the 15-row delayed tail are generated and counted); the ids are the generated
  rows (delay mask applied), the same array ours (`Generation.sequence`) and upstream's
  `generate` return;
- Bark: the fine codes, 8 codebooks x frames (`max_tokens` is the semantic tokens; the coarse
  and fine stages follow from them: ~1.5 frames per semantic token); the ids are the fine
  codes the codec decodes, the same array on both engines;
- CSM / Marvis: frames x codebooks (K = 32, 8 in the tiny models; each frame is one backbone
  step and K - 1 depth-decoder steps, K draws; `max_tokens` is CSM's own limit in frames); the
  ids are every generated frame, the end-of-audio frame included.
The prompt is the text ids (`check`'s result; CSM's is (ids, context codes), and the bench
speaks with the default speaker and no context, so its codes are empty and checked so).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import subprocess
from dataclasses import dataclass
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.prepare import DEFAULT_CACHE
from parity.spec import BenchSpec, BenchStage

ENGINES = ("mlx", "torch", "mlx-audio")
TEXT = ("The quick brown fox jumps over the lazy dog, and the weather will be sunny and warm "
        "this afternoon.")
SEED = 0
MAX_TOKENS = 280  # Orpheus: 40 frames (3.4 s at 24 kHz); OuteTTS: 140 frames (1.9 s)
ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class TTSRun:
    """What every engine speaks (`python -m benchmarks run ID --max-tokens N`; tests use few)."""

    text: str = TEXT
    seed: int = SEED  # of the sampling noise (ours, torch) / mx.random (mlx-audio)
    max_tokens: int = MAX_TOKENS  # generated LM tokens at most (the model's other defaults kept)

    def __post_init__(self):
        if not self.text.strip() or self.max_tokens < 1:
            raise ValueError("a TTS benchmark needs text and max_tokens >= 1")


def tts_registry() -> dict:
    """`mlx_impl.tts.models.MODELS`, read from its file: importing the `mlx_impl` package would
    preload its BLAS into the runner and into the torch worker (the registry module itself
    imports nothing but the standard library)."""
    path = ROOT / "mlx_impl" / "tts" / "models.py"
    spec = importlib.util.spec_from_file_location("_bench_tts_models", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses looks its module up while building the class
    spec.loader.exec_module(module)
    return module


def is_tts(model: str) -> bool:
    return model in tts_registry().MODELS


def plan_file(model: str, cache: Path) -> Path:
    return Path(cache) / "tts-bench" / f"{model}.json"


def model_folder(model: str) -> tuple[Path, str]:
    """(the seeded checkpoint folder timed for `model`, what it is). Runs in the parent: the
    reduced-depth parity checkpoint is built by the reference adapter (torch) when missing."""
    reg = tts_registry()
    entry = reg.MODELS[model]
    from parity.registry import REGISTRY

    spec = REGISTRY.get(model)
    if spec is not None and "config" in spec.config:
        config, seed = spec.config["config"], spec.config.get("weights_seed", 0)
        folder = importlib.import_module(f"reference.{entry.package}").build_model(config, seed)
        return folder, (f"the parity spec's seeded checkpoint (seed {seed}): {spec.description}; "
                        f"{_depth(config)}")
    folder = reg.cache_root() / model
    if not folder.exists():
        raise FileNotFoundError(f"{model} is not built (no {folder}); run "
                                f"`{reg.build_command(model)}`")
    return folder.resolve(), f"the registry's seeded folder ({entry.description})"


def _depth(config: dict) -> str:
    """The decoder depth of a parity spec's config, as the report states it."""
    if "csm" in config:
        c = config["csm"]
        return (f"{c['num_hidden_layers']} backbone + "
                f"{c['depth_decoder_config']['num_hidden_layers']} depth-decoder layers")
    if "model" in config and "semantic_config" in config["model"]:  # Bark
        m = config["model"]
        return ", ".join(f"{k.split('_')[0]} {m[k]['num_layers']} layers" for k in
                         ("semantic_config", "coarse_acoustics_config", "fine_acoustics_config"))
    lm = config["lm"]
    if "decoder_config" in lm:  # Dia
        return (f"{lm['encoder_config']['num_hidden_layers']} encoder + "
                f"{lm['decoder_config']['num_hidden_layers']} decoder layers")
    return f"{lm['num_hidden_layers']} decoder layers"


def prompt_ids(checked) -> list[int]:
    """The prompt ids of `tts.check(...)`: a list of ids, or CSM's (ids, context codes) whose
    codes must be empty (the bench has no context turn)."""
    if isinstance(checked, tuple):
        ids, codes = checked
        if np.asarray(codes).size:
            raise ValueError("the TTS bench speaks without a context turn; the prompt has "
                             f"{np.asarray(codes).shape[0]} context frames")
        checked = ids
    return [int(t) for t in checked]


PLAN_SCRIPT = """
import dataclasses, json, sys
from mlx_impl.tts.models import MODELS
from benchmarks.tts import prompt_ids
import importlib
model, folder, text, seed, max_tokens = sys.argv[1:6]
entry = MODELS[model]
tts = importlib.import_module(f"mlx_impl.{entry.package}.load").load_tts(folder, "float32")
options = dataclasses.replace(tts.defaults, max_tokens=int(max_tokens))
voice = tts.default_voice
prompt = prompt_ids(tts.check(text, voice, options))
print(json.dumps({"package": entry.package, "voice": voice, "prompt": prompt,
                  "options": dataclasses.asdict(options), "sample_rate": int(tts.sample_rate)}))
"""


def prepare_plan(model: str, cache: Path, text: str = TEXT, seed: int = SEED,
                 max_tokens: int = MAX_TOKENS) -> dict:
    """What every engine runs (folder, text, voice, seed, options, prompt ids), written to
    `plan_file` once per (folder, text, seed, max_tokens); the prompt comes from ours' code in a
    fresh process (module docstring)."""
    folder, what = model_folder(model)
    out = plan_file(model, cache)
    key = {"model": model, "folder": str(folder), "text": text, "seed": seed,
           "max_tokens": max_tokens}
    if out.is_file():
        plan = json.loads(out.read_text())
        if all(plan.get(k) == v for k, v in key.items()):
            return plan
    from benchmarks.runner import worker_env

    proc = subprocess.run([sys.executable, "-c", PLAN_SCRIPT, model, str(folder), text,
                           str(seed), str(max_tokens)], cwd=ROOT, env=worker_env(1),
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"could not build the prompt of {model} with ours' tokenizer code: "
                           f"{proc.stderr.strip().splitlines()[-1] if proc.stderr else proc.returncode}")
    plan = {**key, "folder_note": what, **json.loads(proc.stdout.strip().splitlines()[-1])}
    from parity.report import atomic_write

    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, json.dumps(plan, indent=2) + "\n")
    return plan


def read_plan(model: str, cache: Path) -> dict:
    out = plan_file(model, cache)
    if not out.is_file():
        raise FileNotFoundError(f"{out} is missing: the runner's prepare step writes it; run "
                                f"`python -m benchmarks run {model}`")
    return json.loads(out.read_text())


def ids_digest(ids) -> str:
    return hashlib.sha256(np.asarray(ids, np.int64).tobytes()).hexdigest()[:16]


def speech_facts(ids, audio: np.ndarray, sample_rate: int, stop: str | None = None,
                 **extra) -> dict:
    """The facts a TTS stage call returns (recorded per call by the worker)."""
    ids = np.asarray(ids, np.int64).reshape(-1)
    audio = np.asarray(audio)
    if audio.ndim != 1 or not np.isfinite(audio).all():
        raise ValueError(f"the engine returned audio of shape {audio.shape} with "
                         f"{int((~np.isfinite(audio)).sum())} non-finite samples")
    return {"n_tokens": int(ids.size), "audio_s": audio.shape[0] / sample_rate,
            "sample_rate": int(sample_rate), "stop": stop, "ids_sha256": ids_digest(ids),
            "ids_head": [int(t) for t in ids[:14]], **extra}


# ---------------------------------------------------------------------------------------------
# engines: build(plan, dtype) -> stages


def build_mlx(plan: dict, dtype: str) -> list[BenchStage]:
    from benchmarks.worker import preload_blas

    preload_blas()
    from mlx_impl.tts import SamplingOptions

    load_tts = importlib.import_module(f"mlx_impl.{plan['package']}.load").load_tts
    tts = load_tts(plan["folder"], dtype)
    options = SamplingOptions(**plan["options"])
    text, voice, seed = plan["text"], plan["voice"], plan["seed"]
    if prompt_ids(tts.check(text, voice, options)) != plan["prompt"]:
        raise RuntimeError("ours' prompt differs from the plan's: delete "
                           f"{plan_file(plan['model'], Path(plan['cache']))} and rerun")

    package = plan["package"]
    seen = {}
    if package == "dia":  # the rows: Speech holds the codes only (module docstring)
        generate = tts.generate

        def spy(*args, **kwargs):
            seen["generation"] = gen = generate(*args, **kwargs)
            return gen
        tts.generate = spy

    def synthesize() -> dict:
        speech = tts.synthesize(text, voice, options=options, seed=seed)
        if package == "dia":
            gen = seen.pop("generation")
            ids = gen.sequence[gen.n_prompt:]
        elif package == "csm":
            ids = speech.tokens  # every frame (n, K)
        elif package == "bark":
            ids = speech.tokens  # the fine codes (8, F), as the torch engine's speak returns
        else:
            ids = speech.meta["ids"] if "ids" in speech.meta else _generated_ids(speech)
        return speech_facts(ids, speech.audio, speech.sample_rate, speech.meta.get("stop"))

    stages = [BenchStage("synthesize", synthesize, 0.0)]
    per_step = tts.model.config.num_codebooks if package == "csm" else 1  # ids per on_token
    if hasattr(tts, "stream"):
        def stream() -> dict:
            count = [0]
            t0 = time.perf_counter()
            first, chunks = None, []
            for chunk in tts.stream(text, voice, options=options, seed=seed,
                                    on_token=lambda step, token: count.__setitem__(0, step + 1)):
                if first is None:
                    first = time.perf_counter() - t0
                chunks.append(np.asarray(chunk))
            audio = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
            stop = "max_tokens" if count[0] >= options.max_tokens else END_STOP.get(
                package, "end_of_speech")
            return {**speech_facts(np.zeros(count[0] * per_step), audio, tts.sample_rate, stop),
                    "ttfa_s": first, "n_chunks": len(chunks), "ids_sha256": None,
                    "ids_head": None}
        stages.append(BenchStage("stream", stream, 0.0))
    return stages


def _generated_ids(speech) -> np.ndarray:
    """Every id the LM generated, as n_tokens counts them: `Speech.tokens` holds the audio
    tokens only (whole frames, no stop token), so the count comes from `meta['n_tokens']`."""
    n = int(speech.meta["n_tokens"])
    ids = np.asarray(speech.tokens if speech.tokens is not None else [], np.int64).reshape(-1)
    return np.concatenate([ids, np.full(max(0, n - ids.size), -1, np.int64)])[:n]


def build_torch(plan: dict, dtype: str) -> list[BenchStage]:
    if dtype != "float32":
        raise ValueError(f"the torch reference runs in float32 only, not {dtype}")
    module = importlib.import_module(f"reference.{plan['package']}")
    cls = getattr(module, "TTS_REFERENCE", None)
    if cls is None:
        from benchmarks.tts_peers import EngineUnavailable

        raise EngineUnavailable(f"reference.{plan['package']} has no TTS_REFERENCE (a class "
                                "built from the model folder with speak(prompt, options, seed)"
                                "); add it to bench this model's torch reference")
    import torch

    ref = cls(Path(plan["folder"]))
    prompt, options, seed = plan["prompt"], plan["options"], plan["seed"]

    def synthesize() -> dict:
        with torch.inference_mode():
            ids, audio, sr = ref.speak(prompt, options, seed)
        stop = (ref.stop_reason(ids, options) if hasattr(ref, "stop_reason")
                else _stop(plan, ids))
        return speech_facts(_audio_ids(plan, ids), audio, sr, stop)

    return [BenchStage("synthesize", synthesize, 0.0)]


STOP_IDS = {"orpheus": 128258, "outetts": 128257}  # end of speech; OuteTTS <|im_end|> (test layout)
END_STOP = {"csm": "end_of_audio"}  # ours' stop reason when the model ended (not max_tokens)


def _stop(plan: dict, ids) -> str | None:
    stop = STOP_IDS.get(plan["package"])
    ids = np.asarray(ids).reshape(-1)
    if stop is None:
        return None
    return "end_of_speech" if ids.size and ids[-1] == stop else "max_tokens"


def _audio_ids(plan: dict, ids) -> np.ndarray:
    """The generated ids as ours' facts carry them (audio tokens, stop token dropped, -1 for it
    when counted), so that equal runs have equal digests."""
    ids = np.asarray(ids, np.int64).reshape(-1)
    stop = STOP_IDS.get(plan["package"])
    if plan["package"] == "orpheus":
        kept = ids[ids != stop]
        kept = kept[: kept.size // 7 * 7]
    elif plan["package"] == "outetts":
        kept = ids[ids != stop]
        kept = kept[: kept.size // 2 * 2]
    else:
        return ids
    return np.concatenate([kept, np.full(ids.size - kept.size, -1, np.int64)])


def build_peer(plan: dict, dtype: str) -> list[BenchStage]:
    from benchmarks import tts_peers

    return tts_peers.build(plan, dtype)


BUILDERS = {"mlx": build_mlx, "torch": build_torch, "mlx-audio": build_peer}


def tts_bench(model: str, cache: Path = DEFAULT_CACHE, run: TTSRun = TTSRun()) -> BenchSpec:
    """The BenchSpec of a TTS model id (module docstring)."""

    def prepare(engine: str, dtype: str) -> None:
        plan = prepare_plan(model, cache, run.text, run.seed, run.max_tokens)
        if engine == "mlx-audio":
            from benchmarks import tts_peers

            tts_peers.prepare(plan, cache)

    def build(engine: str, dtype: str, audio: np.ndarray) -> list[BenchStage]:
        if engine not in BUILDERS:
            raise ValueError(f"unknown engine {engine!r}; TTS engines are {', '.join(ENGINES)}")
        plan = read_plan(model, cache)
        want = {"text": run.text, "seed": run.seed, "max_tokens": run.max_tokens}
        if any(plan[k] != v for k, v in want.items()):
            raise RuntimeError(f"{plan_file(model, cache)} was prepared for another run "
                               f"({ {k: plan[k] for k in want} }); the runner's prepare step "
                               "rewrites it")
        return BUILDERS[engine](plan | {"cache": str(cache)}, dtype)

    return BenchSpec(engines=ENGINES, build=build, audio_seconds=1.0,
                     dtypes=("float32", "float16", "bfloat16"),
                     peer_dtypes={"mlx-audio": ("float32", "float16", "bfloat16")},
                     prepare=prepare, report="speech")


COUNTING = {
    "orpheus": "LM tokens (7 per SNAC frame; max_tokens counts them)",
    "outetts": "LM tokens (2 per DAC frame; max_tokens counts them)",
    "dia": "decoder rows x 9 channels (one row of 9 codes per step, CFG batch of 2; "
           "max_tokens = rows, the eos row and 15-row delayed tail included)",
    "csm": "frames x codebooks (one backbone + K - 1 depth-decoder draws per frame; "
           "max_tokens = frames, the end-of-audio frame included)",
}

ENGINE_NOTES = {
    "mlx": "ours: `mlx_impl.<package>.load.load_tts(folder).synthesize(text, voice, "
           "options=..., seed=...)` (generation with the audio-token grammar, then the codec); "
           "`stream` where the model has it.",
    "torch": "the reference adapter `reference.<package>.TTS_REFERENCE(folder).speak(prompt, "
             "options, seed)`: transformers LlamaForCausalLM with a manual KV-cached loop, "
             "transformers' logits processors and the same injected Gumbel noise as ours, then "
             "the torch codec (snac / transformers DacModel), float32, eager attention, under "
             "torch.inference_mode.",
    "mlx-audio": "mlx-audio 0.6.2 from an isolated folder (scripts/setup_bench_peers.sh), on the "
                 "same seeded checkpoint: its own `load_model` on an HF-layout folder and its "
                 "`Model.generate` (Orpheus: tts.models.llama; OuteTTS: tts.models.outetts), "
                 "with the redirections benchmarks/tts_peers.py documents: a local tokenizer "
                 "encoding as ours' test tokenizer (its prompt checked equal to ours, id for "
                 "id), its codec's hub fetch pointed at our seeded codec in its layout, ours' "
                 "audio-token grammar appended to its logits processors, and per model the "
                 "prompt details (Orpheus: start-of-AI/start-of-speech appended; OuteTTS: no "
                 "speaker, the text as one chunk). Its own sampler and seed (mx.random), so its "
                 "ids and stop point differ from ours'; streaming: `generate(stream=True)` with "
                 "the interval set to ours' first chunk (84 tokens).",
}


TORCH_NOTES = {
    "dia": "the reference adapter `reference.dia.TTS_REFERENCE(folder).speak(prompt, options, "
           "seed)`: the prompt ids as text through transformers' DiaProcessor (checked to give "
           "the same ids), upstream's own `DiaForConditionalGeneration.generate` (CFG batch, "
           "Dia's logits processors, delay pattern) with the same injected Gumbel noise as "
           "ours (one extra logits processor), then `DiaProcessor.batch_decode` (transformers "
           "DacModel), float32, eager attention, under torch.inference_mode.",
    "csm": "the reference adapter `reference.csm.TTS_REFERENCE(folder).speak(prompt, options, "
           "seed)`: transformers CsmForConditionalGeneration's backbone and depth decoder "
           "forwards in a written-out KV-cached loop (upstream `generate(do_sample=True)` draws "
           "with torch.multinomial, which takes no injected noise), transformers' logits "
           "warpers, the port's codec mask and the same injected Gumbel noise as ours, then "
           "upstream's Mimi decode (`codec_model.decode`), float32, eager attention, under "
           "torch.inference_mode.",
}


def engine_notes(model: str, engines) -> dict:
    """The report's engine notes for `model`'s package (the torch note per family)."""
    package = tts_registry().MODELS[model].package
    notes = dict(ENGINE_NOTES)
    if package in TORCH_NOTES:
        notes["torch"] = TORCH_NOTES[package]
    if package in PEER_NOTES:
        notes["mlx-audio"] = PEER_NOTES[package]
    return {e: n for e, n in notes.items() if e in engines}


PEER_NOTES = {  # per family where the mlx-audio engine differs from ENGINE_NOTES'
    "csm": "mlx-audio 0.6.2 from an isolated folder (scripts/setup_bench_peers.sh), on the same "
           "seeded checkpoint: its own `load_model` and `Model.generate` of tts.models.sesame "
           "(which it also uses for Marvis), with the redirections benchmarks/tts_peers.py "
           "documents: our transformers checkpoint renamed to Sesame's names (q/k rows back in "
           "its interleaved RoPE layout), a local tokenizer encoding as ours' test tokenizer "
           "(its prompt checked equal to ours, id for id), its Mimi built by its own class at "
           "our codec's configuration from our seeded Mimi in its layout (instead of the hub's "
           "kyutai/moshiko-pytorch-bf16), no default voice prompt (a hub download), ours' codec "
           "mask before its own sampler (`make_sampler`, temperature/top-k/top-p/min-p as "
           "ours'), no watermark (silentcipher absent). Its own draws (mx.random), so its frames "
           "differ from ours'; tokens = frames x codebooks as ours'; streaming: `generate(stream"
           "=True)` with its interval at 4 frames, ours' stream chunk.",
    "dia": "mlx-audio 0.6.2 from an isolated folder (scripts/setup_bench_peers.sh), on the same "
           "seeded checkpoint: its own `load_model` and `Model.generate` of tts.models.dia "
           "(nari-labs' architecture), with the redirections benchmarks/tts_peers.py documents: "
           "our transformers checkpoint in nari-labs' config and layout (its prompt checked "
           "equal to ours), its DAC's hub fetch pointed at our seeded DAC in its layout. Its own "
           "generation: RoPE also in cross-attention (nari-labs'; transformers' Dia has none), "
           "text padded to 1024 positions, CFG then top-k/top-p on the guided logits, no eos "
           "forcing, its own draws (mx.random) at its fixed defaults (= ours'), so its ids "
           "differ from ours'; tokens = rows x 9 as ours'; its audio drops the last 30 rows. "
           "No streaming API.",
}


def plan_for_report(model: str, cache: Path) -> dict:
    """The plan without the prompt's ids (their count and digest instead), for the report."""
    plan = read_plan(model, cache)
    return {k: v for k, v in plan.items() if k != "prompt"} | {
        "n_prompt": len(plan["prompt"]), "prompt_sha256": ids_digest(plan["prompt"]),
        "counting": COUNTING.get(plan.get("package"), "generated ids"),
        "streaming": STREAMING.get(plan.get("package"))}


STREAMING = {  # what the first-audio column measures, per family (None: the Orpheus text)
    "dia": "no engine streams Dia: ours' DiaTTS and mlx-audio's Dia have no streaming API",
    "csm": "ours: `stream`, chunks of 4 frames; mlx-audio: `generate(stream=True)` with its "
           "interval at the same 4 frames",
}

