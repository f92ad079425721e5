"""End-to-end Whisper check: our `transcribe` against openai-whisper's on the same fp32 weights.

Per clip and decoding strategy (greedy, beam 5, forced fallback): token sequences of every
segment identical (exact), the same detected language, the same segments (count and each one's
decoding temperature) with start/end times within `SEGMENT_TOLERANCE_S`, average log probability
within `AVG_LOGPROB_TOLERANCE` and no-speech probability within `NO_SPEECH_TOLERANCE` per segment,
word start/end times within 20 ms (mean and max reported), and WER (CER for Mandarin) equal to
openai-whisper's against the clip's reference transcript.

Two tiers. The default (`python -m parity run MODEL`) checks `DEFAULT_ITEMS`: greedy and beam 5,
a committed fixture, real English speech, es/de/fr/zh, one long-form (> 30 s, seeking past the
first window) concatenation, and the forced temperature fallback on one clip; every item has
word timestamps. `--full` checks every clip (the fixtures, every ../shared/speech clip) with
greedy and beam 5, a > 60 s concatenation with both, and the same fallback items. The real
clips are required: when they are absent (`parity.clips.shared_speech`: ../shared/speech, or
$PARITY_SHARED_SPEECH) the check is "not run", which fails the run, naming the manifest path it
looked for.

Each transcription (ours or openai-whisper's, one clip, one strategy) is a job; the jobs are
shared out to one single-threaded worker process per core (`parity.workers`), longest first.

The "fallback" strategy forces upstream's temperature fallback: `compression_ratio_threshold`
0 (every decode "needs" a fallback) with temperatures `FALLBACK["temperature"]`, so each window is
decoded greedily, then sampled at each higher temperature (best of 2), and the last sample is
kept. Sampling uses the same injected randomness on both sides: each side's job builds its own
`ReplayedNoise` of one seed (Gumbel noise from `mlx_impl.layers.sampling.draw_noise`), which our
decoder takes as `DecodingOptions.noise` and openai-whisper's through
`reference.whisper.sampling_noise` (its `Categorical(...).sample()` replaced by the same
Gumbel-max draw). Both draw once per sampled step, so identical tokens mean identical noise;
the row reports how many draws each side made and the temperatures of the kept segments.
"""

from __future__ import annotations

import numpy as np

from parity import workers
from parity.clips import FIXTURES, manifest, missing_shared_speech, shared_speech
from parity.progress import Progress
from parity.spec import Check, CheckResult

WORD_TOLERANCE_S = 0.020  # the bound: word times within 20 ms of openai-whisper
# Per segment, against openai-whisper; measured on whisper-tiny.en (5 default items, 15 segments)
# and whisper-base (9 default items, 18 segments), fallback included, 2-core AMD EPYC + MKL,
# 2026-12-05:
# - start/end: 0 ms on every segment. They are timestamp tokens or (word timestamps) the first
#   and last word's times, all on Whisper's 20-ms grid, so a difference is a whole grid step:
#   one step is allowed, the words' bound.
SEGMENT_TOLERANCE_S = 0.020
# - avg_logprob: max 3.18e-5 (tiny.en cmu_arctic beam 5; base 2.78e-5, the fallback item);
#   float32 log-softmax sums over ~20 tokens. ~3x.
AVG_LOGPROB_TOLERANCE = 1e-4
# - no_speech_prob: max 2.61e-6 (base aishell1 beam 5; tiny.en 8.3e-7). ~3x.
NO_SPEECH_TOLERANCE = 8e-6
# The forced fallback: every decode "needs" a fallback (compression ratio > 0), so each window is
# decoded greedily, then sampled at 0.8 (best of 2), which is kept. Two temperatures, not three:
# openai-whisper re-encodes the window per temperature, and with (0, 0.4, 0.8) the item took 31 s
# of CPU on its side (whisper-base, 2026-12-05), a fifth of the default check.
FALLBACK = {"temperature": (0.0, 0.8), "compression_ratio_threshold": 0.0, "best_of": 2}
NOISE_SEED = 0  # seed of the Gumbel noise both sides replay (ReplayedNoise)
STRATEGIES = {"greedy": {"beam_size": None}, "beam5": {"beam_size": 5}, "fallback": FALLBACK}
SWEEP = ("greedy", "beam5")  # the strategies --full runs on every clip
FALLBACK_ITEMS = (("cmu_arctic_a0024", "fallback"),)  # in both tiers
ENGINES = ("ours", "openai")
LONG = "long"  # the item name of the long-form concatenation
# English clips (fixtures first, then ../shared/speech) concatenated until at least this long:
# past 30 s, so that decoding seeks into a second window
LONG_FORM_MIN_S = {"default": 35.0, "full": 60.0}

