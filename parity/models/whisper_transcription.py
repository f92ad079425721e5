"""End-to-end Whisper check: our `transcribe` against openai-whisper's on the same fp32 weights.

Per clip and decoding strategy (greedy, beam 5): token sequences of every segment identical
(exact), the same detected language, word start/end times within 20 ms (mean and max reported),
and WER (CER for Mandarin) equal to openai-whisper's against the clip's reference transcript.
Clips: the committed espeak fixtures, every ../shared/speech clip when present (real speech in
en/es/de/fr/zh), and a > 60 s concatenation of the English clips (long-form seek).

Both sides run with temperature 0 only: the fallback re-decodes by sampling, whose random
generators differ between MLX and torch, so sampled tokens cannot be compared exactly (the
fallback logic itself is tested in tests/test_transcribe.py).
"""

from __future__ import annotations

import numpy as np

from parity.clips import FIXTURES, SHARED_SPEECH, manifest
from parity.spec import Check, CheckResult

WORD_TOLERANCE_S = 0.020  # the bound: word times within 20 ms of openai-whisper
LONG_FORM_MIN_S = 60.0
STRATEGIES = {"greedy": {"beam_size": None}, "beam5": {"beam_size": 5}}


def clips(multilingual: bool) -> list[dict]:
    """(id, audio, text, language) items: fixtures, shared clips, and one long-form concatenation."""
    from mlx_impl.audio_io import load_audio

    items = []
    for m in manifest(FIXTURES) + manifest(SHARED_SPEECH, missing_ok=True):
        if m["language"] != "en" and not multilingual:
            continue
        items.append({"id": m["id"], "audio": load_audio(str(m["path"])), "text": m["text"],
                      "language": m["language"]})
    english = [c for c in items if c["language"] == "en"]
    pieces, total = [], 0.0
    while english and total < LONG_FORM_MIN_S:
        for c in english:
            pieces.append(c)
            total += len(c["audio"]) / 16000
            if total >= LONG_FORM_MIN_S:
                break
    if pieces:
        items.append({"id": f"long-{total:.0f}s", "audio": np.concatenate([c["audio"] for c in pieces]),
                      "text": " ".join(c["text"] for c in pieces), "language": "en"})
    return items


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


def run_transcription_check(source: str, dtype: str, log) -> CheckResult:
    import torch
    import whisper

    from mlx_impl.whisper.load import from_state
    from mlx_impl.whisper.tokenizer import tokenizer_for_model
    from mlx_impl.whisper.transcribe import WhisperSTT
    from reference.whisper import build_openai, set_alignment_heads
    from weights.whisper import load

    w = load(source)
    stt = WhisperSTT(from_state(w.dims, w.state, alignment_heads=w.alignment_heads),
                     tokenizer_for_model(w.tokenizer_json, w.dims["n_vocab"]), source)
    ref = build_openai(w.dims, w.state)
    set_alignment_heads(ref, w.alignment_heads)
    multilingual = w.dims["n_vocab"] >= 51865
    rows, all_diffs = [], []
    for clip in clips(multilingual):
        for strategy, opts in STRATEGIES.items():
            log(f"  {clip['id']} ({len(clip['audio']) / 16000:.1f} s), {strategy}")
            ours = stt.transcribe(clip["audio"], temperature=0.0, word_timestamps=True, **opts)
            with torch.no_grad():
                theirs = whisper.transcribe(ref, clip["audio"], fp16=False, temperature=0.0,
                                            word_timestamps=True, verbose=None, **opts)
            same, first, diff = _compare(ours, theirs)
            all_diffs.append(diff)
            lang = clip["language"]
            rows.append({
                "clip": clip["id"], "strategy": strategy,
                "tokens": sum(len(s.tokens) for s in ours.segments),
                "tokens_identical": same, "first_difference": first or "-",
                "language": f"{ours.language}/{theirs['language']}",
                "words": len(diff), "word_mean_ms": float(diff.mean() * 1000) if diff.size else 0.0,
                "word_max_ms": float(diff.max() * 1000) if diff.size else 0.0,
                "metric": "cer" if lang == "zh" else "wer",
                "error_ours": error_rate(clip["text"], ours.text, lang),
                "error_openai": error_rate(clip["text"], theirs["text"], lang),
            })
    if not rows:
        return CheckResult("transcription", False, {}, [], error="no clips to transcribe")
    diffs = np.concatenate([d.ravel() for d in all_diffs]) if all_diffs else np.zeros(0)

    def wer_equal(r):
        return r["error_ours"] == r["error_openai"]

    ok_rows = [r["tokens_identical"] and r["language"].split("/")[0] == r["language"].split("/")[1]
               and r["word_max_ms"] <= WORD_TOLERANCE_S * 1000 and wer_equal(r) for r in rows]
    for r, ok in zip(rows, ok_rows):
        r["PASS/FAIL"] = "PASS" if ok else "FAIL"
    summary = {
        "items": len(rows),
        "tokens_identical": f"{sum(r['tokens_identical'] for r in rows)}/{len(rows)}",
        "languages_equal": f"{sum(r['language'].split('/')[0] == r['language'].split('/')[1] for r in rows)}/{len(rows)}",
        "error_rates_equal": f"{sum(wer_equal(r) for r in rows)}/{len(rows)}",
        "words_compared": int(diffs.size // 2),
        "word_mean_abs_ms": float(diffs.mean() * 1000) if diffs.size else 0.0,
        "word_max_abs_ms": float(diffs.max() * 1000) if diffs.size else 0.0,
        "word_tolerance_ms": WORD_TOLERANCE_S * 1000,
        "temperature": 0.0,
    }
    return CheckResult("transcription", all(ok_rows), summary, rows)


def transcription_check(source: str) -> Check:
    return Check(
        "transcription",
        "our transcribe() vs openai-whisper's on the same fp32 weights: segment tokens identical "
        "(greedy and beam 5, temperature 0), same language, word times within 20 ms, equal WER",
        lambda dtype, log: run_transcription_check(source, dtype, log),
    )
