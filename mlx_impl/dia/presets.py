"""The configurations of the Dia model ids: plain data (no mlx import), read by the port
(`config.DiaConfig`), the reference builder, the parity specs and the TTS CLI.

Presets (`PRESETS[id]`: {"lm": transformers `DiaConfig` kwargs, "dac": `DacConfig` kwargs}):
- `dia-1.6b`: nari-labs/Dia-1.6B's published dimensions, which are transformers 5.24.0's
  `DiaConfig()` defaults (its docstring names that checkpoint): encoder 12 layers, width 1024,
  16 heads of 128 (no GQA), SwiGLU 4096, byte vocabulary 256, 1024 positions; decoder 18 layers,
  width 2048, 16 query / 4 key-value heads of 128, SwiGLU 8192, cross-attention 16 / 16 heads of
  128 over the encoder's 1024 channels, 9 channels of 1028 ids (1024 codes + eos 1024, pad 1025,
  bos 1026, one unused), 3072 positions; RoPE theta 10000 on both; RMSNorm eps 1e-5; delay
  pattern [0, 8, 9, 10, 11, 12, 13, 14, 15]. Codec: descript/dac_44khz (9 codebooks of 1024,
  strides 2, 4, 8, 8: 86 frames/s at 44.1 kHz).
- `dia-test-tiny`: the same structure, special ids, 9 channels, vocabulary and delay pattern,
  tiny widths (encoder 64 / 2 layers / 4 heads of 16; decoder 64 / 2 layers / 4 query and 2
  key-value heads of 16 (GQA as the real 16/4), cross-attention 4 / 4 heads), and a tiny DAC at
  44.1 kHz with the real 9 codebooks of 1024 and strides (2, 4, 8, 8): the frame and audio rates
  are the real ones.
"""

DELAY_PATTERN = [0, 8, 9, 10, 11, 12, 13, 14, 15]
_ROPE = {"rope_type": "default", "rope_theta": 10000.0}

DIA_1_6B_LM = dict(
    encoder_config=dict(
        hidden_size=1024, intermediate_size=4096, num_hidden_layers=12, num_attention_heads=16,
        num_key_value_heads=16, head_dim=128, norm_eps=1e-5, vocab_size=256,
        max_position_embeddings=1024, hidden_act="silu", rope_parameters=_ROPE),
    decoder_config=dict(
        hidden_size=2048, intermediate_size=8192, num_hidden_layers=18, num_attention_heads=16,
        num_key_value_heads=4, head_dim=128, cross_num_attention_heads=16, cross_head_dim=128,
        cross_num_key_value_heads=16, cross_hidden_size=1024, norm_eps=1e-5, vocab_size=1028,
        num_channels=9, max_position_embeddings=3072, hidden_act="silu", rope_parameters=_ROPE,
        eos_token_id=1024, pad_token_id=1025, bos_token_id=1026),
    delay_pattern=DELAY_PATTERN, norm_eps=1e-5)

TEST_TINY_LM = dict(
    encoder_config=dict(
        hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=4, head_dim=16, norm_eps=1e-5, vocab_size=256,
        max_position_embeddings=1024, hidden_act="silu", rope_parameters=_ROPE),
    decoder_config=dict(
        hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, head_dim=16, cross_num_attention_heads=4, cross_head_dim=16,
        cross_num_key_value_heads=4, cross_hidden_size=64, norm_eps=1e-5, vocab_size=1028,
        num_channels=9, max_position_embeddings=3072, hidden_act="silu", rope_parameters=_ROPE,
        eos_token_id=1024, pad_token_id=1025, bos_token_id=1026),
    delay_pattern=DELAY_PATTERN, norm_eps=1e-5)

# transformers DacConfig fields (mlx_impl.dac.config.DacConfig); descript/dac_44khz
DAC_44KHZ = dict(encoder_hidden_size=64, decoder_hidden_size=1536, codebook_size=1024,
                 codebook_dim=8, downsampling_ratios=[2, 4, 8, 8], n_codebooks=9,
                 sampling_rate=44100)
DAC_TINY_44KHZ = dict(encoder_hidden_size=4, decoder_hidden_size=32, codebook_size=1024,
                      codebook_dim=8, downsampling_ratios=[2, 4, 8, 8], n_codebooks=9,
                      sampling_rate=44100)

PRESETS: dict[str, dict] = {
    "dia-1.6b": {"lm": DIA_1_6B_LM, "dac": DAC_44KHZ},
    "dia-test-tiny": {"lm": TEST_TINY_LM, "dac": DAC_TINY_44KHZ},
}
