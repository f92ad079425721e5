"""`python -m mlx_impl.server serve` as users start it (what `make serve` runs): it serves, logs one
line per request, refuses bad options with exit 2; CORS is off unless origins are given."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest

from server_helpers import ROOT, live_server, raw, server_deps

server_deps()

from mlx_impl.server.__main__ import EXIT_USER_ERROR, main  # noqa: E402
from mlx_impl.server.app import ServerConfig  # noqa: E402


def test_serve_starts_answers_and_logs_each_request(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path / "server.log"
    with open(log, "w") as f:
        proc = subprocess.Popen([sys.executable, "-m", "mlx_impl.server", "serve", "--host",
                                 "127.0.0.1", "--port", str(port), "--api-key", "k"], cwd=ROOT,
                                env=dict(os.environ, PYTHONPATH=str(ROOT)), stdout=f,
                                stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                health = raw("GET", f"http://127.0.0.1:{port}/health", timeout=5)
                break
            except OSError:
                assert proc.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "the server did not start in 60 s"
                time.sleep(0.2)
        assert health.status_code == 200 and health.json()["status"] == "ok"
        models = raw("GET", f"http://127.0.0.1:{port}/v1/models",
                     headers={"Authorization": "Bearer k"})
        assert models.status_code == 200 and "whisper-tiny.en" in models.text
        time.sleep(0.2)
    finally:
        proc.terminate()
        proc.wait(30)
    lines = [ln for ln in log.read_text().splitlines() if "mlx_impl.server:" in ln]
    assert any("GET /health 200" in ln and "total=" in ln for ln in lines), lines
    assert any("GET /v1/models 200" in ln for ln in lines), lines


def test_bad_options_exit_2(capsys):
    assert main(["serve", "--stt-model", "no-equals-sign"]) == EXIT_USER_ERROR
    assert "NAME=VALUE" in capsys.readouterr().err
    assert main(["serve", "--stt-model", "x=/no/such/folder"]) == EXIT_USER_ERROR
    assert "no such folder" in capsys.readouterr().err
    assert main(["serve", "--idle-ttl", "0"]) == EXIT_USER_ERROR


@pytest.mark.parametrize("origins", [(), ("http://app.example",)])
def test_cors_off_by_default_and_configurable(origins):
    with live_server(ServerConfig(cors_origins=origins)) as (base, _):
        preflight = raw("OPTIONS", f"{base}/v1/audio/speech", headers={
            "Origin": "http://app.example", "Access-Control-Request-Method": "POST"})
        simple = raw("GET", f"{base}/health", headers={"Origin": "http://app.example"})
    allowed = simple.headers.get("access-control-allow-origin")
    if origins:
        assert preflight.status_code == 200 and allowed == "http://app.example"
    else:
        assert preflight.status_code == 405 and allowed is None
        assert set(preflight.json()["error"]) == {"message", "type", "param", "code"}
