"""Dia parity specs: MLX port (`mlx_impl.dia`) against transformers `DiaForConditionalGeneration`
with its `DiaProcessor` + transformers `DacModel` (`reference.dia`).

Specs (seeded random weights, `reference.dia.build_model`; no real checkpoint offline):
- `dia-test-tiny`: the full tiny stack (`mlx_impl.dia.presets`): encoder 64 wide x 2 layers,
  decoder 64 wide x 2 layers with GQA 4/2 and cross-attention 4/4 heads of 16, the real 9
  channels of 1028 ids, special ids and delay pattern [0, 8, ..., 15]; a tiny DAC 44.1 kHz with
  the real 9 codebooks of 1024 and strides (2, 4, 8, 8).
- `dia-1.6b`: Dia-1.6B's layer dimensions (encoder 1024 wide, 16 heads of 128, SwiGLU 4096;
  decoder 2048 wide, GQA 16/4 x 128, cross-attention 16/16 x 128, SwiGLU 8192) with REDUCED
  DEPTH on both sides: 2 of 12 encoder and 2 of 18 decoder layers (0.93 GB of fp32 weights per
  side; the full model is 6.4 GB per side, two fp32 copies plus the runs would pass the ~10 GB
  budget), and descript/dac_44khz's configuration. The tiny spec has its full (2 + 2) stack.

Inputs per case: the text (the fixture clip's transcript with speaker tags and a non-verbal
cue), its ids by our tokenizer (the reference tokenizes with `DiaProcessor` itself: the
`text_ids` tap compares the two), and for teacher forcing the first `N_TEACHER_FRAMES` DAC
frames of the clip (resampled to 44.1 kHz, encoded by the model's own DAC on the MLX side) laid
out with the delay pattern as `DiaProcessor` lays out an audio prompt (bos rows, pad tail).

Taps: `text_ids`; the encoder's embedding, every layer's self_attention / mlp / output, norm;
the decoder's embeddings, every layer's self_attention / cross_attention / mlp / output, norm,
over the teacher rows; `logits` (B, T, C, V) of the last `KEEP_LOGITS` rows and `logits.argmax`
of every row; `generated.greedy` (upstream generate's (T, C) rows, `N_GREEDY` generated rows,
CFG 3 with guidance top-k) and `generated.sampled` (`N_SAMPLED` rows at nari-labs' defaults,
Gumbel noise from seed `SAMPLE_SEED` on both sides); `codes`: the (C, F) codes the DAC gets
from the sampled rows (delay reverted, bos and eos cut) and `audio` their decoding. With
`max_tokens` rows generated, the length limit forces eos at row max_tokens - 15, so every
codebook has max_tokens - 16 = 64 decoded frames.

Check `generation` (gated): `DiaTTS.generate` + decode against the reference pipeline
(`model.generate` + `processor.batch_decode`): identical rows, stop reason, codes, audio SNR >=
`SNR_MIN_DB`, for greedy, sampled (defaults), sampled without CFG, a short `max_tokens` (eos
forced by the length limit, then the delayed tail), eos chosen by the model, and voice cloning:
an audio prompt (`VOICE_CLIP`'s first 40 frames + 100 samples, zero-padded to a frame as
`DiaFeatureExtractor` pads) encoded by each side's own DAC into the decoder's prompt rows
(upstream: `DiaProcessor(text=[transcript + text], audio=[clip])`, `batch_decode(
audio_prompt_len=...)`), so the prompt rows compare the two DAC encoders' codes too. Random weights
never make eos channel 0's best id (measured 2026-12-05 on dia-test-tiny: 0 of 25 sampled seeds
in 200 rows), so that run scales the (channel 0, eos) row of `logits_dense` by `EOS_ROW_SCALE`
on both sides (same weights both sides; the run requires stop "eos" on both). Scales measured
2026-12-05 with seed 8 on the fox text: dia-test-tiny x3 -> eos at row 21 (x2: none in 120
rows), dia-1.6b x2 -> eos at row 41.

Importing this module imports neither torch nor mlx: builders import them when called.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from parity.clips import FIXTURES, display_path, read_clip
from parity.compare import compare_row
from parity.exercise import AUDIO_VARYING, Exercise
from parity.metrics import at_least, snr_db
from parity.models.orpheus import METRICS
from parity.spec import (
    CaseInputs,
    Check,
    CheckResult,
    GoldenCase,
    ModelSpec,
    ParityError,
    ToleranceTable,
    fp32_table,
)

WEIGHTS_SEED = 0
SAMPLE_SEED = 8  # measured 2026-12-05: with 7 dia-1.6b's sampled run chose eos at row 36 (seeds 0-6, 8-13 ran 80 rows)
N_TEACHER_FRAMES = 24
KEEP_LOGITS = 8
N_GREEDY = 80  # rows generated: 64 decoded frames in every codebook
N_SAMPLED = 80
N_SHORT = 40  # the short run: eos forced at row 25, 24 frames
SNR_MIN_DB = 60.0
VOICE_CLIP = "espeak_en_weather"  # the voice-cloning run's reference clip
VOICE_SAMPLES = 40 * 512 + 100  # 40 DAC frames and 100 samples: the last frame zero-padded
SAMPLED = dict(temperature=1.3, top_k=35, top_p=0.95, cfg_scale=3.0)  # nari-labs defaults
GREEDY = dict(temperature=0.0, top_k=35, cfg_scale=3.0)
REDUCED = {"encoder_config": 2, "decoder_config": 2}  # dia-1.6b layers kept (docstring)


def config_for(name: str) -> dict:
    from mlx_impl.dia.presets import PRESETS

    p = json.loads(json.dumps(PRESETS[name]))
    if name == "dia-1.6b":
        for part, n in REDUCED.items():
            p["lm"][part]["num_hidden_layers"] = n  # reduced depth (module docstring)
    return p


@functools.lru_cache(maxsize=4)
def _checkpoint(config_json: str) -> Path:
    from reference.dia import build_model

    return build_model(json.loads(config_json), WEIGHTS_SEED)


def checkpoint(config: Mapping) -> Path:
    return _checkpoint(json.dumps(dict(config), sort_keys=True))


def tap_names(enc_layers: int, dec_layers: int) -> tuple[str, ...]:
    names = ["text_ids", "model.encoder.embedding"]
    for i in range(enc_layers):
        p = f"model.encoder.layers.{i}"
        names += [f"{p}.self_attention", f"{p}.mlp", p]
    names += ["model.encoder.norm", "model.decoder.embeddings"]
    for i in range(dec_layers):
        p = f"model.decoder.layers.{i}"
        names += [f"{p}.self_attention", f"{p}.cross_attention", f"{p}.mlp", p]
    return (*names, "model.decoder.norm", "logits", "logits.argmax", "generated.greedy",
            "generated.sampled", "codes", "audio")


@functools.lru_cache(maxsize=4)
def _mlx_dac(folder: str):
    from mlx_impl.dac.load import load

    return load(Path(folder) / "dac", "float32")


def teacher_rows(config: Mapping, clip_id: str) -> np.ndarray:
    """The clip's first frames as delayed decoder rows (1, 1 + F + max delay, C)."""
    import mlx.core as mx

    from mlx_impl.dia.tokens import delayed

    dac = _mlx_dac(str(checkpoint(config)))
    _, audio = read_clip(clip_id, FIXTURES, dac.sample_rate)
    need = N_TEACHER_FRAMES * dac.cfg.hop_length
    if audio.shape[0] < need:
        raise ParityError(f"clip {clip_id} is shorter than {N_TEACHER_FRAMES} DAC frames")
    codes = np.array(dac.encode(mx.array(audio[None, :need]), dac.sample_rate).codes[0])
    dec = config["lm"]["decoder_config"]
    return delayed(codes.T, config["lm"]["delay_pattern"], dec["bos_token_id"],
                   dec["pad_token_id"])[None]


