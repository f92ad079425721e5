"""Reference adapter for Vocos: the `vocos` 0.1.0 package (torchaudio's pure-Python parts).

Seeded random checkpoints (`random_checkpoint`): the config dict is written as `config.yaml`
(the charactr/vocos-* yaml layout) and `Vocos.from_hparams(config.yaml)` builds the model after
`torch.manual_seed(seed)`. Upstream initialises every norm to unit gain and zero shift, and every
`AdaLayerNorm` embedding row identically (scale ones, shift zeros): the bandwidth id would then
change nothing and a mixed-up id or a swapped scale/shift would go unseen. So after
`torch.manual_seed(seed + 1)` the LayerNorm weights / AdaLayerNorm scales are re-drawn as
N(1, 0.1) and the biases / shifts as N(0, 0.1). The state dict is saved with `torch.save` as
`pytorch_model.bin`, without the wrapped EnCodec model's parameters (as the hub files are).

EnCodec features: `EncodecFeatures` builds `EncodecModel.encodec_model_24khz(pretrained=True)`,
which downloads. Here it is built with `pretrained=False` (`_no_download`, a patch scoped to the
constructor call), and `codebook_weights` is set to the concatenation of the codebooks of a
given EnCodec checkpoint (`codebooks`: the `quantizer.layers.{q}.codebook.embed` of our seeded
encodec-24khz checkpoint), as upstream builds it from the pretrained EnCodec's codebooks. The
wrapped (random) EnCodec is not used by this adapter and not saved: codes come from the EnCodec
reference (`reference.encodec`), as the MLX side takes them from the EnCodec port.

`VocosReference` runs features -> backbone -> head and records the taps it is given (module paths
of `Vocos`, hooked through `hook_taps`), channels-last: `features` (B, L, C), `backbone.embed`, `backbone.norm`, `backbone.convnext.{i}`,
`backbone.final_layer_norm`, `head.out` (B, L, n_fft + 2), `audio` (B, samples).
"""

from __future__ import annotations

import contextlib
import hashlib
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
import yaml
from torch import nn

from reference.checkpoints import seeded_checkpoint
from reference.hooks import channels_last, hook_taps, numpy_of

INIT = "norms-n1-0.1-v1"  # in the cache key


def versions() -> dict:
    import vocos

    return {"torch": torch.__version__, "vocos": getattr(vocos, "__version__", "0.1.0")}


@contextlib.contextmanager
def _no_download():
    """Inside: EncodecFeatures builds its EnCodec with pretrained=False (no hub access)."""
    from encodec import EncodecModel

    orig24, orig48 = EncodecModel.encodec_model_24khz, EncodecModel.encodec_model_48khz
    EncodecModel.encodec_model_24khz = staticmethod(lambda pretrained=True, repository=None:
                                                    orig24(pretrained=False))
    EncodecModel.encodec_model_48khz = staticmethod(lambda pretrained=True, repository=None:
                                                    orig48(pretrained=False))
    try:
        yield
    finally:
        EncodecModel.encodec_model_24khz = staticmethod(orig24)
        EncodecModel.encodec_model_48khz = staticmethod(orig48)


def _from_hparams(config_path: Path):
    from vocos import Vocos

    with _no_download():
        return Vocos.from_hparams(str(config_path))


def _perturb_norms(model: nn.Module, seed: int) -> None:
    from vocos.modules import AdaLayerNorm

    torch.manual_seed(seed)
    with torch.no_grad():
        for m in model.backbone.modules():
            if isinstance(m, nn.LayerNorm):
                m.weight.normal_(1.0, 0.1)
                m.bias.normal_(0.0, 0.1)
            elif isinstance(m, AdaLayerNorm):
                m.scale.weight.normal_(1.0, 0.1)
                m.shift.weight.normal_(0.0, 0.1)


