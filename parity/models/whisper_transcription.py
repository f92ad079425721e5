"""End-to-end Whisper check: our `transcribe` against openai-whisper's on the same fp32 weights.

Per clip and decoding strategy (greedy, beam 5): token sequences of every segment identical
(exact), the same detected language, word start/end times within 20 ms (mean and max reported),
and WER (CER for Mandarin) equal to openai-whisper's against the clip's reference transcript.

Two tiers. The default (`python -m parity run MODEL`) checks `DEFAULT_ITEMS`: greedy and beam 5,
a committed fixture, real English speech, es/de/fr/zh, and one long-form (> 30 s, seeking past
the first window) concatenation; every item has word timestamps. `--full` checks every clip
(the fixtures, every ../shared/speech clip) with both strategies, and a > 60 s concatenation.
The real clips are required: when ../shared/speech is absent the check fails and names the
folder it looked for.

Each transcription (ours or openai-whisper's, one clip, one strategy) is a job; the jobs are
shared out to one single-threaded worker process per core (`parity.workers`), longest first.

Both sides run with temperature 0 only: the fallback re-decodes by sampling, whose random
generators differ between MLX and torch, so sampled tokens cannot be compared exactly (the
fallback logic itself is tested in tests/test_transcribe.py).
"""

from __future__ import annotations

import numpy as np

from parity import workers
from parity.clips import FIXTURES, SHARED_SPEECH, manifest
from parity.progress import Progress
from parity.spec import Check, CheckResult

WORD_TOLERANCE_S = 0.020  # the bound: word times within 20 ms of openai-whisper
STRATEGIES = {"greedy": {"beam_size": None}, "beam5": {"beam_size": 5}}
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
)

# CPU seconds of one transcription in a single-threaded worker: a part per 30-s window (encoder,
# language detection) plus a part per second of audio (decoding). Fitted to whisper-base's jobs
# in a --full run (2-core machine, loaded: +-50%; e.g. ours 3.2-3.8 s greedy and 4.4-7.9 s beam 5
# on 4-11 s clips, openai-whisper 5.2-12.9 s and 7.2-27.5 s, the 67-s long-form 13.5/34.0 s
# ours and 21.9/122.3 s openai-whisper); only the progress ETA and the job order use them.
COST_PER_WINDOW_S = {("ours", "greedy"): 2.5, ("ours", "beam5"): 3.5,
                     ("openai", "greedy"): 3.5, ("openai", "beam5"): 5.5}
COST_PER_AUDIO_S = {("ours", "greedy"): 0.15, ("ours", "beam5"): 0.3,
                    ("openai", "greedy"): 0.35, ("openai", "beam5"): 0.8}


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
    """(clip, strategy) items of `tier`; raises FileNotFoundError naming ../shared/speech when
    it is absent (the check needs real speech: without it, it must fail, not pass on less)."""
    shared = manifest(SHARED_SPEECH, missing_ok=True)
    if not shared:
        raise FileNotFoundError(
            f"the real-speech clips are missing: no {SHARED_SPEECH / 'manifest.jsonl'}; put the "
            "shared speech folder beside the clone (../shared/speech, see its README)")
    entries = [m for m in manifest(FIXTURES) + shared if multilingual or m["language"] == "en"]
    by_id = {m["id"]: m for m in entries}
    if tier == "full":
        chosen = [(m["id"], s) for m in entries for s in STRATEGIES] + [(LONG, s)
                                                                         for s in STRATEGIES]
    else:
        all_ids = {m["id"] for m in manifest(FIXTURES) + shared}
        unknown = [c for c, _ in DEFAULT_ITEMS if c != LONG and c not in all_ids]
        if unknown:
            raise KeyError(f"default transcription items {unknown} are in no clip manifest "
                           f"({FIXTURES}, {SHARED_SPEECH})")
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

        ref = build_openai(w.dims, w.state)
        set_alignment_heads(ref, w.alignment_heads)

        def fn(audio, **options):
            with torch.no_grad():
                return whisper.transcribe(ref, audio, fp16=False, verbose=None, **options)
    _BUILT[engine, source] = fn
    return fn


def transcribe_job(engine: str, source: str, audio: np.ndarray, strategy: str):
    """One transcription at temperature 0 with word timestamps: ours a `Transcription`,
    openai-whisper's its result dict."""
    return _transcriber(engine, source)(audio, temperature=0.0, word_timestamps=True,
                                        **STRATEGIES[strategy])


def _row(clip: dict, strategy: str, ours, theirs: dict) -> tuple[dict, np.ndarray]:
    same, first, diff = _compare(ours, theirs)
    lang = clip["language"]
    return {
        "clip": clip["id"], "strategy": strategy,
        "tokens": sum(len(s.tokens) for s in ours.segments),
        "tokens_identical": same, "first_difference": first or "-",
        "language": f"{ours.language}/{theirs['language']}",
        "words": len(diff), "word_mean_ms": float(diff.mean() * 1000) if diff.size else 0.0,
        "word_max_ms": float(diff.max() * 1000) if diff.size else 0.0,
        "metric": "cer" if lang == "zh" else "wer",
        "error_ours": error_rate(clip["text"], ours.text, lang),
        "error_openai": error_rate(clip["text"], theirs["text"], lang),
    }, diff


def run_transcription_check(source: str, dtype: str, log, tier: str = "default",
                            n_workers: int | None = None) -> CheckResult:
    from weights.whisper import load

    multilingual = load(source).dims["n_vocab"] >= 51865
    try:
        items = plan(multilingual, tier)
    except (FileNotFoundError, KeyError) as e:
        return CheckResult("transcription", False, {"tier": tier}, [], error=str(e.args[0]))
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
        ours, theirs = (results[f"{e} {clip['id']} ({seconds:.1f} s) {strategy}"]
                        for e in ENGINES)
        row, diff = _row(clip, strategy, ours, theirs)
        rows.append(row)
        all_diffs.append(diff)
    diffs = np.concatenate([d.ravel() for d in all_diffs]) if all_diffs else np.zeros(0)

    def wer_equal(r):
        return r["error_ours"] == r["error_openai"]

    def lang_equal(r):
        return r["language"].split("/")[0] == r["language"].split("/")[1]

    ok_rows = [r["tokens_identical"] and lang_equal(r) and r["word_max_ms"] <= WORD_TOLERANCE_S
               * 1000 and wer_equal(r) for r in rows]
    for r, ok in zip(rows, ok_rows):
        r["PASS/FAIL"] = "PASS" if ok else "FAIL"
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
        "temperature": 0.0,
        "workers": n,
        "transcription_cpu_s": round(cpu, 1),
    }
    return CheckResult("transcription", bool(rows) and all(ok_rows), summary, rows)


def transcription_checks(source: str, default_estimate_s: float,
                         full_estimate_s: float) -> tuple[Check, Check]:
    """The default-tier and the full-tier transcription checks of one model."""
    what = ("our transcribe() vs openai-whisper's on the same fp32 weights: segment tokens "
            "identical (temperature 0), same language, word times within 20 ms, equal WER; ")
    return (
        Check("transcription", what + "the default items (greedy and beam 5, 7 clips in "
              "en/es/de/fr/zh, one long-form); --full runs every clip with both",
              lambda dtype, log: run_transcription_check(source, dtype, log, "default"),
              tiers=("default",), estimate_s=default_estimate_s),
        Check("transcription", what + "every clip, greedy and beam 5, and a > 60 s long-form",
              lambda dtype, log: run_transcription_check(source, dtype, log, "full"),
              tiers=("full",), estimate_s=full_estimate_s),
    )