def case_text(case: GoldenCase) -> tuple[dict, str]:
    entry, _ = read_clip(case.params["clip"], FIXTURES, 16000)
    return entry, case.params["template"].format(*entry["text"].split(". ", 1))


def make_inputs_for(config: Mapping):
    def make_inputs(case: GoldenCase) -> CaseInputs:
        from mlx_impl.dia.tokens import encode_text

        entry, text = case_text(case)
        ids = encode_text(text)
        return CaseInputs(
            {"text_utf8": np.frombuffer(text.encode("utf-8"), np.uint8).copy(),
             "text_ids": np.array([ids], np.int64),
             "teacher": teacher_rows(config, case.params["clip"])},
            {"clip": entry["id"], "file": display_path(FIXTURES / entry["file"]),
             "clip_sha256": entry.get("sha256"), "text": text, "n_text_ids": len(ids),
             "n_teacher_frames": N_TEACHER_FRAMES,
             "tokenizer": "DiaTokenizer layout (UTF-8 bytes, [S1] = 1, [S2] = 2); ours vs "
                          "DiaProcessor's in the text_ids tap"})
    return make_inputs


def _text(inputs) -> str:
    return bytes(np.asarray(inputs["text_utf8"], np.uint8)).decode("utf-8")


def _kw(opts: Mapping) -> dict:
    return {"temperature": opts["temperature"], "top_k": opts.get("top_k") or None,
            "top_p": opts.get("top_p", 1.0), "cfg_scale": opts.get("cfg_scale", 1.0)}


