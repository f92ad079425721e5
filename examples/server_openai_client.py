"""Our OpenAI-compatible server called with the `openai` client: a transcript with word times.

    .venv/bin/python examples/server_openai_client.py tests/fixtures/speech/espeak_en_fox.wav \
        [--model whisper-tiny.en] [--base-url http://127.0.0.1:8000/v1]

With --base-url the example talks to a server you started (`make serve`). Without it, it starts
`python -m mlx_impl.server serve` itself on 127.0.0.1 (loopback only, a free port), waits for
/health (at most --timeout seconds), makes the request and stops the server. Model ids: every
installed Whisper (whisper-tiny.en, whisper-base; `whisper-1` is whisper-base).
"""

import argparse
import contextlib
import socket
import subprocess
import sys
import time
import urllib.request

from openai import OpenAI


@contextlib.contextmanager
def local_server(timeout: float):
    with socket.socket() as s:  # a free loopback port
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "mlx_impl.server", "serve", "--host",
                             "127.0.0.1", "--port", str(port), "--log-level", "warning"])
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"error: the server did not come up on {base} within "
                                 f"{timeout:g} s (exit status {proc.poll()})")
            time.sleep(0.2)
        yield f"{base}/v1"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def transcribe(base_url: str, audio: str, model: str, timeout: float) -> None:
    client = OpenAI(base_url=base_url, api_key="none", timeout=timeout, max_retries=0)
    with open(audio, "rb") as f:
        result = client.audio.transcriptions.create(
            model=model, file=f, response_format="verbose_json",
            timestamp_granularities=["word", "segment"],
            extra_body={"beam_size": "none"})  # our extension: greedy (the default is beam 5)
    print(result.text.strip())
    for w in result.words[:5]:
        print(f"  {w.start:6.2f}-{w.end:6.2f} s  {w.word.strip()}")
    print(f"{len(result.words)} words, {len(result.segments)} segments, "
          f"{result.duration:.2f} s of audio")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("audio")
    p.add_argument("--model", default="whisper-tiny.en")
    p.add_argument("--base-url", default=None, help="a running server (default: start one)")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds for start-up and for "
                   "the request each")
    a = p.parse_args(argv)
    if a.base_url:
        transcribe(a.base_url, a.audio, a.model, a.timeout)
        return 0
    with local_server(a.timeout) as base_url:
        transcribe(base_url, a.audio, a.model, a.timeout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