# The default tier: (clip, strategy). Both strategies, a committed fixture, real English, each
# other language of ../shared/speech and one long-form case; English-only models skip the rest.
DEFAULT_ITEMS = (
    ("espeak_en_fox", "beam5"),
    ("jfk_inaugural_1961", "greedy"),
    ("cmu_arctic_a0024", "beam5"),  # not librispeech: openai-whisper's beam takes 22 s there
    ("picovoice_test_es", "greedy"),
    ("picovoice_test_de", "beam5"),
    ("picovoice_test_fr", "greedy"),
    ("aishell1_BAC009S0724W0121", "beam5"),
    (LONG, "greedy"),
    *FALLBACK_ITEMS,
)

# CPU seconds of one transcription in a single-threaded worker: a part per 30-s window (encoder,
# language detection) plus a part per second of audio (decoding). Fitted to whisper-base's jobs
# in a --full run (2-core machine, loaded: +-50%; e.g. ours 3.2-3.8 s greedy and 4.4-7.9 s beam 5
# on 4-11 s clips, openai-whisper 5.2-12.9 s and 7.2-27.5 s, the 67-s long-form 13.5/34.0 s
# ours and 21.9/122.3 s openai-whisper); only the progress ETA and the job order use them.
# The fallback's: from whisper-base's 4-s item with three temperatures (ours 8.4 s, openai-whisper
# 30.9 s of CPU), scaled by 2/3 for two.
COST_PER_WINDOW_S = {("ours", "greedy"): 2.5, ("ours", "beam5"): 3.5, ("ours", "fallback"): 5.0,
                     ("openai", "greedy"): 3.5, ("openai", "beam5"): 5.5,
                     ("openai", "fallback"): 17.0}
COST_PER_AUDIO_S = {("ours", "greedy"): 0.15, ("ours", "beam5"): 0.3, ("ours", "fallback"): 0.3,
                    ("openai", "greedy"): 0.35, ("openai", "beam5"): 0.8,
                    ("openai", "fallback"): 1.0}


class ReplayedNoise:
    """The injected randomness of one side's sampled decodes: `noise(shape)` is the next float32
    Gumbel(0, 1) array of `shape` from `numpy.random.default_rng(seed)`
    (`mlx_impl.layers.sampling.draw_noise`). Each side builds its own of the same seed; `draws`
    counts the calls (one per sampled decoding step)."""

    def __init__(self, seed: int = NOISE_SEED):
        self.rng = np.random.default_rng(seed)
        self.draws = 0

    def __call__(self, shape: tuple[int, ...]) -> np.ndarray:
        from mlx_impl.layers.sampling import draw_noise

        self.draws += 1
        return draw_noise(self.rng, "gumbel", shape)


def _read(m: dict) -> dict:
    from mlx_impl.audio_io import load_audio

    return {"id": m["id"], "audio": load_audio(str(m["path"])), "text": m["text"],
            "language": m["language"]}


def long_form(english: list[dict], min_s: float) -> dict | None:
    """The English clips in order, repeated as needed, until at least `min_s` seconds."""
    pieces, total = [], 0.0
    while english and total < min_s:
        for c in english:
            pieces.append(c)
            total += len(c["audio"]) / 16000
            if total >= min_s:
                break
    if not pieces:
        return None
    return {"id": f"{LONG}-{total:.0f}s", "audio": np.concatenate([c["audio"] for c in pieces]),
            "text": " ".join(c["text"] for c in pieces), "language": "en"}


