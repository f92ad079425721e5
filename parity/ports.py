"""Third-party MLX ports on a spec's MLX side: `python -m parity run MODEL --port NAME`.

A port adapter builds the other package's model from the spec's weights, the way that package
loads its own checkpoints, and records our tap names from its modules without editing them: a
module the taps need is replaced, on the built instance, by a recorder that calls it and keeps
its output. The reference side, inputs, tap list and tolerance tables stay the spec's, so the
report reads exactly as for our port. Adapters:

- `mlx-whisper` (0.4.3, ml-explore's mlx-examples Whisper on PyPI): the whisper specs. Its
  checkpoint (config.json + weights.safetensors, the layout of the mlx-community repositories
  its `load_model` reads; `weights.mlx_whisper`, shared with the benchmarks) is written from the
  spec's canonical weights: `mlp.0` / `mlp.2` renamed `mlp1` / `mlp2`, conv kernels transposed
  to channels-last; `encoder.positional_embedding` has no parameter there (mlx-whisper
  recomputes the sinusoids in `AudioEncoder._positional_embedding`), so the stored table is not
  loaded.
"""

from __future__ import annotations

import importlib.metadata
import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from parity.spec import ModelSpec, ParityError


@dataclass(frozen=True)
class Port:
    name: str  # --port NAME
    package: str  # the distribution whose version the report records
    families: tuple[str, ...]  # spec name prefixes it can run
    build: Callable[[ModelSpec, str], object]  # (spec, dtype) -> Side


class _Record:
    """Calls `fn` and stores a copy of `pick(output)` as taps[name] (a plain object, not an
    nn.Module, so the wrapped module keeps its parameters and the tree is not changed).

    Copies, because MLX's `x += y` updates the array object in place: mlx-whisper's blocks do
    `x += y` on the array they were given, which would rewrite a recorded block input or the
    previous block's recorded output."""

    def __init__(self, fn, taps: dict, name: str, pick=lambda out: out, inputs: str | None = None):
        self.fn, self.taps, self.name, self.pick, self.inputs = fn, taps, name, pick, inputs

    def __call__(self, x, *args, **kwargs):
        import mlx.core as mx

        if self.inputs:
            self.taps[self.inputs] = mx.array(x)
        out = self.fn(x, *args, **kwargs)
        if self.name:
            self.taps[self.name] = mx.array(self.pick(out))
        return out


def _first(out):
    return out[0]


# ------------------------------------------------------------------------------------------
# mlx-whisper


def mlx_whisper_checkpoint(dims: dict, state: dict[str, np.ndarray], folder: Path) -> Path:
    """Write `state` (openai-whisper layout) as an mlx-whisper checkpoint folder."""
    from safetensors.numpy import save_file

    from weights.mlx_whisper import mlx_whisper_layout

    folder.mkdir(parents=True, exist_ok=True)
    save_file(mlx_whisper_layout(state, "float32"), str(folder / "weights.safetensors"))
    (folder / "config.json").write_text(json.dumps({**dims, "model_type": "whisper"}))
    return folder


class MlxWhisperSide:
    def __init__(self, spec: ModelSpec, dtype: str):
        import mlx_impl  # noqa: F401  (first: its BLAS preload works only before mlx loads)

        import mlx.core as mx
        from mlx_whisper.audio import log_mel_spectrogram
        from mlx_whisper.load_models import load_model

        from mlx_impl.loading import as_dtype
        from parity.models import whisper as W

        source = spec.config["weights_source"]
        dims, state = W._weights(source if source != "random" else spec.config["dims"])
        self._tmp = tempfile.TemporaryDirectory(prefix="mlx-whisper-port-")
        folder = mlx_whisper_checkpoint(dims, state, Path(self._tmp.name))
        self.model = load_model(str(folder), dtype=as_dtype(dtype))
        self._mx, self._mel = mx, log_mel_spectrogram
        self.config = dims
        self.versions = {"mlx": mx.__version__,
                         "mlx-whisper": importlib.metadata.version("mlx-whisper")}
        self.taps: dict = {}
        self._hook()

    def _hook(self) -> None:
        taps, enc, dec = self.taps, self.model.encoder, self.model.decoder
        enc.conv1 = _Record(enc.conv1, taps, "encoder.conv1")
        enc.conv2 = _Record(enc.conv2, taps, "encoder.conv2")
        enc.ln_post = _Record(enc.ln_post, taps, "encoder.ln_post")
        dec.ln = _Record(dec.ln, taps, "decoder.ln")
        for side, blocks, first in (("encoder", enc.blocks, "encoder.embed"),
                                    ("decoder", dec.blocks, "decoder.embed")):
            for i, b in enumerate(blocks):
                p = f"{side}.blocks.{i}"
                b.attn = _Record(b.attn, taps, f"{p}.attn", _first)
                if b.cross_attn is not None:
                    b.cross_attn = _Record(b.cross_attn, taps, f"{p}.cross_attn", _first)
                b.mlp2 = _Record(b.mlp2, taps, f"{p}.mlp")
                blocks[i] = _Record(b, taps, p, _first, inputs=first if i == 0 else None)

    def __call__(self, inputs):
        from weights.whisper_audio import HOP_LENGTH, pad_or_trim

        mx = self._mx
        self.taps.clear()
        n_samples = 2 * self.config["n_audio_ctx"] * HOP_LENGTH
        audio = pad_or_trim(np.asarray(inputs["audio"], dtype=np.float32), n_samples)
        mel = self._mel(audio, n_mels=self.config["n_mels"])  # (n_frames, n_mels)
        self.taps["mel"] = mel
        tokens = mx.array(np.asarray(inputs["tokens"], dtype=np.int32))
        logits = self.model(mel[None].astype(self.model.encoder.conv1.fn.weight.dtype), tokens)
        self.taps["logits"] = logits
        mx.eval(list(self.taps.values()))
        out = {k: np.array(v.astype(mx.float32)) for k, v in self.taps.items()}
        out["logits.argmax"] = np.argmax(out["logits"], axis=-1).astype(np.int64)
        return out


PORTS: dict[str, Port] = {p.name: p for p in (
    Port("mlx-whisper", "mlx-whisper", ("whisper-",), MlxWhisperSide),
)}


def port_for(name: str, spec: ModelSpec) -> Port:
    if name not in PORTS:
        raise ParityError(f"unknown port {name!r}; adapters: {', '.join(PORTS)}")
    port = PORTS[name]
    if not spec.name.startswith(port.families):
        raise ParityError(f"the {name} adapter runs {', '.join(port.families)}* specs, not "
                          f"{spec.name!r}")
    try:
        importlib.metadata.version(port.package)
    except importlib.metadata.PackageNotFoundError:
        raise ParityError(f"--port {name} needs the {port.package} package; install it "
                          f"(`pip install {port.package}`, in pyproject's bench extra)") from None
    return port


def mlx_whisper_port(manifest: dict, dtype: str = "float32"):
    """mlx-whisper as `tools/check_export.py --port parity.ports:mlx_whisper_port` wants it:
    the same adapter, on an export of a whisper spec. `.side` is the `MlxWhisperSide`."""
    from parity import registry

    spec = registry.get(manifest["model"]["id"])
    side = port_for("mlx-whisper", spec).build(spec, dtype)

    def port(inputs):
        return side(inputs)

    port.side = side
    return port