class ReferenceSide:
    def __init__(self, config: Mapping, taps: tuple[str, ...], sample_seed: int = SAMPLE_SEED):
        from reference.dia import DiaReference

        self.ref = DiaReference(checkpoint(config))
        self.config, self.versions, self.taps = dict(config), self.ref.versions, taps
        self.sample_seed = sample_seed

    def __call__(self, inputs) -> dict:
        text = _text(inputs)
        ids = self.ref.text_ids(text)
        out = {"text_ids": ids}
        out.update(self.ref.forward_taps(ids, inputs["teacher"], KEEP_LOGITS, self.taps))
        out["generated.greedy"] = self.ref.generate(text, **_kw(GREEDY), max_tokens=N_GREEDY)
        sampled = self.ref.generate(text, **_kw(SAMPLED), max_tokens=N_SAMPLED,
                                    seed=self.sample_seed)
        out["generated.sampled"] = sampled
        out["codes"], out["audio"] = self.ref.decode(sampled)
        return {k: out[k] for k in self.taps}


class MlxSide:
    def __init__(self, config: Mapping, dtype: str, sample_seed: int = SAMPLE_SEED):
        import mlx.core as mx

        from mlx_impl.dia.load import load_tts

        self.tts = load_tts(checkpoint(config), dtype)
        self.config, self.versions = dict(config), {"mlx": mx.__version__}
        self.sample_seed = sample_seed

    def __call__(self, inputs) -> dict:
        import mlx.core as mx

        from mlx_impl.dia.generate import generate
        from mlx_impl.dia.tokens import encode_text
        from mlx_impl.taps import Taps
        from mlx_impl.tts import SamplingOptions

        model = self.tts.model
        ids = np.array([encode_text(_text(inputs))], np.int64)
        taps = Taps()
        logits = model.forward(ids, inputs["teacher"], taps)
        mx.eval(list(taps.values()))
        out = {"text_ids": ids}
        out.update({k: np.array(v.astype(mx.float32)) for k, v in taps.items()
                    if k != "logits"})
        out["logits"] = np.array(logits[:, -KEEP_LOGITS:])
        out["logits.argmax"] = np.array(mx.argmax(logits, axis=-1)).astype(np.int64)
        text_ids = ids[0].tolist()
        out["generated.greedy"] = generate(model, text_ids, SamplingOptions(
            **GREEDY, max_tokens=N_GREEDY)).sequence
        gen = generate(model, text_ids, SamplingOptions(**SAMPLED, max_tokens=N_SAMPLED),
                       seed=self.sample_seed)
        out["generated.sampled"] = gen.sequence
        out["codes"] = gen.codes
        out["audio"] = self.tts.decode(gen.codes)
        return out