def plan(multilingual: bool, tier: str) -> list[tuple[dict, str]]:
    """(clip, strategy) items of `tier`; raises FileNotFoundError naming the shared manifest
    when it is absent (the check needs real speech: without it, it must fail, not pass on less)
    and KeyError when a listed clip is in no manifest. English-only models leave out the other
    languages' items (declared: DEFAULT_ITEMS lists their languages)."""
    if (missing := missing_shared_speech()) is not None:
        raise FileNotFoundError(missing)
    folder = shared_speech()
    shared = manifest(folder)
    entries = [m for m in manifest(FIXTURES) + shared if multilingual or m["language"] == "en"]
    by_id = {m["id"]: m for m in entries}
    all_ids = {m["id"] for m in manifest(FIXTURES) + shared}
    listed = DEFAULT_ITEMS if tier == "default" else FALLBACK_ITEMS
    unknown = [c for c, _ in listed if c != LONG and c not in all_ids]
    if unknown:
        raise KeyError(f"transcription items {unknown} are in no clip manifest "
                       f"({FIXTURES / 'manifest.jsonl'}, {folder / 'manifest.jsonl'})")
    if tier == "full":
        chosen = ([(m["id"], s) for m in entries for s in SWEEP] + [(LONG, s) for s in SWEEP]
                  + [(c, s) for c, s in FALLBACK_ITEMS if c in by_id])
    else:
        chosen = [(c, s) for c, s in DEFAULT_ITEMS if c == LONG or c in by_id]
    clips = {c: _read(by_id[c]) for c, _ in chosen if c != LONG}
    if any(c == LONG for c, _ in chosen):
        english = [_read(m) if m["id"] not in clips else clips[m["id"]]
                   for m in entries if m["language"] == "en"]
        clips[LONG] = long_form(english, LONG_FORM_MIN_S[tier])
    return [(clips[c], s) for c, s in chosen]


def estimate_s(engine: str, strategy: str, seconds: float) -> float:
    windows = max(1, int(np.ceil(seconds / 30.0)))
    return (COST_PER_WINDOW_S[engine, strategy] * windows
            + COST_PER_AUDIO_S[engine, strategy] * seconds)


def error_rate(reference: str, hypothesis: str, language: str) -> float:
    import jiwer
    from whisper.normalizers import BasicTextNormalizer, EnglishTextNormalizer

    if language == "zh":  # character error rate, spaces and punctuation removed
        norm = BasicTextNormalizer(remove_diacritics=False, split_letters=False)
        return float(jiwer.cer(norm(reference).replace(" ", ""), norm(hypothesis).replace(" ", "")))
    norm = EnglishTextNormalizer() if language == "en" else BasicTextNormalizer()
    return float(jiwer.wer(norm(reference), norm(hypothesis)))


def _compare(ours, theirs: dict) -> tuple[bool, str, np.ndarray]:
    """(tokens identical, first difference, |word time differences| (N, 2))."""
    got = [list(s.tokens) for s in ours.segments]
    want = [list(s["tokens"]) for s in theirs["segments"]]
    first = ""
    if got != want:
        flat_g = [t for s in got for t in s]
        flat_w = [t for s in want for t in s]
        i = next((k for k, (a, b) in enumerate(zip(flat_g, flat_w)) if a != b),
                 min(len(flat_g), len(flat_w)))
        first = (f"token {i}: ours {flat_g[i] if i < len(flat_g) else 'end'} vs openai "
                 f"{flat_w[i] if i < len(flat_w) else 'end'}")
    ws = [w for s in ours.segments for w in (s.words or [])]
    wt = [w for s in theirs["segments"] for w in s.get("words", [])]
    if [w.word for w in ws] != [w["word"] for w in wt]:
        return False, first or "words differ", np.zeros((0, 2))
    diff = np.abs(np.array([[w.start, w.end] for w in ws]).reshape(-1, 2)
                  - np.array([[w["start"], w["end"]] for w in wt]).reshape(-1, 2))
    return got == want, first, diff


