"""Speed and memory of quantized Whisper on the CPU: ours fp32 / q8 / q4 against faster-whisper
int8 (CTranslate2's quantized path) and float32.

    python -m benchmarks.quant whisper-base [--clip jfk_inaugural_1961] [--repeats 2]

Each measurement is a fresh process (`--worker`): load the weights (timed), quantize (ours, part
of the load time), transcribe the clip once untimed (warm-up), then `--repeats` times timed
(greedy, temperature 0, no word timestamps, language "en"); report the median transcribe time,
the real-time factor and the process's peak RSS (VmHWM, which includes the load). Both engines
use the machine's cores (MLX's CPU stream and BLAS threads; CTranslate2 `cpu_threads`).
"ours qN" quantizes after loading the float32 weights; "ours qN checkpoint" loads a q8/q4
(group 64) MLX checkpoint written by `mlx_impl.whisper.checkpoint` (scales stored in float16).
Writes reports/quant/bench-<model>.md and .json (beside the quantized parity reports; not in
reports/bench/, whose files are runner reports that `make report` reads).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPORTS = Path(__file__).resolve().parents[1] / "reports" / "quant"
CONFIGS = ("ours fp32", "ours q8", "ours q4", "ours q8 checkpoint", "ours q4 checkpoint",
           "faster-whisper int8", "faster-whisper float32")
CHECKPOINTS = Path("/tmp") / "mlx-audio-parity-quant-bench"  # written by the parent, per run


def _peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def write_checkpoints(model: str) -> None:
    """q8/q4 (group 64) MLX checkpoints of `model` for the "checkpoint" rows, in a subprocess
    (the parent stays free of MLX)."""
    for bits in (8, 4):
        subprocess.run([sys.executable, "-m", "mlx_impl.whisper.checkpoint", model,
                        str(CHECKPOINTS / f"{model}-q{bits}"), "--quantize", str(bits)],
                       check=True, capture_output=True)


def worker(config: str, model: str, clip: Path, repeats: int) -> dict:
    from mlx_impl.audio_io import load_audio

    audio = load_audio(str(clip))
    t0 = time.perf_counter()
    if config.startswith("ours"):
        import mlx_impl  # noqa: F401  (BLAS preload before mlx)
        from mlx_impl.whisper.checkpoint import quantize_whisper
        from mlx_impl.whisper.transcribe import WhisperSTT

        if config.endswith("checkpoint"):  # quantized on disk: float32 never whole in memory
            stt = WhisperSTT.load(CHECKPOINTS / f"{model}-{config.split()[1]}")
        else:
            stt = WhisperSTT.load(model)
            if config != "ours fp32":  # quantized after loading float32
                quantize_whisper(stt.model, int(config[-1]), 64)

        def run() -> str:
            return stt.transcribe(audio, temperature=0.0, beam_size=None, language="en",
                                  progress=False).text
    else:
        from faster_whisper import WhisperModel

        from benchmarks.prepare import ct2_dir

        fw = WhisperModel(str(ct2_dir(model)), device="cpu", compute_type=config.split()[-1],
                          cpu_threads=os.cpu_count() or 1, local_files_only=True)

        def run() -> str:
            segments, _ = fw.transcribe(audio, language="en", beam_size=1, best_of=1,
                                        temperature=[0.0], condition_on_previous_text=True,
                                        vad_filter=False)
            return "".join(s.text for s in segments)
    load_s = time.perf_counter() - t0
    text = run()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        run()
        times.append(time.perf_counter() - t)
    return {"config": config, "load_s": load_s, "transcribe_s": statistics.median(times),
            "times_s": times, "peak_rss_mb": _peak_rss_mb(), "text": text.strip()}


def to_markdown(res: dict) -> str:
    base = next(r for r in res["rows"] if r["config"] == "ours fp32")
    lines = [f"# Quantized {res['model']} on the CPU: speed and memory", "",
             f"`{res['command']}` on {res['machine']}, {res['date']}; clip {res['clip']} "
             f"({res['audio_s']:.1f} s), greedy, median of {res['repeats']} after a warm-up; "
             "each row a fresh process. Peak RSS includes loading.", "",
             "| engine | load s | transcribe s | RTF | vs ours fp32 | peak RSS MB | transcript |",
             "|---|---|---|---|---|---|---|"]
    for r in res["rows"]:
        lines.append(f"| {r['config']} | {r['load_s']:.2f} | {r['transcribe_s']:.2f} | "
                     f"{r['transcribe_s'] / res['audio_s']:.3f} | "
                     f"{r['transcribe_s'] / base['transcribe_s']:.2f}x | {r['peak_rss_mb']:.0f} | "
                     f"{r['text'][:60]} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.quant", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", choices=("whisper-tiny.en", "whisper-base"))
    p.add_argument("--clip", default="jfk_inaugural_1961", help="a ../shared/speech clip id")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--worker", default=None, choices=CONFIGS, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    from parity.clips import manifest, shared_speech

    entry = next(m for m in manifest(shared_speech()) if m["id"] == a.clip)
    if a.worker is not None:
        print(json.dumps(worker(a.worker, a.model, entry["path"], a.repeats)))
        return 0
    from parity.report import atomic_write

    write_checkpoints(a.model)
    rows = []
    for config in CONFIGS:
        out = subprocess.run([sys.executable, "-m", "benchmarks.quant", a.model, "--clip", a.clip,
                              "--repeats", str(a.repeats), "--worker", config],
                             capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(f"{config}: transcribe {rows[-1]['transcribe_s']:.2f} s, peak RSS "
              f"{rows[-1]['peak_rss_mb']:.0f} MB", file=sys.stderr)
    import mlx.core as mx

    res = {"model": a.model, "clip": a.clip, "audio_s": float(entry["duration_s"]),
           "repeats": a.repeats, "command": f"python -m benchmarks.quant {a.model}",
           "machine": f"{platform.machine()} CPU, {os.cpu_count()} cores",
           "date": time.strftime("%Y-%m-%d", time.gmtime()), "mlx": mx.__version__, "rows": rows}
    REPORTS.mkdir(parents=True, exist_ok=True)
    atomic_write(REPORTS / f"bench-{a.model}.json", json.dumps(res, indent=1) + "\n")
    atomic_write(REPORTS / f"bench-{a.model}.md", to_markdown(res))
    print(f"wrote {REPORTS / f'bench-{a.model}.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