# fp32, CPU, MLX against transformers: the harness's defaults (parity.spec.fp32_table: floor
# max(1e-7, 1e-4 x rms(tap)), rtol 1e-5), no override. Measured 2026-12-05 (2-core AMD EPYC,
# mlx 0.32.4, torch 2.13.0): dia-test-tiny (fox + weather) layers <= 4.5e-8, norms 9.5e-7,
# logits 1.4e-6 (needed k 5.2e-7), DAC audio 4.2e-6 (needed k 9.3e-6, SNR 118.5 dB); every
# text id, argmax, generated row and code identical; generation check 6/6, min SNR 118.2 dB.
# dia-1.6b (2 + 2 layers at the real widths, fox): worst needed k 6.6e-5
# (model.decoder.layers.1.cross_attention: scale-1 attention over 128-wide heads is sharp),
# logits 4.7e-5 abs (k 4.6e-5), audio SNR 105.7 dB; every discrete tap identical; generation
# check 6/6, min SNR 105.7 dB; `python -m parity run dia-1.6b` peak RSS 6.0 GB, 2:20 wall.
FP32 = fp32_table()
# Half precision, measured 2026-12-05 on dia-test-tiny (fox + weather, against the reference and
# the goldens; 2-core AMD EPYC, mlx 0.32.4), as k_rms = needed floor / rms, with Orpheus's
# decoder-LM tables:
# - float16 (rtol 1e-3): worst 0.0042 (model.encoder.layers.1.mlp); table 0.018 (4.3x). The
#   sampled rows (fox) and the teacher-forced argmax and greedy rows (weather) flip at near-ties
#   of the random-weight head, then the codes and audio differ: those runs FAIL (kept: discrete
#   taps are never loosened).
# - bfloat16 (rtol 1e-2): worst 0.036 (model.decoder.layers.0.mlp); table 0.16 (4.4x); argmax,
#   greedy and sampled rows diverge in both cases: FAIL, as Orpheus's and OuteTTS's bf16.
# dia-1.6b was not measured in half precision (fp16 matmuls are ~10x slower on this CPU).
FP16 = ToleranceTable(atol=1e-5, rtol=1e-3, k_rms=1.8e-2)
BF16 = ToleranceTable(atol=1e-5, rtol=1e-2, k_rms=1.6e-1)

# The decoding must exercise every codebook: >= 8 distinct ids per channel over the greedy and
# sampled rows and per codebook in the decoded codes, and audio that varies over time.
EXERCISE = (Exercise("distinct", "generated.greedy", 8, axis=0),
            Exercise("distinct", "generated.sampled", 8, axis=0),
            Exercise("distinct", "codes", 8, axis=-1),
            Exercise("time_varying", "audio", AUDIO_VARYING, axis=-1))


@contextmanager
def _eos_row_scaled(ref, tts, scale: float | None):
    """Scale the (channel 0, eos) row of `logits_dense` on both sides (module docstring)."""
    if scale is None:
        yield
        return
    import mlx.core as mx
    import torch

    eos = tts.model.config.decoder_config.eos_token_id
    w_ref = ref.model.logits_dense.weight
    w_mlx = tts.model.logits_dense.weight
    saved_ref = w_ref.detach().clone()
    try:
        with torch.no_grad():
            w_ref[eos] *= scale
        w = np.array(w_mlx)
        w[eos] *= np.float32(scale)
        tts.model.logits_dense.weight = mx.array(w)
        yield
    finally:
        with torch.no_grad():
            w_ref.copy_(saved_ref)
        tts.model.logits_dense.weight = w_mlx


def voice_prompt(config: Mapping) -> tuple[np.ndarray, str]:
    """(the reference clip's first `VOICE_SAMPLES` at the DAC's rate, its transcript with a
    speaker tag). The transcript is the whole clip's: random weights do not care, the layout
    (transcript before the text, codes as prompt rows) is what is checked."""
    rate = config["dac"]["sampling_rate"]
    entry, audio = read_clip(VOICE_CLIP, FIXTURES, rate)
    return audio[:VOICE_SAMPLES].astype(np.float32), f"[S2] {entry['text']}"


