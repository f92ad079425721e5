"""Benchmark (not a test): the audio server's transcription throughput and latency against the CLI.

    python -m benchmarks.server [--model whisper-tiny.en] [--clients 1,4,16]
        [--requests-per-client 2] [--beam-size 5|none] [--cli-repeats 3] [--out FILE.json]

The server runs in its own process (`python -m mlx_impl.server serve` on a free loopback port);
clients are threads of this process, each sending its requests one after another through the
`openai` client. For each concurrency: requests per second (all requests / wall time) and
latency percentiles (p50, p90, p99, max; seconds from send to the whole answer). Next to it,
the same clip through the CLI: `python -m mlx_impl.whisper CLIP` as a fresh process (load +
transcribe, what a user runs per file) and the transcription alone in a warm process (the work
the server does per request). The clip is the 11-s JFK clip of ../shared/speech (the fixture
fox clip, 6.5 s, when that folder is absent; the output says which). With one inference worker,
requests are served one at a time: more clients raise latency, not throughput; the numbers
show what queueing costs and that nothing is lost to the HTTP layer.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def pick_clip() -> tuple[Path, str]:
    jfk = ROOT.parent / "shared" / "speech" / "clips" / "jfk_inaugural_1961.wav"
    if jfk.is_file():
        return jfk, "jfk_inaugural_1961 (11.0 s, ../shared/speech)"
    return ROOT / "tests/fixtures/speech/espeak_en_fox.wav", "espeak_en_fox (6.5 s, fixture)"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentiles(latencies: list[float]) -> dict:
    a = np.array(latencies)
    return {"p50": float(np.percentile(a, 50)), "p90": float(np.percentile(a, 90)),
            "p99": float(np.percentile(a, 99)), "max": float(a.max())}


def run_clients(base: str, model: str, clip: Path, clients: int, per_client: int,
                beam: str) -> dict:
    from openai import OpenAI

    data = clip.read_bytes()

    def one_client(_):
        api = OpenAI(base_url=f"{base}/v1", api_key="none", max_retries=0, timeout=600)
        out = []
        for _ in range(per_client):
            t0 = time.perf_counter()
            api.audio.transcriptions.create(model=model, file=(clip.name, data, "audio/wav"),
                                            extra_body={"beam_size": beam})
            out.append(time.perf_counter() - t0)
        return out

    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        latencies = [x for chunk in pool.map(one_client, range(clients)) for x in chunk]
    wall = time.perf_counter() - t0
    return {"clients": clients, "requests": len(latencies), "wall_s": wall,
            "requests_per_s": len(latencies) / wall, **percentiles(latencies)}


def cli_times(model: str, clip: Path, beam: str, repeats: int) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "mlx_impl.whisper", str(clip), "--model", model,
           "--beam-size", beam, "--no-progress"]
    fresh = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, env=env, cwd=ROOT)
        fresh.append(time.perf_counter() - t0)
    # the transcription alone, model loaded, in a fresh process (the server's per-request work)
    code = (f"import time, mlx_impl, mlx.core as mx, json\n"
            f"from mlx_impl.whisper.transcribe import WhisperSTT\n"
            f"from mlx_impl.server.app import whisper_options, STTRequest\n"
            f"stt = WhisperSTT.load({model!r})\n"
            f"req = STTRequest({model!r}, 'transcribe', None, None, 0.0, 'json', (), False, "
            f"{None if beam == 'none' else int(beam)!r})\n"
            f"stt.transcribe({str(clip)!r}, **whisper_options(req))\n"
            f"t = []\n"
            f"for _ in range({repeats}):\n"
            f"    t0 = time.perf_counter(); stt.transcribe({str(clip)!r}, "
            f"**whisper_options(req)); t.append(time.perf_counter() - t0)\n"
            f"print(json.dumps(t))\n")
    warm = json.loads(subprocess.run([sys.executable, "-c", code], check=True,
                                     capture_output=True, text=True, env=env,
                                     cwd=ROOT).stdout.strip().splitlines()[-1])
    return {"cli_fresh_process_s": float(np.median(fresh)),
            "transcribe_warm_s": float(np.median(warm)), "repeats": repeats}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.server", description=__doc__.split(
        "\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model", default="whisper-tiny.en")
    p.add_argument("--clients", default="1,4,16", help="comma-separated concurrency levels")
    p.add_argument("--requests-per-client", type=int, default=2)
    p.add_argument("--beam-size", default="5", help="5 (the CLI's default) or none (greedy)")
    p.add_argument("--cli-repeats", type=int, default=3)
    p.add_argument("--out", default=None, help="also write the results as JSON here")
    args = p.parse_args(argv)
    clip, clip_name = pick_clip()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    server = subprocess.Popen([sys.executable, "-m", "mlx_impl.server", "serve", "--port",
                               str(port), "--log-level", "warning"], cwd=ROOT, env=env)
    import datetime
    import platform

    # the machine's state, since other processes change the numbers (load averages over 1, 5,
    # 15 minutes when the run starts and ends)
    results = {"model": args.model, "clip": clip_name, "beam_size": args.beam_size,
               "started": datetime.datetime.now(datetime.timezone.utc).isoformat(
                   timespec="seconds"),
               "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                           "loadavg_start": list(os.getloadavg())},
               "levels": []}
    try:
        from openai import OpenAI

        api = OpenAI(base_url=f"{base}/v1", api_key="none", max_retries=0, timeout=600)
        deadline = time.monotonic() + 120
        while True:
            try:
                api.models.list()
                break
            except Exception:  # noqa: BLE001  (not listening yet)
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the server did not start") from None
                time.sleep(0.2)
        run_clients(base, args.model, clip, 1, 1, args.beam_size)  # warm-up: loads the model
        for c in (int(x) for x in args.clients.split(",")):
            level = run_clients(base, args.model, clip, c, args.requests_per_client,
                                args.beam_size)
            results["levels"].append(level)
            print(f"{c:>3} clients: {level['requests']:>3} requests, "
                  f"{level['requests_per_s']:.2f} req/s, p50 {level['p50']:.2f} s, "
                  f"p90 {level['p90']:.2f} s, p99 {level['p99']:.2f} s, "
                  f"max {level['max']:.2f} s", flush=True)
    finally:
        server.terminate()
        server.wait(30)
    results["cli"] = cli_times(args.model, clip, args.beam_size, args.cli_repeats)
    results["machine"]["loadavg_end"] = list(os.getloadavg())
    cli = results["cli"]
    print(f"CLI: fresh process {cli['cli_fresh_process_s']:.2f} s per file (load + "
          f"transcribe), transcription alone {cli['transcribe_warm_s']:.2f} s "
          f"(median of {cli['repeats']}); clip {clip_name}, {args.model}, beam "
          f"{args.beam_size}")
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=out.parent or ".", suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            json.dump(results, f, indent=2)
        os.replace(tmp, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
