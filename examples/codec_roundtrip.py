"""Codec round trip: audio -> discrete codes -> audio, and the SNR of what came back.

    .venv/bin/python examples/codec_roundtrip.py tests/fixtures/speech/espeak_en_fox.wav \
        --codec dac [--checkpoint FOLDER] [--seconds 2] [--out roundtrip.wav]

Codecs: dac, encodec (`mlx_impl.dac`, `mlx_impl.encodec`). --checkpoint is a transformers
`save_pretrained` folder of the codec (config.json + model.safetensors; e.g. descript/dac_44khz
or facebook/encodec_24khz, fetched by you: nothing is downloaded here). Without it the example
builds the seeded tiny checkpoint of dac-test-tiny / encodec-test-tiny offline (needs the
reference packages from `make setup`); random weights reconstruct nothing, so their SNR is
near or below 0 dB, while a trained checkpoint gives the codec's real figure.
"""

import argparse
import importlib
import sys
from pathlib import Path

import numpy as np

import mlx_impl  # noqa: F401  (first: it picks the fast CPU BLAS before MLX loads)
import mlx.core as mx
from mlx_impl.audio_io import load_audio
from mlx_impl.tts.cli import write_wav_atomically


def tiny_checkpoint(codec: str) -> Path:
    """The seeded test-tiny checkpoint the parity harness uses (built by the reference)."""
    config = importlib.import_module(f"parity.models.{codec}").TEST_TINY_CONFIG
    return importlib.import_module(f"reference.{codec}").random_checkpoint(config)


def snr_db(clean: np.ndarray, test: np.ndarray) -> float:
    n = min(clean.shape[-1], test.shape[-1])  # some decoders return a few samples fewer
    noise = test[..., :n] - clean[..., :n]
    return float(10 * np.log10(np.sum(clean[..., :n] ** 2) / max(np.sum(noise ** 2), 1e-20)))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("audio")
    p.add_argument("--codec", choices=("dac", "encodec"), default="dac")
    p.add_argument("--checkpoint", default=None, help="codec folder (default: seeded tiny)")
    p.add_argument("--seconds", type=float, default=2.0, help="audio from the start to code")
    p.add_argument("--out", default=None, help="write the decoded audio here (WAV)")
    a = p.parse_args(argv)

    folder = Path(a.checkpoint) if a.checkpoint else tiny_checkpoint(a.codec)
    model = importlib.import_module(f"mlx_impl.{a.codec}.load").load(folder, "float32")
    audio = load_audio(a.audio, sr=model.sample_rate)[: int(a.seconds * model.sample_rate)]
    codes = model.encode_audio(mx.array(audio[None]))  # (B, N) -> codes
    decoded = np.array(model.decode_codes(codes))[0]  # -> (N,)
    codes = np.array(codes)
    print(f"{a.codec} at {model.sample_rate} Hz: {audio.shape[0]} samples -> codes "
          f"{list(codes.shape)} ({np.unique(codes).size} distinct) -> {decoded.shape[0]} samples")
    print(f"round-trip SNR {snr_db(audio, decoded):.2f} dB")
    if a.out:
        write_wav_atomically(Path(a.out), decoded, model.sample_rate)
        print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
