"""Quantized models against their float32 reference: `python -m parity quant MODEL`.

Whisper (whisper-tiny.en, whisper-base): two tables, written to reports/quant/<MODEL>.md, .json:

1. Taps, teacher-forced (the spec's first golden case: a fixture clip and its transcript's
   tokens): for our float32 port and each (bits, group size) in `TAP_CONFIGS`, every tap's
   normalised MSE (sum (got - want)^2 / sum want^2) and SNR (`parity.metrics.snr_db`) against the
   openai-whisper float32 reference, and the teacher-forced argmax agreement. Quantized outputs
   are not held to exact tolerances: these are measurements, reported with the worst tap.
2. Transcripts (greedy, temperature 0, word timestamps) of every ../shared/speech clip (English
   ones only for English-only models) by openai-whisper float32 and by ours in float32 and each
   of `TRANSCRIPT_CONFIGS`: tokens identical or not, token agreement (1 - token edit rate
   against openai-whisper's tokens), WER (CER for Mandarin) of each against the clip's reference
   text and its delta, and word start/end time differences over the words both sides share
   (aligned by difflib on the word strings).

Quantization is `mlx_impl.whisper.checkpoint.quantize_whisper` (MLX's `nn.quantize`, Whisper's
policy). Codecs (any other registered spec): `codec_table` (the spec's first golden case; float
taps' SNR, codes' agreement rates; the layers quantized and kept). Everything runs in this one
process, in order; wrap it in the heavy-work lock.
"""

from __future__ import annotations

import difflib
import json
import platform
import time
from pathlib import Path

import numpy as np

from parity.metrics import snr_db
from parity.report import atomic_write

REPORTS = Path(__file__).resolve().parents[1] / "reports" / "quant"
TAP_CONFIGS = ((8, 32), (8, 64), (8, 128), (4, 32), (4, 64), (4, 128),
               (8, 32, "mxfp8"), (4, 32, "mxfp4"), (4, 16, "nvfp4"))
TRANSCRIPT_CONFIGS = ((8, 64), (4, 64))


def _label(cfg) -> str:
    if cfg is None:
        return "fp32"
    return f"q{cfg[0]} g{cfg[1]}" if len(cfg) == 2 else cfg[2]


def _mlx_side(source: str, cfg):
    from parity.models.whisper import MlxSide

    side = MlxSide(source, "float32")
    if cfg is not None:
        from mlx_impl.whisper.checkpoint import quantize_whisper

        quantize_whisper(side.model, *cfg)
    return side  # cfg: (bits, group_size[, mode])


def tap_table(model: str, log=print) -> dict:
    from parity import registry
    from parity.models.whisper import ReferenceSide

    spec = registry.get(model)
    case = spec.golden_cases[0]
    inputs = spec.make_inputs(case)
    ref = ReferenceSide(model, cross_check=False)(inputs.arrays)
    out = {"case": case.name, "clip": inputs.meta.get("clip"), "configs": {}}
    for cfg in (None, *TAP_CONFIGS):
        t0 = time.perf_counter()
        got = _mlx_side(model, cfg)(inputs.arrays)
        taps = {}
        for name, want in ref.items():
            if name == "logits.argmax":
                continue
            snr = snr_db(want, got[name], name)
            taps[name] = {"snr_db": snr, "nmse": 10 ** (-snr / 10) if np.isfinite(snr) else 0.0}
        agree = float(np.mean(got["logits.argmax"] == ref["logits.argmax"]))
        worst = min(taps, key=lambda k: taps[k]["snr_db"])
        out["configs"][_label(cfg)] = {"taps": taps, "argmax_agreement": agree,
                                       "worst_tap": worst, "seconds": time.perf_counter() - t0}
        log(f"  taps {_label(cfg)}: worst {worst} SNR {taps[worst]['snr_db']:.1f} dB, "
            f"logits SNR {taps['logits']['snr_db']:.1f} dB, argmax agreement {agree:.3f}")
    return out


