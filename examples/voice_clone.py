"""Voice cloning: a reference clip -> our Whisper's transcript -> a cloning TTS model -> WAV.

    .venv/bin/python -m parity.tts_models build csm-test-tiny     # once: seeded tiny weights
    .venv/bin/python examples/voice_clone.py tests/fixtures/speech/espeak_en_fox.wav \
        "Hello from a cloned voice." --tts csm-test-tiny --whisper whisper-tiny.en --out clone.wav

Model ids: the TTS models that clone (csm-test-tiny, marvis-test-tiny, csm-1b, marvis-250m,
dia-test-tiny, dia-1.6b, outetts-1.0-1b-test-tiny, outetts-1.0-1b; `python -m
parity.tts_models build ID` builds their seeded weights offline) and whisper-tiny.en or
whisper-base for the transcript. The clip is cut to the longest reference the model takes
(csm-test-tiny's tiny Mimi: 1.02 s; csm-1b: 30 s). Seeded random TTS weights speak noise: the
pipeline is real, the voice is not until a trained checkpoint folder is passed as --tts.
"""

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import mlx_impl  # noqa: F401  (first: it picks the fast CPU BLAS before MLX loads)
from mlx_impl.audio_io import load_audio_native
from mlx_impl.tts.cli import write_wav_atomically
from mlx_impl.tts.models import load
from mlx_impl.tts.reference_audio import load_reference
from mlx_impl.whisper.transcribe import WhisperSTT


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("ref_audio", help="a clip of the voice to clone")
    p.add_argument("text", help="what the cloned voice says")
    p.add_argument("--tts", default="csm-test-tiny")
    p.add_argument("--whisper", default="whisper-tiny.en")
    p.add_argument("--out", required=True, help="the WAV file to write")
    p.add_argument("--max-frames", type=int, default=None,
                   help="generated codec frames at most (default: the model's, CSM 125)")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)

    tts = load(a.tts)
    needs = tts.reference
    audio, rate = load_audio_native(a.ref_audio)
    audio = audio[: int(needs.max_seconds * rate)]  # the longest clip this model takes
    stt = WhisperSTT.load(a.whisper)
    clip = load_reference(audio, None, sample_rate=rate, stt=stt, **needs.kwargs())
    print(f"reference: {clip.seconds:.2f} s, {a.whisper} heard {clip.text!r}")
    voice = tts.clone(clip)
    options = tts.defaults if a.max_frames is None else replace(tts.defaults,
                                                                max_tokens=a.max_frames)
    speech = tts.synthesize(a.text, voice, options=options, seed=a.seed)
    write_wav_atomically(Path(a.out), speech.audio, speech.sample_rate)
    print(f"wrote {a.out}: {speech.seconds:.2f} s at {speech.sample_rate} Hz "
          f"(stop: {speech.meta['stop']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
