"""The models the harness knows, listed explicitly. Importing this imports no torch or mlx."""

from __future__ import annotations

from parity.models import encodec, mimi, parakeet, vocos, wav2vec2, whisper
from parity.models import s3tokenizer
from parity.models import voxtral
from parity.models import dac, snac
from parity.models import bigvgan
from parity.models import orpheus, outetts
from parity.models import dia
from parity.models import csm
from parity.models import bark
from parity.models import kokoro
from parity.models import spark
from parity.spec import ModelSpec

SPECS: tuple[ModelSpec, ...] = (
    whisper.TEST_TINY,
    whisper.TINY_EN,
    whisper.BASE,
    whisper.SMALL,
    encodec.TEST_TINY, encodec.ENCODEC_24KHZ,
    encodec.CHUNKED_TEST_TINY, encodec.ENCODEC_48KHZ,
    dac.TEST_TINY, dac.DAC_44KHZ, dac.DAC_24KHZ, dac.DAC_16KHZ,
    snac.TEST_TINY, snac.SNAC_24KHZ,
    mimi.TEST_TINY, mimi.MIMI,
    vocos.MEL_TEST_TINY, vocos.ENCODEC_TEST_TINY, vocos.VOCOS_MEL_24KHZ, vocos.VOCOS_ENCODEC_24KHZ,
    wav2vec2.TEST_TINY, wav2vec2.TEST_TINY_STABLE, wav2vec2.BASE_960H,
    parakeet.CTC_TEST_TINY, parakeet.TDT_TEST_TINY, parakeet.RNNT_TEST_TINY,
    parakeet.CTC_0_6B_SPEC, parakeet.TDT_0_6B_SPEC, parakeet.RNNT_0_6B_SPEC,
    s3tokenizer.V2, s3tokenizer.V1, s3tokenizer.V2_TEST_TINY, s3tokenizer.V1_TEST_TINY,
    voxtral.TEST_TINY, voxtral.MINI_3B,
    bigvgan.TEST_TINY, bigvgan.BIGVGAN_V2_24KHZ,
    orpheus.TEST_TINY, orpheus.ORPHEUS_3B,
    outetts.TEST_TINY, outetts.OUTETTS_1B,
    dia.TEST_TINY, dia.DIA_1_6B,
    csm.CSM_TEST_TINY, csm.CSM_1B, csm.MARVIS_TEST_TINY, csm.MARVIS_250M,
    kokoro.TEST_TINY, kokoro.KOKORO_82M,
    bark.TEST_TINY, bark.BARK_SMALL,
    spark.TEST_TINY,  # spark.SPARK_05B: defined, not run yet (parity/models/spark.py)
)

REGISTRY: dict[str, ModelSpec] = {s.name: s for s in SPECS}


def get(name: str) -> ModelSpec:
    if name not in REGISTRY:
        raise KeyError(f"unknown model {name!r}; `python -m parity list` shows: "
                       f"{', '.join(REGISTRY)}")
    return REGISTRY[name]