def _ours(source: str, cfg):
    """Our Whisper on `source`, quantized by `cfg` (None: float32)."""
    from mlx_impl.whisper.checkpoint import quantize_whisper
    from mlx_impl.whisper.load import from_state
    from mlx_impl.whisper.tokenizer import tokenizer_for_model
    from mlx_impl.whisper.transcribe import WhisperSTT
    from weights.whisper import load

    w = load(source)
    model = from_state(w.dims, w.state, alignment_heads=w.alignment_heads)
    if cfg is not None:
        quantize_whisper(model, *cfg)
    return WhisperSTT(model, tokenizer_for_model(w.tokenizer_json, w.dims["n_vocab"]), source)


def token_agreement(got: list[int], want: list[int]) -> float:
    """1 - (token edit distance / len(want)) (jiwer's word error rate over token ids)."""
    import jiwer

    if not want:
        return 1.0 if not got else 0.0
    return 1.0 - float(jiwer.wer(" ".join(map(str, want)), " ".join(map(str, got)) or "<none>"))


def word_time_deltas(got_words: list, want_words: list) -> np.ndarray:
    """|start/end differences| (N, 2) in seconds over the words both transcripts share."""
    g = [w.word.strip().lower() for w in got_words]
    r = [w["word"].strip().lower() for w in want_words]
    diffs = []
    for block in difflib.SequenceMatcher(a=g, b=r, autojunk=False).get_matching_blocks():
        for i in range(block.size):
            a, b = got_words[block.a + i], want_words[block.b + i]
            diffs.append((abs(a.start - b["start"]), abs(a.end - b["end"])))
    return np.asarray(diffs, dtype=np.float64).reshape(-1, 2)


def transcript_table(model: str, log=print) -> dict:
    from parity.clips import manifest, shared_speech
    from parity.models.whisper_transcription import _read, error_rate, transcribe_job

    from mlx_impl.whisper.config import PRESETS

    source = model  # the registered weights of the same name (weights.whisper.REGISTERED)
    entries = manifest(shared_speech())
    if not PRESETS[model.removeprefix("whisper-")].is_multilingual:
        entries = [m for m in entries if m["language"] == "en"]
    clips = [_read(m) for m in entries]
    options = {"temperature": 0.0, "beam_size": None, "word_timestamps": True}
    rows = []
    theirs = {}
    for clip in clips:
        t0 = time.perf_counter()
        theirs[clip["id"]], _ = transcribe_job("openai", source, clip["audio"], "greedy")
        log(f"  openai fp32 {clip['id']}: {time.perf_counter() - t0:.1f} s")
    for cfg in (None, *TRANSCRIPT_CONFIGS):
        stt = _ours(source, cfg)
        for clip in clips:
            t0 = time.perf_counter()
            ours = stt.transcribe(clip["audio"], **options)
            seconds = time.perf_counter() - t0
            ref = theirs[clip["id"]]
            got = [t for s in ours.segments for t in s.tokens]
            want = [t for s in ref["segments"] for t in s["tokens"]]
            words = word_time_deltas([w for s in ours.segments for w in (s.words or [])],
                                     [w for s in ref["segments"] for w in s.get("words", [])])
            lang = clip["language"]
            err_ours = error_rate(clip["text"], ours.text, lang)
            err_ref = error_rate(clip["text"], ref["text"], lang)
            rows.append({
                "config": _label(cfg), "clip": clip["id"], "language": lang,
                "metric": "cer" if lang == "zh" else "wer",
                "tokens_identical": got == want, "token_agreement": token_agreement(got, want),
                "error_openai_fp32": err_ref, "error_ours": err_ours,
                "error_delta": err_ours - err_ref,
                "words_matched": int(len(words)),
                "word_mean_ms": float(words.mean() * 1000) if words.size else float("nan"),
                "word_max_ms": float(words.max() * 1000) if words.size else float("nan"),
                "seconds": seconds, "text": ours.text.strip(),
                "text_openai_fp32": ref["text"].strip()})
            log(f"  ours {_label(cfg)} {clip['id']}: identical {got == want}, "
                f"{rows[-1]['metric']} {err_ours:.3f} (openai {err_ref:.3f}), {seconds:.1f} s")
    summary = {}
    for cfg in (None, *TRANSCRIPT_CONFIGS):
        rs = [r for r in rows if r["config"] == _label(cfg)]
        en = [r for r in rs if r["language"] == "en"]
        summary[_label(cfg)] = {
            "clips": len(rs), "identical": sum(r["tokens_identical"] for r in rs),
            "token_agreement_mean": float(np.mean([r["token_agreement"] for r in rs])),
            "token_agreement_min": float(np.min([r["token_agreement"] for r in rs])),
            "english_wer_ours": float(np.mean([r["error_ours"] for r in en])),
            "english_wer_openai_fp32": float(np.mean([r["error_openai_fp32"] for r in en])),
            "error_delta_max": float(np.max([r["error_delta"] for r in rs])),
            "word_max_ms": float(np.nanmax([r["word_max_ms"] for r in rs])),
            "seconds": float(np.sum([r["seconds"] for r in rs]))}
    return {"options": "greedy, temperature 0, word timestamps", "rows": rows,
            "summary": summary}


