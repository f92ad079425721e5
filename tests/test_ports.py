"""Third-party MLX ports on the spec's MLX side (`python -m parity run MODEL --port NAME`)."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch", reason="the port is compared with the torch reference")
pytest.importorskip("mlx_whisper", reason="mlx-whisper is not installed; `make setup` (bench "
                    "extra) installs 0.4.3")

from parity import registry  # noqa: E402
from parity.__main__ import main  # noqa: E402
from parity.ports import port_for  # noqa: E402
from parity.spec import ParityError  # noqa: E402


def test_mlx_whisper_matches_on_random_weights(tmp_path, capsys):
    """whisper-test-tiny's encoder positions are the float32 sinusoids mlx-whisper recomputes,
    so its port passes every tap there: the adapter's tap recording is faithful."""
    assert main(["run", "whisper-test-tiny", "--port", "mlx-whisper", "--no-golden",
                 "--report-dir", str(tmp_path)]) == 0
    rep = json.loads((tmp_path / "whisper-test-tiny.json").read_text())
    assert rep["versions"]["mlx-whisper"] == "0.4.3"
    out = capsys.readouterr().out
    assert "MLX side: mlx-whisper" in out and "PASS: whisper-test-tiny" in out


@pytest.mark.needs_weights
def test_mlx_whisper_diverges_at_the_encoder_positions_on_real_weights(tmp_path, capsys):
    """tiny.en stores its encoder positions in float16; mlx-whisper recomputes them in float32,
    so its first diverging tap is encoder.embed (measured max |diff| 2.98e-4, 2026-12-06)."""
    assert main(["run", "whisper-tiny.en", "--port", "mlx-whisper", "--no-golden",
                 "--fail-fast", "--report-dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "first failing tap 'encoder.embed'" in out


def test_port_errors_name_the_fix():
    with pytest.raises(ParityError, match="unknown port 'nope'; adapters: mlx-whisper"):
        port_for("nope", registry.get("whisper-test-tiny"))
    with pytest.raises(ParityError, match="runs whisper-\\* specs, not 'dac-test-tiny'"):
        port_for("mlx-whisper", registry.get("dac-test-tiny"))