def _stop_of(seq: np.ndarray, max_tokens: int, max_delay: int, eos: int) -> str:
    """The reference's stop reason from its rows: eos at the row the length limit forces
    (1 + max_tokens - max_delay - 1) is "max_tokens", earlier is "eos"."""
    rows = np.flatnonzero(seq[:, 0] == eos)
    if rows.size == 0:
        return "none"
    return "max_tokens" if rows[0] == max_tokens - max_delay else "eos"


def generation_check(config: Mapping, cases: tuple[GoldenCase, ...], table: ToleranceTable,
                     eos_row_scale: float, sample_seed: int) -> Check:
    def fn(dtype: str, log) -> CheckResult:
        from mlx_impl.dia.tokens import encode_text
        from mlx_impl.dia.generate import generate
        from mlx_impl.tts import SamplingOptions

        ref = ReferenceSide(config, ()).ref
        tts = MlxSide(config, dtype).tts
        seed = sample_seed
        max_delay = max(config["lm"]["delay_pattern"])
        eos = config["lm"]["decoder_config"]["eos_token_id"]
        rows, ok_all = [], True
        for case in cases:
            entry, text = case_text(case)
            runs = {
                "greedy (cfg 3, guidance top-k 35)": (GREEDY, N_GREEDY, None, None, False),
                "sampled (nari-labs defaults)": (SAMPLED, N_SAMPLED, None, None, False),
                "sampled without cfg": (dict(temperature=1.0, top_k=0, top_p=0.9, cfg_scale=1.0),
                                        N_SAMPLED, None, None, False),
                f"greedy, max_tokens {N_SHORT} (eos forced by the length limit)":
                    (GREEDY, N_SHORT, None, "max_tokens", False),
                f"eos chosen (eos row x{eos_row_scale})": (SAMPLED, N_SAMPLED, eos_row_scale,
                                                           "eos", False),
                f"voice clone ({VOICE_CLIP} audio prompt + transcript)":
                    (SAMPLED, N_SAMPLED, None, None, True),
            }
            for label, (opts, n, scale, want_stop, voice) in runs.items():
                log(f"  {entry['id']}: {label}")
                options = SamplingOptions(**opts, max_tokens=n)
                prompt_len = None
                with _eos_row_scaled(ref, tts, scale):
                    if voice:
                        clip, transcript = voice_prompt(config)
                        gen = tts.generate(text, clip, options, seed, voice_text=transcript)
                        seq = ref.generate(f"{transcript} {text}", **_kw(opts), max_tokens=n,
                                           seed=seed, audio=clip)
                        prompt_len = gen.n_prompt
                    else:
                        gen = generate(tts.model, encode_text(text), options, seed=seed)
                        seq = ref.generate(text, **_kw(opts), max_tokens=n, seed=seed)
                ref_stop = _stop_of(seq[gen.n_prompt - 1:], n, max_delay, eos)
                same = gen.sequence.shape == seq.shape and bool(np.array_equal(gen.sequence, seq))
                first = None
                if not same:
                    m = min(len(seq), len(gen.sequence))
                    diff = np.argwhere(gen.sequence[:m] != seq[:m])
                    first = [int(v) for v in diff[0]] if diff.size else [m, 0]
                ref_codes, ref_audio = ref.decode(seq, prompt_len)
                got_codes = gen.codes
                got_audio = tts.decode(got_codes)
                cmp = compare_row({"codes": got_codes, "audio": got_audio},
                                  {"codes": ref_codes, "audio": ref_audio}, table,
                                  discrete=("codes",))
                snr = snr_db(ref_audio, got_audio) if cmp["error"] is None else float("nan")
                ok = (cmp["passed"] and same and gen.stop == ref_stop
                      and (want_stop is None or gen.stop == want_stop)
                      and at_least("audio SNR", snr, SNR_MIN_DB))
                row = {"clip": entry["id"], "run": label, "prompt_rows": gen.n_prompt,
                       "rows": int(gen.steps), "reference_rows": int(len(seq) - gen.n_prompt),
                       "stop": gen.stop,
                       "reference_stop": ref_stop, "frames": int(got_codes.shape[1]),
                       "rows_identical": same, "first_mismatch (row, channel)": first,
                       "error": cmp["error"],
                       "audio_snr_db": round(snr, 2) if np.isfinite(snr) else str(snr),
                       "PASS/FAIL": "PASS" if ok else "FAIL"}
                rows.append(row)
                ok_all &= ok
        summary = {"runs": len(rows), "passed": sum(r["PASS/FAIL"] == "PASS" for r in rows),
                   "greedy_rows": N_GREEDY, "sampled_rows": N_SAMPLED,
                   "min_audio_snr_db": min((r["audio_snr_db"] for r in rows
                                            if isinstance(r["audio_snr_db"], float)),
                                           default=None)}
        return CheckResult("generation", ok_all, summary, rows)

    return Check("generation", "DiaTTS generation + DAC decode vs upstream model.generate + "
                 "DiaProcessor.batch_decode (injected Gumbel draws): identical rows, stop reason "
                 "and codes for greedy, sampled, sampled without CFG, eos forced by the length "
                 "limit, eos chosen by the model, and voice cloning (an audio prompt through each "
                 "side's DAC encoder, its transcript before the text); audio SNR >= "
                 f"{SNR_MIN_DB} dB", fn, estimate_s=40.0)