def _f(x: float, digits: int = 1) -> str:
    return "inf" if x == float("inf") else f"{x:.{digits}f}"


def to_markdown(res: dict) -> str:
    taps = res["taps"]
    labels = list(taps["configs"])
    lines = [f"# Quantized {res['model']} against openai-whisper float32", "",
             f"Generated by `{res['command']}` on {res['machine']}, {res['date']} (mlx "
             f"{res['versions']['mlx']}). Quantization: MLX `nn.quantize`, affine; Whisper's "
             "policy keeps the token embedding (the tied vocabulary head), convolutions, layer "
             "norms and positional tables in float32; every Linear is quantized.", "",
             f"## Taps, teacher-forced ({taps['case']}: {taps['clip']})", "",
             "SNR in dB against the float32 reference (normalised MSE = 10^(-SNR/10)).", "",
             "| tap | " + " | ".join(labels) + " |", "|---|" + "---|" * len(labels)]
    names = list(taps["configs"][labels[0]]["taps"])
    for n in names:
        lines.append(f"| {n} | " + " | ".join(_f(taps["configs"][c]["taps"][n]["snr_db"])
                                               for c in labels) + " |")
    lines.append("| **argmax agreement** | " + " | ".join(
        f"{taps['configs'][c]['argmax_agreement']:.3f}" for c in labels) + " |")
    lines.append("| worst tap | " + " | ".join(taps["configs"][c]["worst_tap"]
                                              for c in labels) + " |")
    tr = res["transcripts"]
    lines += ["", f"## Transcripts ({tr['options']}) against openai-whisper float32", "",
              "| config | clips | tokens identical | token agreement mean / min | English WER "
              "ours / openai fp32 | worst error delta | word time max ms | decode s |",
              "|---|---|---|---|---|---|---|---|"]
    for c, s in tr["summary"].items():
        lines.append(f"| {c} | {s['clips']} | {s['identical']} | {s['token_agreement_mean']:.3f}"
                     f" / {s['token_agreement_min']:.3f} | {100 * s['english_wer_ours']:.2f} / "
                     f"{100 * s['english_wer_openai_fp32']:.2f} % | "
                     f"{100 * s['error_delta_max']:+.2f} pts | {_f(s['word_max_ms'], 0)} | "
                     f"{s['seconds']:.0f} |")
    lines += ["", "| config | clip | identical | token agreement | error ours / openai | "
              "words matched | word mean / max ms | transcript (ours) |",
              "|---|---|---|---|---|---|---|---|"]
    for r in tr["rows"]:
        lines.append(f"| {r['config']} | {r['clip']} | {'yes' if r['tokens_identical'] else 'no'}"
                     f" | {r['token_agreement']:.3f} | {r['metric']} {100 * r['error_ours']:.1f}"
                     f" / {100 * r['error_openai_fp32']:.1f} % | {r['words_matched']} | "
                     f"{_f(r['word_mean_ms'], 0)} / {_f(r['word_max_ms'], 0)} | "
                     f"{r['text'][:80]} |")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------
# codecs: the spec's first golden case through each side; codes as agreement rates

CODEC_CONFIGS = ((8, 32), (8, 64), (4, 32), (4, 64))