def _segment_diffs(ours, theirs: dict) -> dict | None:
    """Per-segment |differences| of start/end (s), avg_logprob and no_speech_prob, and whether
    each segment's temperature is equal; None when the segment counts differ."""
    so, st = ours.segments, theirs["segments"]
    if len(so) != len(st):
        return None

    def col(f_ours, key):
        return np.abs(np.array([f_ours(s) for s in so], dtype=np.float64)
                      - np.array([s[key] for s in st], dtype=np.float64))

    return {"times": np.concatenate([col(lambda s: s.start, "start"),
                                     col(lambda s: s.end, "end")]),
            "avg_logprob": col(lambda s: s.avg_logprob, "avg_logprob"),
            "no_speech_prob": col(lambda s: s.no_speech_prob, "no_speech_prob"),
            "temperatures_equal": [s.temperature for s in so] == [s["temperature"] for s in st],
            "temperatures": sorted({float(s["temperature"]) for s in st})}


# Built transcribers of this process, by (engine, weights source): a worker builds each once and
# transcribes every job it gets with it.
_BUILT: dict = {}


def _transcriber(engine: str, source: str):
    if (engine, source) in _BUILT:
        return _BUILT[engine, source]
    from weights.whisper import load

    w = load(source)
    if engine == "ours":
        from mlx_impl.whisper.load import from_state
        from mlx_impl.whisper.tokenizer import tokenizer_for_model
        from mlx_impl.whisper.transcribe import WhisperSTT

        stt = WhisperSTT(from_state(w.dims, w.state, alignment_heads=w.alignment_heads),
                         tokenizer_for_model(w.tokenizer_json, w.dims["n_vocab"]), source)
        fn = stt.transcribe
    else:
        import torch
        import whisper

        from reference.whisper import build_openai, set_alignment_heads

        from reference.whisper import sampling_noise

        ref = build_openai(w.dims, w.state)
        set_alignment_heads(ref, w.alignment_heads)

        def fn(audio, noise=None, **options):
            with torch.no_grad(), sampling_noise(noise):
                return whisper.transcribe(ref, audio, fp16=False, verbose=None, **options)
    _BUILT[engine, source] = fn
    return fn


def transcribe_job(engine: str, source: str, audio: np.ndarray, strategy: str):
    """One transcription with word timestamps, at temperature 0 or, for "fallback", with the
    forced fallback sampling from `ReplayedNoise()`: (ours a `Transcription` / openai-whisper's
    result dict, the number of noise draws)."""
    options = {"temperature": 0.0, **STRATEGIES[strategy]}
    noise = ReplayedNoise() if any(t > 0 for t in np.atleast_1d(options["temperature"])) else None
    if noise is not None:
        options["noise"] = noise
    result = _transcriber(engine, source)(audio, word_timestamps=True, **options)
    return result, (noise.draws if noise is not None else 0)


def _row(clip: dict, strategy: str, ours, theirs: dict, draws: tuple[int, int]
         ) -> tuple[dict, np.ndarray]:
    same, first, diff = _compare(ours, theirs)
    seg = _segment_diffs(ours, theirs)
    lang = clip["language"]
    nan = float("nan")

    def worst(key):
        return float(seg[key].max()) if seg is not None and seg[key].size else (
            0.0 if seg is not None else nan)

    return {
        "clip": clip["id"], "strategy": strategy,
        "tokens": sum(len(s.tokens) for s in ours.segments),
        "tokens_identical": same, "first_difference": first or "-",
        "language": f"{ours.language}/{theirs['language']}",
        "segments": f"{len(ours.segments)}/{len(theirs['segments'])}",
        "temperatures": ("-" if seg is None else ",".join(f"{t:g}" for t in seg["temperatures"])
                         + ("" if seg["temperatures_equal"] else " (differ)")),
        "noise_draws": f"{draws[0]}/{draws[1]}",
        "segment_max_ms": worst("times") * 1000,
        "avg_logprob_max_diff": worst("avg_logprob"),
        "no_speech_max_diff": worst("no_speech_prob"),
        "words": len(diff), "word_mean_ms": float(diff.mean() * 1000) if diff.size else 0.0,
        "word_max_ms": float(diff.max() * 1000) if diff.size else 0.0,
        "metric": "cer" if lang == "zh" else "wer",
        "error_ours": error_rate(clip["text"], ours.text, lang),
        "error_openai": error_rate(clip["text"], theirs["text"], lang),
    }, diff


