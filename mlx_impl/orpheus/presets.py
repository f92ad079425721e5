"""The configurations of the Orpheus model ids: plain data (no mlx import), read by the
port (`config.OrpheusConfig`), the reference builder, the parity spec and the TTS CLI.

Presets (`PRESETS[id]`: {"lm": LlamaConfig dict, "snac": snac.SNAC kwargs}):
- `orpheus-3b`: canopylabs/orpheus-3b-0.1-ft = Llama-3.2-3B's dimensions (28 layers, width 3072,
  24 query / 8 key-value heads of 128, SwiGLU 8192, RMSNorm eps 1e-5, rope theta 500000 with
  llama3 scaling factor 32, low/high frequency factors 1/4, original context 8192, 131072
  positions, tied embeddings as Llama-3.2-3B) with the vocabulary extended to 156940 (128256
  text + 10 special + 7 x 4096 audio tokens, 2 padding rows); SNAC: hubertsiuzdak/snac_24khz.
  The dimensions are Llama-3.2-3B's published config.json; Orpheus's own config.json could not
  be read offline (its vocab_size 156940 is mlx-audio's and the issue's number).
- `orpheus-test-tiny`: the same vocabulary layout and special ids (vocab 156940, rope llama3),
  tiny width (64, 2 layers, 4 / 2 heads of 16, SwiGLU 128, untied head so the converter's
  `lm_head` path runs), and a tiny SNAC with the real codebook size 4096, strides (4, 2, 1) and
  hop 512 at 24 kHz, so the frame layout and the audio rate are the real ones.
"""

_ROPE_3B = {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 32.0,
            "low_freq_factor": 1.0, "high_freq_factor": 4.0,
            "original_max_position_embeddings": 8192}

ORPHEUS_3B_LM = dict(
    vocab_size=156940, hidden_size=3072, intermediate_size=8192, num_hidden_layers=28,
    num_attention_heads=24, num_key_value_heads=8, head_dim=128, rms_norm_eps=1e-5,
    max_position_embeddings=131072, rope_parameters=_ROPE_3B, tie_word_embeddings=True,
    hidden_act="silu", attention_bias=False, mlp_bias=False)
TEST_TINY_LM = dict(
    vocab_size=156940, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
    num_attention_heads=4, num_key_value_heads=2, head_dim=16, rms_norm_eps=1e-5,
    max_position_embeddings=131072, rope_parameters=_ROPE_3B, tie_word_embeddings=False,
    hidden_act="silu", attention_bias=False, mlp_bias=False)

# hubertsiuzdak/snac_24khz config.json
SNAC_24KHZ = dict(
    sampling_rate=24000, encoder_dim=48, encoder_rates=[2, 4, 8, 8], decoder_dim=1024,
    decoder_rates=[8, 8, 4, 2], attn_window_size=None, codebook_size=4096, codebook_dim=8,
    vq_strides=[4, 2, 1], noise=True, depthwise=True)
SNAC_TINY_24KHZ = dict(
    sampling_rate=24000, encoder_dim=8, encoder_rates=[2, 4, 8, 8], decoder_dim=64,
    decoder_rates=[8, 8, 4, 2], attn_window_size=None, codebook_size=4096, codebook_dim=8,
    vq_strides=[4, 2, 1], noise=True, depthwise=True)

PRESETS: dict[str, dict] = {
    "orpheus-3b": {"lm": ORPHEUS_3B_LM, "snac": SNAC_24KHZ},
    "orpheus-test-tiny": {"lm": TEST_TINY_LM, "snac": SNAC_TINY_24KHZ},
}
