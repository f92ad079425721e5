"""A live uvicorn of `mlx_impl.server` on 127.0.0.1 (an OS-chosen port) inside the test process,
and the small models the server tests use."""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOX = ROOT / "tests" / "fixtures" / "speech" / "espeak_en_fox.wav"
WEATHER = ROOT / "tests" / "fixtures" / "speech" / "espeak_en_weather.wav"


def server_deps():
    for name in ("fastapi", "uvicorn", "multipart", "sse_starlette", "openai"):
        pytest.importorskip(name, reason=f"{name} is not installed; run `make setup` (the "
                                         "server and dev extras)")


def wav2vec2_folder() -> Path:
    """The seeded test-tiny Wav2Vec2ForCTC checkpoint (built once by the reference, cached)."""
    import parity.models.wav2vec2 as W

    return W.checkpoint(W.TEST_TINY_CONFIG)


def orpheus_tiny() -> None:
    """Build (once, cached) the orpheus-test-tiny folder the server offers."""
    from mlx_impl.tts.models import cache_root

    if (cache_root() / "orpheus-test-tiny").exists():
        return  # built: skip the reference's torch import (~10 s here)
    from parity.tts_models import build

    build("orpheus-test-tiny")


@contextlib.contextmanager
def live_server(config):
    """(base URL, app) of a server running `config` until the block ends."""
    import uvicorn

    from mlx_impl.server.app import create_app

    app = create_app(config)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                                           access_log=False, lifespan="on"))
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        server.should_exit = True
        thread.join(60)
        assert not thread.is_alive(), "the test server did not stop"


def client(base: str, key: str = "unused", **kwargs):
    from openai import OpenAI

    # no retries: a 429/5xx must show as such, not be hidden by the client's back-off
    return OpenAI(base_url=f"{base}/v1", api_key=key, max_retries=0, timeout=120, **kwargs)


def assert_error(e, status: int, code: str | None, param: str | None = None,
                 type_: str = "invalid_request_error") -> None:
    """An `openai.APIStatusError` carrying OpenAI's error shape with these fields."""
    assert e.status_code == status, (e.status_code, e.body)
    assert isinstance(e.body, dict) and set(e.body) == {"message", "type", "param", "code"}, \
        e.body
    assert (e.code, e.param, e.type) == (code, param, type_), e.body
    assert e.body["message"], e.body


class Raw:
    """A response of `raw()`: status, headers, body bytes; `json()`."""

    def __init__(self, status: int, headers: dict, content: bytes):
        self.status_code, self.headers, self.content = status, headers, content

    @property
    def text(self) -> str:
        return self.content.decode(errors="replace")

    def json(self):
        import json

        return json.loads(self.content)


def raw(method: str, url: str, *, content: bytes | None = None, json_body=None,
        headers: dict | None = None, timeout: float = 120) -> Raw:
    """One plain HTTP/1.1 request (http.client): for what the openai client will not send."""
    import http.client
    import json
    from urllib.parse import urlsplit

    headers = dict(headers or {})
    if json_body is not None:
        content = json.dumps(json_body).encode()
        headers.setdefault("Content-Type", "application/json")
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        conn.request(method, parts.path, body=content, headers=headers)
        r = conn.getresponse()
        return Raw(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
    finally:
        conn.close()
