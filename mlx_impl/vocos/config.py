"""Vocos configuration, read from the `config.yaml` of a Vocos checkpoint (vocos 0.1.0 format).

The yaml names three classes with their `init_args` (`Vocos.from_hparams`): a feature extractor
(`vocos.feature_extractors.MelSpectrogramFeatures` or `EncodecFeatures`), the backbone
(`vocos.models.VocosBackbone`) and the head (`vocos.heads.ISTFTHead`). Field names are the
upstream init-argument names; upstream's own defaults apply where the yaml omits an argument
(they are the documented constructor defaults), and any other class is an error. Each section's
`init_args` is read by `StrictConfig.from_dict` (an unknown argument is an error).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from mlx_impl.config_base import StrictConfig

MEL_CLASS = "vocos.feature_extractors.MelSpectrogramFeatures"
ENCODEC_CLASS = "vocos.feature_extractors.EncodecFeatures"
BACKBONE_CLASS = "vocos.models.VocosBackbone"
HEAD_CLASS = "vocos.heads.ISTFTHead"

# EnCodec models the `EncodecFeatures` extractor can wrap (encodec 0.1.1): codebook size and
# frame rate (Hz) give the number of codebooks per bandwidth: n_q = 1000 bw / (rate * 10 bits).
ENCODEC_MODELS = {"encodec_24khz": dict(bins=1024, frame_rate=75, sample_rate=24000),
                  "encodec_48khz": dict(bins=1024, frame_rate=150, sample_rate=48000)}


@dataclass(frozen=True)
class MelFeaturesConfig(StrictConfig):
    WHAT: ClassVar[str] = f"{MEL_CLASS} init_args"
    IGNORED: ClassVar[frozenset[str]] = frozenset()

    sample_rate: int = 24000
    n_fft: int = 1024
    hop_length: int = 256
    n_mels: int = 100
    padding: str = "center"  # "center" (torch.stft centring) or "same"


@dataclass(frozen=True)
class EncodecFeaturesConfig(StrictConfig):
    WHAT: ClassVar[str] = f"{ENCODEC_CLASS} init_args"
    IGNORED: ClassVar[frozenset[str]] = frozenset()

    encodec_model: str = "encodec_24khz"
    bandwidths: tuple[float, ...] = (1.5, 3.0, 6.0, 12.0)  # kbps; bandwidth_id indexes this
    train_codebooks: bool = False

    @classmethod
    def prepare(cls, d: dict) -> dict:
        if "bandwidths" in d:
            d["bandwidths"] = [float(b) for b in d["bandwidths"]]
        return d

    def validate(self) -> None:
        if self.encodec_model not in ENCODEC_MODELS:
            raise ValueError(f"unsupported encodec_model {self.encodec_model!r}; "
                             f"supported: {sorted(ENCODEC_MODELS)}")

    @property
    def bins(self) -> int:
        return ENCODEC_MODELS[self.encodec_model]["bins"]

    @property
    def sample_rate(self) -> int:
        return ENCODEC_MODELS[self.encodec_model]["sample_rate"]

    def n_q(self, bandwidth: float) -> int:
        return int(1000 * bandwidth // (ENCODEC_MODELS[self.encodec_model]["frame_rate"] * 10))

    @property
    def num_q(self) -> int:  # codebooks stored in `codebook_weights`
        return self.n_q(max(self.bandwidths))


@dataclass(frozen=True)
class BackboneConfig(StrictConfig):
    WHAT: ClassVar[str] = f"{BACKBONE_CLASS} init_args"
    IGNORED: ClassVar[frozenset[str]] = frozenset()

    input_channels: int
    dim: int
    intermediate_dim: int
    num_layers: int
    layer_scale_init_value: float | None = None  # None: 1 / num_layers (upstream)
    adanorm_num_embeddings: int | None = None  # None: plain LayerNorm


@dataclass(frozen=True)
class HeadConfig(StrictConfig):
    WHAT: ClassVar[str] = f"{HEAD_CLASS} init_args"
    IGNORED: ClassVar[frozenset[str]] = frozenset()

    dim: int
    n_fft: int
    hop_length: int
    padding: str = "same"


@dataclass(frozen=True)
class VocosConfig(StrictConfig):
    features: MelFeaturesConfig | EncodecFeaturesConfig
    backbone: BackboneConfig
    head: HeadConfig

    @property
    def is_mel(self) -> bool:
        return isinstance(self.features, MelFeaturesConfig)

    @property
    def sample_rate(self) -> int:
        return self.features.sample_rate

    WHAT: ClassVar[str] = "Vocos"

    @classmethod
    def prepare(cls, d: dict) -> dict:
        """The parsed config.yaml (`{"feature_extractor": {"class_path", "init_args"}, ...}`)
        -> the three sections, each read strictly after its class check."""
        missing = [k for k in ("feature_extractor", "backbone", "head") if k not in d]
        if missing:
            raise ValueError(f"Vocos config is missing {missing}; expected a vocos config.yaml "
                             "with feature_extractor, backbone and head sections")
        fe = d["feature_extractor"]
        kind = {MEL_CLASS: MelFeaturesConfig, ENCODEC_CLASS: EncodecFeaturesConfig}.get(
            fe.get("class_path"))
        if kind is None:
            raise ValueError(f"unsupported feature extractor {fe.get('class_path')!r}; supported: "
                             f"{MEL_CLASS}, {ENCODEC_CLASS}")
        return dict(features=_build(kind, fe),
                    backbone=_build(BackboneConfig, d["backbone"], BACKBONE_CLASS),
                    head=_build(HeadConfig, d["head"], HEAD_CLASS))

    def validate(self) -> None:
        b, h, f = self.backbone, self.head, self.features
        for padding in (h.padding,) + ((f.padding,) if self.is_mel else ()):
            if padding not in ("center", "same"):
                raise ValueError(f"padding must be 'center' or 'same', got {padding!r}")
        if h.dim != b.dim:
            raise ValueError(f"head dim {h.dim} != backbone dim {b.dim}")
        if self.is_mel and b.input_channels != f.n_mels:
            raise ValueError(f"backbone input_channels {b.input_channels} != n_mels {f.n_mels}")
        if not self.is_mel and b.adanorm_num_embeddings not in (None, len(f.bandwidths)):
            raise ValueError(f"adanorm_num_embeddings {b.adanorm_num_embeddings} != number of "
                             f"bandwidths {len(f.bandwidths)}")

    @property
    def layer_scale(self) -> float:
        return self.backbone.layer_scale_init_value or 1 / self.backbone.num_layers


def _build(kind, section: dict, class_path: str | None = None):
    """A section's `init_args` read strictly (`StrictConfig.from_dict`) after its class check."""
    if class_path is not None and section.get("class_path") != class_path:
        raise ValueError(f"unsupported class {section.get('class_path')!r}; expected {class_path}")
    return kind.from_dict(section.get("init_args", {}))