def _worst(values) -> float:
    """The largest value; NaN if any is NaN (a segment count mismatch), 0.0 for none."""
    v = np.array(list(values), dtype=np.float64)
    return float("nan") if np.isnan(v).any() else float(v.max(initial=0.0))


def row_failures(row: dict) -> list[str]:
    """What makes one item fail (empty: it passes). NaN differences (segment counts that differ)
    fail: every bound is checked as `not (x <= bound)`."""
    lang_ours, lang_openai = row["language"].split("/")
    seg_ours, seg_openai = row["segments"].split("/")
    draws_ours, draws_openai = row["noise_draws"].split("/")
    out = []
    if not row["tokens_identical"]:
        out.append(f"tokens differ ({row['first_difference']})")
    if lang_ours != lang_openai:
        out.append("language differs")
    if seg_ours != seg_openai:
        out.append("segment counts differ")
    if row["temperatures"].endswith("(differ)"):
        out.append("segment temperatures differ")
    if draws_ours != draws_openai:
        out.append("noise draws differ")
    if row["strategy"] == "fallback" and (draws_ours == "0" or row["temperatures"] in ("-", "0")):
        out.append("the forced fallback did not sample")
    for key, bound in (("segment_max_ms", SEGMENT_TOLERANCE_S * 1000),
                       ("avg_logprob_max_diff", AVG_LOGPROB_TOLERANCE),
                       ("no_speech_max_diff", NO_SPEECH_TOLERANCE),
                       ("word_max_ms", WORD_TOLERANCE_S * 1000)):
        if not row[key] <= bound:
            out.append(f"{key} {row[key]:.3g} > {bound:g}")
    if row["error_ours"] != row["error_openai"]:
        out.append("error rates differ")
    return out


