"""Orpheus parity specs: MLX port (`mlx_impl.orpheus`) against transformers `LlamaForCausalLM` +
the `snac` package (`reference.orpheus`).

Specs (seeded random weights, `reference.orpheus.build_model`; no real checkpoint offline):
- `orpheus-test-tiny`: the full tiny stack (`mlx_impl.orpheus.config.PRESETS`): width 64, 2
  layers, GQA 4/2 x 16, the real vocabulary 156940 and special ids, llama3 RoPE (factor 32),
  untied head; tiny SNAC at 24 kHz with the real codebook size 4096 and strides (4, 2, 1).
- `orpheus-3b`: canopylabs/orpheus-3b-0.1-ft's layer dimensions (Llama-3.2-3B: width 3072, GQA
  24/8 x 128, SwiGLU 8192, rope 500000 llama3 x32, tied embeddings, vocabulary 156940) with
  REDUCED DEPTH: 2 of 28 decoder layers (the embedding alone is 1.93 GB in fp32; 2 layers add
  0.81 GB: ~2.7 GB per side, the full model 12.9 GB per side), and the real snac_24khz
  configuration. The tiny spec has the full (2-layer) stack.

Inputs per case: the prompt `mlx_impl.orpheus.tokens.prompt_ids(text, voice)` for the clip's
transcript (the offline test tokenizer: UTF-8 bytes + Orpheus's real special ids), and for
teacher forcing the first `N_TEACHER_FRAMES` SNAC frames of the fixture clip (resampled to
24 kHz, encoded by the model's own SNAC on the MLX side) as Orpheus audio tokens, so the
teacher-forced pass runs over a real code sequence in the 7-token frame layout.

Taps: `model.embed`, every layer's `self_attn` / `mlp` / output, `model.norm` over prompt +
teacher; `logits` of the last `KEEP_LOGITS` positions (4 frames; the whole (L, 156940) tensor
is 80 MB per side), `logits.argmax` at every position; `generated.greedy` (`N_GREEDY` = 70
steps = 10 frames, temperature 0), `generated.sampled` (70 steps at Orpheus's defaults,
temperature 0.6, top-p 0.8, repetition penalty 1.3, Gumbel noise from seed `SAMPLE_SEED` on
both sides), and `audio`: the sampled frames decoded by SNAC with the same per-frame noise.

Check `generation` (gated): our `OrpheusTTS.synthesize` against the reference pipeline
(generate + SNAC decode) on the case texts: greedy and sampled tokens identical, the stop
reason identical, audio SNR >= `SNR_MIN_DB`; plus the two stop conditions: end of speech forced
through the injected noise (a +1e4 Gumbel value on id 128258 at the step that starts frame
`EOS_FRAME`: both sides must stop there, with identical ids) and `max_tokens` = 67 (a partial
frame, which both sides drop).

Importing this module imports neither torch nor mlx: builders import them when called.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from parity.clips import FIXTURES, display_path, read_clip
from parity.compare import compare_row
from parity.exercise import AUDIO_VARYING, Exercise
from parity.metrics import at_least, snr_db
from parity.spec import (
    CaseInputs,
    Check,
    CheckResult,
    GoldenCase,
    Metric,
    ModelSpec,
    ParityError,
    ToleranceTable,
    fp32_table,
)

WEIGHTS_SEED = 0
SAMPLE_SEED = 7
N_TEACHER_FRAMES = 16
KEEP_LOGITS = 28
N_GREEDY = 70
N_SAMPLED = 70
EOS_FRAME = 3
SNR_MIN_DB = 60.0
SAMPLED = dict(temperature=0.6, top_p=0.8, repetition_penalty=1.3)  # orpheus_tts defaults

def presets() -> dict:
    # the presets live in mlx_impl (the CLI builds from them too), as plain data
    from mlx_impl.orpheus.presets import PRESETS

    return PRESETS


def config_for(name: str) -> dict:
    p = json.loads(json.dumps(presets()[name]))
    if name == "orpheus-3b":
        p["lm"]["num_hidden_layers"] = 2  # reduced depth (module docstring)
    return p


def tap_names(n_layers: int) -> tuple[str, ...]:
    names = ["model.embed"]
    for i in range(n_layers):
        p = f"model.layers.{i}"
        names += [f"{p}.self_attn", f"{p}.mlp", p]
    return (*names, "model.norm", "logits", "logits.argmax", "generated.greedy",
            "generated.sampled", "audio")


@functools.lru_cache(maxsize=4)
def _checkpoint(config_json: str, package: str) -> Path:
    import importlib

    build_model = importlib.import_module(f"reference.{package}").build_model
    return build_model(json.loads(config_json), WEIGHTS_SEED)


def checkpoint(config: Mapping, package: str = "orpheus") -> Path:
    """The seeded model folder of `config`, built by `reference.<package>.build_model` (Orpheus;
    OuteTTS's spec passes "outetts"), once per process."""
    return _checkpoint(json.dumps(dict(config), sort_keys=True), package)


@functools.lru_cache(maxsize=4)
def _mlx_snac(folder: str):
    from mlx_impl.snac.load import load

    return load(Path(folder) / "snac", "float32")


def teacher_tokens(config: Mapping, clip_id: str) -> tuple[dict, np.ndarray]:
    """(manifest entry, audio tokens (7 F,)) of the clip's first F SNAC frames."""
    import mlx.core as mx

    from mlx_impl.orpheus.tokens import codes_to_tokens

    snac = _mlx_snac(str(checkpoint(config)))
    entry, audio = read_clip(clip_id, FIXTURES, snac.sample_rate)
    need = N_TEACHER_FRAMES * snac.cfg.pad_multiple
    if audio.shape[0] < need:
        raise ParityError(f"clip {clip_id} is shorter than {N_TEACHER_FRAMES} SNAC frames")
    codes = snac.encode(mx.array(audio[None, :need]), snac.sample_rate)
    return entry, codes_to_tokens([np.array(c) for c in codes])


def make_inputs_for(config: Mapping):
    def make_inputs(case: GoldenCase) -> CaseInputs:
        from mlx_impl.orpheus.tokens import prompt_ids

        entry, teacher = teacher_tokens(config, case.params["clip"])
        voice = case.params["voice"]
        prompt = prompt_ids(entry["text"], voice)
        return CaseInputs(
            {"prompt": np.array([prompt], np.int64), "teacher": teacher[None].astype(np.int64)},
            {"clip": entry["id"], "file": display_path(FIXTURES / entry["file"]),
             "clip_sha256": entry.get("sha256"), "text": entry["text"], "voice": voice,
             "n_prompt": len(prompt), "n_teacher_frames": N_TEACHER_FRAMES,
             "tokenizer": "offline test tokenizer (UTF-8 bytes + Orpheus special ids)"})
    return make_inputs


def teacher_ids(inputs) -> tuple[list[int], np.ndarray]:
    """(the prompt's ids, prompt + teacher (1, L)) of a case's inputs."""
    prompt = [int(t) for t in np.asarray(inputs["prompt"])[0]]
    return prompt, np.concatenate([inputs["prompt"], inputs["teacher"]], axis=1)


def mlx_teacher_taps(lm, ids: np.ndarray, keep_logits: int) -> dict:
    """The MLX taps of a teacher-forced pass over `ids` (any `layers.llm.DecoderLM` port with
    `forward`): every tap, `logits` of the last `keep_logits` positions, `logits.argmax`."""
    import mlx.core as mx

    from mlx_impl.taps import Taps

    taps = Taps()
    logits = lm.forward(ids, lm.new_cache(), taps)
    mx.eval(list(taps.values()))
    out = {k: np.array(v.astype(mx.float32)) for k, v in taps.items() if k != "logits"}
    out["logits"] = np.array(logits[:, -keep_logits:])
    out["logits.argmax"] = np.array(mx.argmax(logits, axis=-1)).astype(np.int64)
    return out


class ReferenceSide:
    """The reference side of a Llama-codes TTS spec (Orpheus; OuteTTS subclasses it, as
    `MlxSide`): `reference.<package>`'s reference class, the same taps and generations."""

    package, reference_class = "orpheus", "OrpheusReference"
    keep_logits, n_greedy, n_sampled, sampled, sample_seed = (KEEP_LOGITS, N_GREEDY, N_SAMPLED,
                                                              SAMPLED, SAMPLE_SEED)

    def __init__(self, config: Mapping, taps: tuple[str, ...]):
        import importlib

        cls = getattr(importlib.import_module(f"reference.{self.package}"), self.reference_class)
        self.ref = cls(checkpoint(config, self.package))
        self.config = dict(config)
        self.versions = self.ref.versions
        self.taps = taps

    def audio(self, sampled: np.ndarray) -> np.ndarray:
        n = sampled[sampled != 128258].size // 7
        whole = sampled[sampled != 128258][: n * 7]
        return self.ref.decode(whole, self.ref.snac_noise(0, n, self.sample_seed))

    def __call__(self, inputs) -> dict:
        prompt, ids = teacher_ids(inputs)
        out = self.ref.forward_taps(ids, self.keep_logits, self.taps)
        out["generated.greedy"] = self.ref.generate(prompt, 0.0, max_tokens=self.n_greedy)
        sampled = self.ref.generate(prompt, **self.sampled, max_tokens=self.n_sampled,
                                    seed=self.sample_seed)
        out["generated.sampled"] = sampled
        out["audio"] = self.audio(sampled)
        return {k: out[k] for k in self.taps}


class MlxSide:
    """The MLX side of a Llama-codes TTS spec (Orpheus; OuteTTS subclasses it): teacher-forced
    taps, greedy and sampled generation, the sampled codes' audio. Subclasses set the package
    (`mlx_impl.<package>.load.load_tts`, `.generate.generate`), `checkpoint`, the constants and
    `audio(gen)`."""

    package = "orpheus"
    keep_logits, n_greedy, n_sampled, sampled, sample_seed = (KEEP_LOGITS, N_GREEDY, N_SAMPLED,
                                                              SAMPLED, SAMPLE_SEED)

    def __init__(self, config: Mapping, dtype: str):
        import importlib

        import mlx.core as mx

        load_tts = importlib.import_module(f"mlx_impl.{self.package}.load").load_tts
        self.generate = importlib.import_module(f"mlx_impl.{self.package}.generate").generate
        self.tts = load_tts(checkpoint(config, self.package), dtype)
        self.config = dict(config)
        self.versions = {"mlx": mx.__version__}

    def audio(self, gen) -> np.ndarray:
        return self.tts.decode(gen.audio_tokens, self.sample_seed)

    def __call__(self, inputs) -> dict:
        from mlx_impl.tts import SamplingOptions

        lm = self.tts.lm
        prompt, ids = teacher_ids(inputs)
        out = mlx_teacher_taps(lm, ids, self.keep_logits)
        out["generated.greedy"] = self.generate(lm, prompt, SamplingOptions(
            temperature=0.0, max_tokens=self.n_greedy)).tokens
        gen = self.generate(lm, prompt, SamplingOptions(**self.sampled,
                            max_tokens=self.n_sampled), seed=self.sample_seed)
        out["generated.sampled"] = gen.tokens
        out["audio"] = self.audio(gen)
        return out


def _audio_snr(ref, got) -> float:
    return snr_db(ref["audio"], got["audio"])


def _min_top2_gap(ref, got) -> float:
    top = np.sort(ref["logits"], axis=-1)
    return float(np.min(top[..., -1] - top[..., -2]))


METRICS = (
    Metric("audio_snr_db", "SNR of our decoded sampled audio against the reference's (dB)",
           _audio_snr),
    Metric("reference_min_top2_gap", "smallest margin between the reference's best and second "
           "teacher-forced logit (last positions)", _min_top2_gap),
)

# fp32, CPU, MLX against transformers + snac: the harness's defaults (parity.spec.fp32_table:
# floor max(1e-7, 1e-4 x rms(tap)), rtol 1e-5). Measured 2026-12-05: orpheus-test-tiny (fox +
# weather) layers <= 2.1e-8, model.norm 9.5e-7, logits 3.0e-7, SNAC audio 6.3e-6 (SNR 119.6 dB);
# orpheus-3b (2 layers at width 3072, fox) layer outputs of RMS ~2 need a floor of 1.09e-5 =
# 5.2e-6 x RMS (model.layers.1), logits 8.6e-6, audio 9.4e-6 (SNR 111.6 dB). Argmax and every
# generated token identical.
FP32 = fp32_table()
FP32_3B = FP32
# Half precision, measured 2026-12-05 on orpheus-test-tiny only (fox + weather, against the
# reference and the goldens; 2-core AMD EPYC, MKL, mlx 0.32.4), as k_rms = needed floor / rms:
# - float16 (rtol 1e-3): worst 0.0054 (model.layers.1.mlp), logits 0.0035; table 0.018 (3.3x).
# - bfloat16 (rtol 1e-2): worst 0.057 (model.layers.1.self_attn); table 0.16 (2.8x).
# The teacher-forced argmax of the random-weight head flips at near-ties in both (and in bf16 the
# weather case's sampled stream, then its audio), so those runs FAIL there (kept, discrete taps
# never loosened). orpheus-3b was not measured in half precision (fp16 matmuls are ~10x slower
# than fp32 on this CPU).
FP16 = ToleranceTable(atol=1e-5, rtol=1e-3, k_rms=1.8e-2)
BF16 = ToleranceTable(atol=1e-5, rtol=1e-2, k_rms=1.6e-1)


# Generation must exercise the 7-token frame: several distinct audio ids in the greedy and the
# sampled streams, and decoded audio that varies over time (not a DC offset).
EXERCISE = (Exercise("distinct", "generated.greedy", 8),
            Exercise("distinct", "generated.sampled", 8),
            Exercise("time_varying", "audio", AUDIO_VARYING, axis=-1))


def _reference_pipeline(ref, text: str, voice: str, options, seed: int, noise=None):
    from mlx_impl.orpheus.tokens import prompt_ids

    prompt = prompt_ids(text, voice)
    tokens = ref.generate(prompt, options.temperature, options.top_p, options.top_k,
                          options.min_p, options.repetition_penalty, options.repetition_window,
                          options.max_tokens, seed=seed, noise=noise)
    kept = tokens[tokens != 128258]
    n = kept.size // 7
    audio = ref.decode(kept[: n * 7], ref.snac_noise(0, n, seed))
    stop = "end_of_speech" if tokens.size and tokens[-1] == 128258 else "max_tokens"
    return tokens, stop, audio


def generation_check(config: Mapping, cases: tuple[GoldenCase, ...],
                     table: ToleranceTable) -> Check:
    def fn(dtype: str, log) -> CheckResult:
        from mlx_impl.orpheus.generate import generate, seeded_noise
        from mlx_impl.orpheus.tokens import END_OF_SPEECH, FRAME, prompt_ids
        from mlx_impl.tts import SamplingOptions
        from reference.orpheus import gumbel_noise

        ref_side = ReferenceSide(config, ())
        ref = ref_side.ref
        ours = MlxSide(config, dtype).tts
        rows, ok_all = [], True
        for case in cases:
            entry, _ = read_clip(case.params["clip"], FIXTURES, 16000)
            text, voice = entry["text"], case.params["voice"]
            runs = {
                "greedy": (SamplingOptions(temperature=0.0, max_tokens=N_GREEDY), None),
                "sampled (orpheus defaults)": (SamplingOptions(**SAMPLED, max_tokens=N_SAMPLED),
                                               None),
                "max_tokens 67 (partial frame)": (SamplingOptions(**SAMPLED, max_tokens=67),
                                                  None),
                # without top-p: it can drop end of speech before the draw (measured on
                # orpheus-3b, 2026-12-05: no noise could then pick it; both sides ran 70 steps)
                f"end of speech forced at frame {EOS_FRAME}": (
                    SamplingOptions(**{**SAMPLED, "top_p": 1.0}, max_tokens=N_SAMPLED),
                    EOS_FRAME * FRAME),
            }
            for label, (opts, eos_step) in runs.items():
                log(f"  {entry['id']} {voice}: {label}")
                if eos_step is None:
                    speech = ours.synthesize(text, voice, options=opts, seed=SAMPLE_SEED)
                    ref_tokens, ref_stop, ref_audio = _reference_pipeline(
                        ref, text, voice, opts, SAMPLE_SEED)
                    got_stop, got_audio = speech.meta["stop"], speech.audio
                    got_n = speech.meta["n_tokens"]
                    got_ids = speech.tokens
                else:
                    def forced(base, put):
                        def noise(step, *shape):
                            g = base(step, *shape)
                            if step == eos_step:
                                put(g)
                            return g
                        return noise

                    def bump(g):
                        g[..., END_OF_SPEECH] += 1e4
                    vocab = ours.lm.config.vocab_size
                    gen = generate(ours.lm, prompt_ids(text, voice), opts,
                                   noise=forced(seeded_noise(SAMPLE_SEED, "gumbel"), bump))
                    ref_tokens, ref_stop, ref_audio = _reference_pipeline(
                        ref, text, voice, opts, SAMPLE_SEED,
                        noise=forced(gumbel_noise(SAMPLE_SEED, vocab), bump))
                    got_stop, got_n, got_ids = gen.stop, int(gen.tokens.size), gen.audio_tokens
                    got_audio = ours.decode(got_ids, SAMPLE_SEED)
                ref_ids = ref_tokens[ref_tokens != END_OF_SPEECH]
                ref_ids = ref_ids[: ref_ids.size // FRAME * FRAME]
                same = got_ids.shape == ref_ids.shape and bool(np.array_equal(got_ids, ref_ids))
                first = None
                if not same:
                    n = min(got_ids.size, ref_ids.size)
                    diff = np.flatnonzero(got_ids[:n] != ref_ids[:n])
                    first = int(diff[0]) if diff.size else n
                cmp = compare_row({"tokens": got_ids, "audio": got_audio},
                                  {"tokens": ref_ids, "audio": ref_audio}, table,
                                  discrete=("tokens",))
                snr = snr_db(ref_audio, got_audio) if same else float("nan")
                ok = (cmp["passed"] and same and got_stop == ref_stop
                      and got_n == ref_tokens.size and at_least("audio SNR", snr, SNR_MIN_DB))
                if eos_step is not None:
                    ok = ok and got_stop == "end_of_speech" and got_n == eos_step + 1
                row = {"clip": entry["id"], "voice": voice, "run": label,
                       "steps": got_n, "reference_steps": int(ref_tokens.size),
                       "stop": got_stop, "reference_stop": ref_stop,
                       "frames": int(got_ids.size // FRAME), "tokens_identical": same,
                       "first_mismatch": first, "error": cmp["error"],
                       "worst_over_tolerance": cmp["worst_over_tolerance"], "audio_snr_db": round(snr, 2)
                       if np.isfinite(snr) else str(snr), "PASS/FAIL": "PASS" if ok else "FAIL"}
                rows.append(row)
                ok_all &= ok
        summary = {"runs": len(rows), "passed": sum(r["PASS/FAIL"] == "PASS" for r in rows),
                   "greedy_steps": N_GREEDY, "sampled_steps": N_SAMPLED,
                   "min_audio_snr_db": min((r["audio_snr_db"] for r in rows
                                            if isinstance(r["audio_snr_db"], float)),
                                           default=None)}
        return CheckResult("generation", ok_all, summary, rows)

    return Check("generation", "OrpheusTTS.synthesize vs the reference pipeline (transformers "
                 "processors + Gumbel noise, SNAC decode): greedy and sampled tokens identical, "
                 "stop reason identical (end of speech forced by injected noise; max_tokens "
                 f"with a partial frame), audio SNR >= {SNR_MIN_DB} dB", fn, estimate_s=60.0)


def _spec(name: str, description: str, config: Mapping, cases: tuple[GoldenCase, ...],
          tolerances) -> ModelSpec:
    n_layers = config["lm"]["num_hidden_layers"]
    taps = tap_names(n_layers)
    return ModelSpec(
        name=name, description=description,
        weights=f"seeded random weights, not trained (torch.manual_seed({WEIGHTS_SEED}) + "
                "transformers init, RMSNorm gains perturbed; SNAC re-drawn as reference.snac); "
                "no real checkpoint offline",
        build_mlx=lambda dtype: MlxSide(config, dtype),
        build_reference=lambda: ReferenceSide(config, taps),
        make_inputs=make_inputs_for(config),
        taps=taps,
        tolerances=tolerances,
        golden_cases=cases,
        discrete=("logits.argmax", "generated.greedy", "generated.sampled"),
        metrics=METRICS,
        exercise=EXERCISE,
        checks=(generation_check(config, cases[:1], tolerances["float32"]),),
        config={"config": dict(config), "weights_seed": WEIGHTS_SEED, "sample_seed": SAMPLE_SEED,
                "n_teacher_frames": N_TEACHER_FRAMES, "keep_logits": KEEP_LOGITS,
                "n_greedy": N_GREEDY, "n_sampled": N_SAMPLED, "sampled": SAMPLED},
    )


_FOX = GoldenCase("fox", "espeak 'quick brown fox' clip's transcript and codes, voice tara",
                  {"clip": "espeak_en_fox", "voice": "tara"})
_WEATHER = GoldenCase("weather", "espeak weather clip's transcript and codes, voice leo",
                      {"clip": "espeak_en_weather", "voice": "leo"})


TEST_TINY = _spec("orpheus-test-tiny", "tiny random Orpheus for CI (width 64, 2 layers, GQA 4/2, "
                  "real vocabulary 156940 and special ids, llama3 RoPE; tiny SNAC 24 kHz with "
                  "4096 codes, strides 4/2/1)", config_for("orpheus-test-tiny"),
                  (_FOX, _WEATHER), {"float32": FP32, "float16": FP16, "bfloat16": BF16})
ORPHEUS_3B = _spec("orpheus-3b", "orpheus-3b-0.1-ft layer dimensions (Llama-3.2-3B: 3072 wide, "
                   "GQA 24/8 x 128, SwiGLU 8192, rope 500000 llama3 x32, tied embeddings, "
                   "vocabulary 156940) with reduced depth: 2 of 28 decoder layers (2.7 GB of "
                   "fp32 weights per side); snac_24khz", config_for("orpheus-3b"), (_FOX,),
                   {"float32": FP32_3B, "float16": FP16, "bfloat16": BF16})