def build_random(config: Mapping, seed: int = 0, codebooks: list[np.ndarray] | None = None,
                 workdir: Path | None = None):
    """`Vocos.from_hparams` of `config` after `torch.manual_seed(seed)`, norms re-drawn."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(workdir or tmp) / "config.yaml"
        path.write_text(yaml.safe_dump(dict(config), sort_keys=False))
        torch.manual_seed(seed)
        model = _from_hparams(path)
    _perturb_norms(model, seed + 1)
    fe = model.feature_extractor
    if hasattr(fe, "codebook_weights"):
        if codebooks is None:
            raise ValueError("an EnCodec-feature Vocos needs `codebooks` (the EnCodec checkpoint's)")
        with torch.no_grad():
            stacked = torch.cat([torch.from_numpy(np.asarray(c)) for c in codebooks[: fe.num_q]])
            if stacked.shape != fe.codebook_weights.shape:
                raise ValueError(f"codebooks give {tuple(stacked.shape)}, the model needs "
                                 f"{tuple(fe.codebook_weights.shape)}")
            fe.codebook_weights.copy_(stacked)
    return model.eval()


def _hub_state(model) -> dict:
    return {k: v for k, v in model.state_dict().items()
            if not k.startswith("feature_extractor.encodec.")}


def random_checkpoint(config: Mapping, seed: int = 0, codebooks: list[np.ndarray] | None = None,
                      cache: Path | None = None) -> Path:
    """Folder with config.yaml + pytorch_model.bin of `build_random(...)` (cached, atomic)."""
    cb_digest = None if codebooks is None else hashlib.sha256(
        b"".join(np.ascontiguousarray(c, dtype=np.float32).tobytes() for c in codebooks)
    ).hexdigest()[:16]
    def write(folder: Path) -> None:
        model = build_random(config, seed, codebooks)
        (folder / "config.yaml").write_text(yaml.safe_dump(dict(config), sort_keys=False))
        torch.save(_hub_state(model), folder / "pytorch_model.bin")

    return seeded_checkpoint("vocos", config, seed,
                             {"init": INIT, "codebooks": cb_digest, **versions()},
                             ("pytorch_model.bin", "config.yaml"), write, cache)


def load_reference(model_dir: Path | str):
    """As `Vocos.from_pretrained`, from a local folder: from_hparams + strict load_state_dict
    (the wrapped EnCodec's parameters taken from the freshly built one, as upstream does)."""
    model_dir = Path(model_dir)
    model = _from_hparams(model_dir / "config.yaml")
    state = torch.load(model_dir / "pytorch_model.bin", map_location="cpu", weights_only=True)
    fe = model.feature_extractor
    if hasattr(fe, "encodec"):
        state.update({"feature_extractor.encodec." + k: v
                      for k, v in fe.encodec.state_dict().items()})
    model.load_state_dict(state, strict=True)
    return model.eval()


CHANNELS_FIRST = ("backbone.embed", "backbone.convnext.")  # modules returning (B, C, L)


class VocosReference:
    """Callable: {"audio": (N,)} or {"mel": (frames, n_mels)} (mel models), or
    {"codes": (K, B, L), "bandwidth_id": ()} (EnCodec models) -> taps."""

    def __init__(self, model_dir: Path | str):
        self.model = load_reference(model_dir)
        self.versions = versions()

    @torch.no_grad()
    def features(self, audio: np.ndarray) -> np.ndarray:
        """The model's own front end: audio (N,) -> (1, frames, C)."""
        x = torch.from_numpy(np.asarray(audio, dtype=np.float32)[None])
        return self.model.feature_extractor(x).float().transpose(1, 2).numpy().copy()

    @torch.no_grad()
    def __call__(self, inputs: Mapping[str, np.ndarray],
                 taps: Sequence[str] = ()) -> dict[str, np.ndarray]:
        """`taps`: names to hook, `Vocos` submodule paths (`features` and `audio` are always
        recorded); the backbone's convs output (B, C, L), made channels-last."""
        out: dict[str, np.ndarray] = {}
        hooked = {t: (t, channels_last if t.startswith(CHANNELS_FIRST) else numpy_of)
                  for t in taps if t not in ("features", "audio")}
        kwargs = {}
        if "codes" in inputs:
            codes = torch.from_numpy(np.asarray(inputs["codes"], dtype=np.int64))
            features = self.model.codes_to_features(codes)
            kwargs["bandwidth_id"] = torch.tensor(int(np.asarray(inputs["bandwidth_id"]).reshape(-1)[0]))
        elif "mel" in inputs:  # (frames, n_mels), e.g. computed once by the feature extractor
            features = torch.from_numpy(np.asarray(inputs["mel"], dtype=np.float32).T[None])
        else:
            audio = np.asarray(inputs["audio"], dtype=np.float32)
            features = self.model.feature_extractor(torch.from_numpy(audio[None]))
        out["features"] = channels_last(features)
        with hook_taps(self.model, hooked, out):
            y = self.model.decode(features, **kwargs)
        out["audio"] = y.float().numpy().copy()
        return out