def codec_table(model: str, log=print) -> dict:
    """For a codec spec: per (bits, group size), the layers quantized (`mlx_impl.quantization`
    with no layer kept by policy: every Linear MLX can quantize is), each float tap's SNR against
    the float32 reference, and each discrete tap's (codes) agreement rate."""
    from mlx_impl.quantization import quantize
    from parity import registry

    spec = registry.get(model)
    case = spec.golden_cases[0]
    inputs = spec.make_inputs(case)
    ref = spec.build_reference()(inputs.arrays)
    out = {"case": case.name, "configs": {}}
    for cfg in (None, *CODEC_CONFIGS):
        side = spec.build_mlx("float32")
        report = quantize(side.model, *cfg) if cfg is not None else None
        got = side(inputs.arrays)
        taps = {}
        for name in spec.taps:
            want, g = ref[name], got[name]
            if name in spec.discrete:
                taps[name] = {"agreement": float(np.mean(g == want)) if g.shape == want.shape
                              else 0.0}
            else:
                snr = snr_db(want, g, name)
                taps[name] = {"snr_db": snr,
                              "nmse": 10 ** (-snr / 10) if np.isfinite(snr) else 0.0}
        out["configs"][_label(cfg)] = {
            "taps": taps, "quantized": None if report is None else report.quantized,
            "kept": None if report is None else report.kept}
        end = [n for n in spec.taps if n not in spec.discrete][-1]
        log(f"  {_label(cfg)}: {0 if report is None else len(report.quantized)} layers "
            f"quantized; {end} SNR {taps[end]['snr_db']:.1f} dB; " + ", ".join(
                f"{n} agreement {taps[n]['agreement']:.3f}" for n in spec.discrete))
    return out


def codec_markdown(res: dict) -> str:
    t = res["codec"]
    labels = list(t["configs"])
    lines = [f"# Quantized {res['model']} against its float32 reference", "",
             f"Generated by `{res['command']}` on {res['machine']}, {res['date']} (mlx "
             f"{res['versions']['mlx']}), case {t['case']}. Quantization: MLX `nn.quantize`, "
             "affine, every layer MLX can quantize (Linear, Embedding) whose input width is a "
             "multiple of the group size; convolutions have no quantized form in MLX and stay "
             "float32.", "", "Float taps: SNR in dB against the reference; codes: agreement "
             "rate.", "", "| tap | " + " | ".join(labels) + " |",
             "|---|" + "---|" * len(labels)]
    for n in t["configs"][labels[0]]["taps"]:
        cells = []
        for c in labels:
            v = t["configs"][c]["taps"][n]
            cells.append(f"{v['agreement']:.3f}" if "agreement" in v else _f(v["snr_db"]))
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    for c in labels[1:]:
        q = t["configs"][c]
        lines += ["", f"{c}: {len(q['quantized'])} layers quantized: "
                  + (", ".join(compress(q["quantized"])) or "none") + "."]
        kept = {}
        for p, why in q["kept"].items():
            kept.setdefault(why, []).append(p)
        lines += [f"- kept ({why}): {', '.join(compress(ps))}" for why, ps in kept.items()]
    return "\n".join(lines) + "\n"


def compress(paths):
    from mlx_impl.quantization import compress_paths

    return compress_paths(paths)


def run(model: str, root: Path = REPORTS, log=print) -> tuple[Path, Path]:
    import mlx.core as mx

    t0 = time.perf_counter()
    res = {"model": model, "command": f"python -m parity quant {model}",
           "machine": f"{platform.machine()} CPU, {platform.system()}",
           "date": time.strftime("%Y-%m-%d", time.gmtime()),
           "versions": {"mlx": mx.__version__}}
    if model.startswith("whisper"):
        res |= {"taps": tap_table(model, log), "transcripts": transcript_table(model, log)}
    else:
        res["codec"] = codec_table(model, log)
    res["seconds"] = time.perf_counter() - t0
    root.mkdir(parents=True, exist_ok=True)
    md, js = root / f"{model}.md", root / f"{model}.json"
    atomic_write(js, json.dumps(res, indent=1, default=float) + "\n")
    atomic_write(md, to_markdown(res) if "taps" in res else codec_markdown(res))
    return md, js
