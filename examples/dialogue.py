"""A two-speaker dialogue from a script with speaker tags, to one WAV (Dia).

    .venv/bin/python -m parity.tts_models build dia-test-tiny     # once: seeded tiny weights
    .venv/bin/python examples/dialogue.py --tts dia-test-tiny --out dialogue.wav \
        "[S1] Did the port pass? [S2] Every tap. (laughs) [S1] Then ship it."

Model ids: dia-test-tiny, dia-1.6b (`python -m parity.tts_models build ID`), or a Dia checkpoint
folder. Tags `[S1]` and `[S2]` pick the speaker of what follows; cues such as `(laughs)` are
text Dia was trained to voice. The script is checked (tags, length) before anything is
generated. Seeded random weights speak noise: the dialogue pipeline is real, the voices are not
until a trained checkpoint folder is passed.
"""

import argparse
import re
import sys
from dataclasses import replace
from pathlib import Path

import mlx_impl  # noqa: F401  (first: it picks the fast CPU BLAS before MLX loads)
from mlx_impl.tts.cli import write_wav_atomically
from mlx_impl.tts.models import load

DEFAULT_SCRIPT = "[S1] Did the port pass? [S2] Every tap. (laughs) [S1] Then ship it."


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("script", nargs="?", default=DEFAULT_SCRIPT)
    p.add_argument("--tts", default="dia-test-tiny")
    p.add_argument("--out", required=True, help="the WAV file to write")
    p.add_argument("--max-steps", type=int, default=None,
                   help="generated code rows at most (default: the model's, Dia 3071)")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)

    turns = re.findall(r"\[(S[12])\]\s*([^[]+)", a.script)
    if not turns or not a.script.lstrip().startswith("[S"):
        print("error: the script must start with a speaker tag, e.g. \"[S1] Hi. [S2] Hello.\"",
              file=sys.stderr)
        return 2
    tts = load(a.tts)
    options = tts.defaults if a.max_steps is None else replace(tts.defaults,
                                                               max_tokens=a.max_steps)
    tts.check(a.script, None, options)  # unknown tags, empty turns, too long: before generating
    for speaker, line in turns:
        print(f"{speaker}: {line.strip()}")
    speech = tts.synthesize(a.script, None, options=options, seed=a.seed)
    write_wav_atomically(Path(a.out), speech.audio, speech.sample_rate)
    print(f"wrote {a.out}: {len(turns)} turns, {speech.seconds:.2f} s at {speech.sample_rate} Hz "
          f"(stop: {speech.meta['stop']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