_FOX = GoldenCase("fox", "espeak fox clip's transcript as a two-speaker dialogue with a "
                  "non-verbal cue, and its DAC codes", {"clip": "espeak_en_fox",
                                                       "template": "[S1] {}. [S2] {} (laughs)"})
_WEATHER = GoldenCase("weather", "espeak weather clip's transcript, one speaker, and its DAC "
                      "codes", {"clip": "espeak_en_weather", "template": "[S1] {}"})


def _spec(name: str, description: str, config: Mapping, cases: tuple[GoldenCase, ...],
          tolerances, eos_row_scale: float, sample_seed: int = SAMPLE_SEED) -> ModelSpec:
    taps = tap_names(config["lm"]["encoder_config"]["num_hidden_layers"],
                     config["lm"]["decoder_config"]["num_hidden_layers"])
    return ModelSpec(
        name=name, description=description,
        weights=f"seeded random weights, not trained (torch.manual_seed({WEIGHTS_SEED}) + "
                "transformers init, RMSNorm gains perturbed, logits_dense N(0, 1/hidden); DAC "
                "re-drawn as reference.dac); no real checkpoint offline",
        build_mlx=lambda dtype: MlxSide(config, dtype, sample_seed),
        build_reference=lambda: ReferenceSide(config, taps, sample_seed),
        make_inputs=make_inputs_for(config),
        taps=taps,
        tolerances=tolerances,
        golden_cases=cases,
        discrete=("text_ids", "logits.argmax", "generated.greedy", "generated.sampled",
                  "codes"),
        metrics=METRICS,
        exercise=EXERCISE,
        checks=(generation_check(config, cases[:1], tolerances["float32"], eos_row_scale,
                                 sample_seed),),
        config={"config": dict(config), "weights_seed": WEIGHTS_SEED, "sample_seed": sample_seed,
                "n_teacher_frames": N_TEACHER_FRAMES, "keep_logits": KEEP_LOGITS,
                "n_greedy": N_GREEDY, "n_sampled": N_SAMPLED, "sampled": SAMPLED,
                "greedy": GREEDY, "eos_row_scale": eos_row_scale},
    )


TABLES = {"float32": FP32, "float16": FP16, "bfloat16": BF16}
TEST_TINY = _spec("dia-test-tiny", "tiny random Dia for CI (encoder and decoder 64 wide x 2 "
                  "layers, GQA 4/2, real 9 channels, special ids and delay pattern; tiny DAC "
                  "44.1 kHz with 9 codebooks of 1024)", config_for("dia-test-tiny"),
                  (_FOX, _WEATHER), TABLES, eos_row_scale=3.0)
DIA_1_6B = _spec("dia-1.6b", "Dia-1.6B layer dimensions (encoder 1024 wide, decoder 2048 wide "
                 "GQA 16/4 x 128, cross-attention 16 x 128) with reduced depth: 2 of 12 encoder "
                 "and 2 of 18 decoder layers; DAC 44.1 kHz (dac_44khz)", config_for("dia-1.6b"),
                 (_FOX,), TABLES, eos_row_scale=2.0)