def run_transcription_check(source: str, dtype: str, log, tier: str = "default",
                            n_workers: int | None = None) -> CheckResult:
    from weights.whisper import load

    multilingual = load(source).dims["n_vocab"] >= 51865
    try:
        items = plan(multilingual, tier)
    except (FileNotFoundError, KeyError) as e:
        return CheckResult.missing("transcription", str(e.args[0]), {"tier": tier})
    jobs, est = [], {}
    for i, (clip, strategy) in enumerate(items):
        seconds = len(clip["audio"]) / 16000
        for engine in ENGINES:
            key = f"{engine} {clip['id']} ({seconds:.1f} s) {strategy}"
            jobs.append(workers.Job(key, (engine, source, clip["audio"], strategy)))
            est[key] = estimate_s(engine, strategy, seconds)
    jobs.sort(key=lambda j: -est[j.key])  # longest first: the last jobs to start are short
    n = n_workers or workers.default_workers(len(jobs))
    progress = log if isinstance(log, Progress) else None
    if progress is not None:  # the check's own estimate gives way to its items'
        progress.drop("check transcription")
        for k, v in est.items():
            progress.plan(k, v / n)
    log(f"check transcription ({tier} tier): {len(items)} items, {len(jobs)} transcriptions "
        f"on {n} worker process{'es' if n > 1 else ''}; clips: "
        + ", ".join(sorted({c['id'] for c, _ in items})))
    results, cpu = {}, 0.0
    for k, done in enumerate(workers.run(transcribe_job, jobs, n,
                                         on_start=lambda job: log(f"  running {job.key}")), 1):
        if progress is not None:
            progress.finish(done.job.key, done.wall_s / n)
        cpu += done.cpu_s
        if done.error:
            return CheckResult("transcription", False, {"tier": tier}, [],
                               error=f"{done.job.key} raised:\n{done.error}")
        results[done.job.key] = done.result
        log(f"  done {k}/{len(jobs)}: {done.job.key} in {done.wall_s:.1f} s "
            f"(cpu {done.cpu_s:.1f} s)")
    rows, all_diffs = [], []
    for clip, strategy in items:
        seconds = len(clip["audio"]) / 16000
        (ours, d_ours), (theirs, d_theirs) = (
            results[f"{e} {clip['id']} ({seconds:.1f} s) {strategy}"] for e in ENGINES)
        row, diff = _row(clip, strategy, ours, theirs, (d_ours, d_theirs))
        rows.append(row)
        all_diffs.append(diff)
    diffs = np.concatenate([d.ravel() for d in all_diffs]) if all_diffs else np.zeros(0)

    def wer_equal(r):
        return r["error_ours"] == r["error_openai"]

    def lang_equal(r):
        return r["language"].split("/")[0] == r["language"].split("/")[1]

    failures = [row_failures(r) for r in rows]
    ok_rows = [not f for f in failures]
    for r, f in zip(rows, failures):
        r["PASS/FAIL"] = "PASS" if not f else "FAIL: " + "; ".join(f)
    summary = {
        "tier": tier,
        "clips": ", ".join(dict.fromkeys(r["clip"] for r in rows)),
        "items": len(rows),
        "tokens_identical": f"{sum(r['tokens_identical'] for r in rows)}/{len(rows)}",
        "languages_equal": f"{sum(lang_equal(r) for r in rows)}/{len(rows)}",
        "error_rates_equal": f"{sum(wer_equal(r) for r in rows)}/{len(rows)}",
        "words_compared": int(diffs.size // 2),
        "word_mean_abs_ms": float(diffs.mean() * 1000) if diffs.size else 0.0,
        "word_max_abs_ms": float(diffs.max() * 1000) if diffs.size else 0.0,
        "word_tolerance_ms": WORD_TOLERANCE_S * 1000,
        "segment_max_abs_ms": _worst(r["segment_max_ms"] for r in rows),
        "segment_tolerance_ms": SEGMENT_TOLERANCE_S * 1000,
        "avg_logprob_max_abs_diff": _worst(r["avg_logprob_max_diff"] for r in rows),
        "avg_logprob_tolerance": AVG_LOGPROB_TOLERANCE,
        "no_speech_prob_max_abs_diff": _worst(r["no_speech_max_diff"] for r in rows),
        "no_speech_prob_tolerance": NO_SPEECH_TOLERANCE,
        "temperature": ("0 (greedy, beam 5); fallback items: "
                        f"{', '.join(f'{t:g}' for t in FALLBACK['temperature'])} forced by "
                        "compression_ratio_threshold 0, best of 2, Gumbel noise seed "
                        f"{NOISE_SEED} replayed on both sides"),
        "workers": n,
        "transcription_cpu_s": round(cpu, 1),
    }
    return CheckResult("transcription", bool(rows) and all(ok_rows), summary, rows)


def transcription_checks(source: str, default_estimate_s: float,
                         full_estimate_s: float) -> tuple[Check, Check]:
    """The default-tier and the full-tier transcription checks of one model."""
    what = ("our transcribe() vs openai-whisper's on the same fp32 weights: segment tokens "
            "identical, same language, same segments and temperatures, segment times within "
            f"{SEGMENT_TOLERANCE_S * 1000:g} ms, avg log probability within "
            f"{AVG_LOGPROB_TOLERANCE:g}, no-speech probability within {NO_SPEECH_TOLERANCE:g}, "
            "word times within 20 ms, equal WER; the forced temperature fallback on "
            f"{', '.join(c for c, _ in FALLBACK_ITEMS)} sampling from the same injected Gumbel "
            "noise on both sides; ")
    return (
        Check("transcription", what + "the default items (greedy and beam 5, 7 clips in "
              "en/es/de/fr/zh, one long-form, the fallback); --full runs every clip with both",
              lambda dtype, log: run_transcription_check(source, dtype, log, "default"),
              tiers=("default",), estimate_s=default_estimate_s),
        Check("transcription", what + "every clip, greedy and beam 5, a > 60 s long-form and "
              "the fallback",
              lambda dtype, log: run_transcription_check(source, dtype, log, "full"),
              tiers=("full",), estimate_s=full_estimate_s),
    )
