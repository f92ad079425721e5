"""The interfaces the codecs and vocoders in mlx_impl implement, for the TTS models on top.

Every text-to-speech model of the roadmap is a language model on a codec (Dia on DAC, CSM and
Marvis on Mimi, Orpheus on SNAC, Bark on Encodec) or a model that ends in a vocoder (Vocos,
BigVGAN, HiFT). A TTS package composes them through these protocols and the codec package's
`load(path, dtype)`, never through `parity/`.

Layouts: audio is (B, N) float at `sample_rate`, mono; codes are int32, (B, n_codebooks,
frames) for single-rate codecs. A multi-scale codec (SNAC) returns a list of (B, frames_k)
arrays, coarsest first, and says so in its docstring.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import mlx.core as mx


@runtime_checkable
class Codec(Protocol):
    sample_rate: int  # Hz of the audio in and out
    frame_rate: float  # code frames per second (the finest level of a multi-scale codec)
    n_codebooks: int  # codebooks per frame at full bitrate
    codebook_size: int  # entries per codebook

    def encode_audio(self, audio: mx.array) -> Any:
        """(B, N) audio at `sample_rate` -> codes (see the module docstring for the layout)."""
        ...

    def decode_codes(self, codes: Any) -> mx.array:
        """Codes as `encode_audio` returns them -> (B, N) audio at `sample_rate`."""
        ...


@runtime_checkable
class Vocoder(Protocol):
    sample_rate: int  # Hz of the audio out
    hop_length: int  # audio samples per feature frame

    def vocode(self, features: mx.array) -> mx.array:
        """(B, frames, channels) features (a mel spectrogram, or codec latents) -> (B, N)."""
        ...
