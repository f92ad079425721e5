"""The configurations of the OuteTTS model ids: plain data (no mlx import), read by the port,
the reference builder and the parity specs.

- `outetts-1.0-1b`: Llama-3.2-1B's published dimensions (16 layers, width 2048, 32 query / 8
  key-value heads of 64, SwiGLU 8192, RMSNorm eps 1e-5, rope theta 500000 with llama3 scaling
  factor 32, low/high frequency factors 1/4, original context 8192, tied embeddings) with the
  vocabulary of the TEST token layout (`tokens.VOCAB_SIZE`; OuteTTS's own tokenizer.json and
  config.json come only from the hub, so its real vocab size and ids are not known here).
  Codec: DAC 24 kHz with 2 codebooks of 1024 and hop 320 (75 frames/s): outetts 0.4.4
  `dac/interface.py` loads ibm-research/DAC.speech.v1.0 `weights_24khz_1.5kbps_v1.0.pth`
  (1.5 kbps = 2 codebooks x 10 bits x 75 Hz; `version/v3/audio_processor.py` uses 75 tokens
  per second for durations); its widths are assumed to be descript dac_24khz's (64 / 1536).
- `outetts-1.0-1b-test-tiny`: the same token layout and rope, tiny width (64, 2 layers, 4 / 2
  heads of 16, SwiGLU 128, untied head), a tiny DAC at 24 kHz with the real 2 codebooks of 1024
  and the real strides (2, 4, 5, 8): the frame rate and audio rate are the real ones.
"""

from mlx_impl.outetts.tokens import VOCAB_SIZE

_ROPE_1B = {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 32.0,
            "low_freq_factor": 1.0, "high_freq_factor": 4.0,
            "original_max_position_embeddings": 8192}

# max_position_embeddings: Llama-3.2-1B config.json (outetts 0.4.4 models/config.py bounds one
# generation by max_length 8192)
OUTETTS_1B_LM = dict(
    vocab_size=VOCAB_SIZE, hidden_size=2048, intermediate_size=8192, num_hidden_layers=16,
    num_attention_heads=32, num_key_value_heads=8, head_dim=64, rms_norm_eps=1e-5,
    max_position_embeddings=131072, rope_parameters=_ROPE_1B, tie_word_embeddings=True,
    hidden_act="silu", attention_bias=False, mlp_bias=False)
TEST_TINY_LM = dict(
    vocab_size=VOCAB_SIZE, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
    num_attention_heads=4, num_key_value_heads=2, head_dim=16, rms_norm_eps=1e-5,
    max_position_embeddings=131072, rope_parameters=_ROPE_1B, tie_word_embeddings=False,
    hidden_act="silu", attention_bias=False, mlp_bias=False)

# transformers DacConfig fields (mlx_impl.dac.config.DacConfig)
DAC_24KHZ_2CB = dict(encoder_hidden_size=64, decoder_hidden_size=1536, codebook_size=1024,
                     codebook_dim=8, downsampling_ratios=[2, 4, 5, 8], n_codebooks=2,
                     sampling_rate=24000)
DAC_TINY_24KHZ_2CB = dict(encoder_hidden_size=4, decoder_hidden_size=32, codebook_size=1024,
                          codebook_dim=8, downsampling_ratios=[2, 4, 5, 8], n_codebooks=2,
                          sampling_rate=24000)

PRESETS: dict[str, dict] = {
    "outetts-1.0-1b": {"lm": OUTETTS_1B_LM, "dac": DAC_24KHZ_2CB},
    "outetts-1.0-1b-test-tiny": {"lm": TEST_TINY_LM, "dac": DAC_TINY_24KHZ_2CB},
}
