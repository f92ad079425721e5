"""The configurations of the CSM and Marvis model ids: plain data (no mlx import), read by the
port (`config.CsmConfig`), the reference builder, the parity specs and the TTS CLI.

Each preset is a transformers 5.24 `CsmConfig` dict (`depth_decoder_config` and `codec_config`
nested, as `CsmForConditionalGeneration.save_pretrained` writes config.json) plus the token
layout of its offline test tokenizer (`tokens`):

- `csm-1b` (sesame/csm-1b): `CsmConfig`'s defaults, whose docstring names sesame/csm-1b and
  which equal the original Sesame code's flavors `llama3_2_1B` (backbone: 16 layers, width
  2048, 32 query / 8 key-value heads of 64, SwiGLU 8192) and `llama3_2_100M` (depth decoder:
  4 layers, width 1024, 8 / 2 heads of 128, SwiGLU 8192), rope theta 500000 with llama3
  scaling (factor 32, low/high frequency factors 1/4, original context 8192: torchtune
  `llama3_2(scale_factor=32)` as both flavors use it), 32 codebooks of 2051 ids (2048 Mimi
  codes + 3 specials; pad 2050, end-of-audio frame = all codes 0), text vocabulary 128256
  (Llama-3), 2048 backbone positions, 33 depth positions; Mimi: kyutai/mimi (32 codebooks).
- `marvis-250m` (Marvis-AI/marvis-tts-250m-v0.1): the same architecture at Marvis's published
  dimensions, read from Marvis-Labs/marvis-tts (commit 47fb92b) `configs/train_cuda.json`
  (`backbone_flavor` "llama-250M", `decoder_flavor` "llama-60M", tokenizer "smollm2", 32
  codebooks), `marvis_tts/flavors.py` (llama-250M: 6 layers, width 1536, 12 / 3 heads (head
  128), SwiGLU 8192; llama-60M: 4 layers, width 1024, 8 / 2 heads (head 128), SwiGLU 4096; both
  rope 500000, llama3 scale 32, 2048 positions, eps 1e-5), `train.py` (audio vocabulary 2051,
  text vocabulary = the SmolLM2-135M tokenizer's 49152) and `marvis_tts/utils.py` (SmolLM2
  tokenizer with bos `<|im_start|>` 1, eos `<|im_end|>` 2). Marvis's own transformers
  config.json could not be read offline: its audio placeholder ids are this port's TEST
  layout (49150 / 49151, the top of the SmolLM2 vocabulary).
- `csm-test-tiny` / `marvis-test-tiny`: each family's token layout and rope, tiny widths, and
  a tiny Mimi (parity `mimi-test-tiny`'s layers: 24 kHz, hop 8, frame 16 samples) with 8
  codebooks of 64 codes, so the CSM vocabulary is 64 + 3 = 67 with pad 66 (the real layout
  2048 + 3 scaled down) and the depth decoder predicts codebooks 1..7.
"""

_ROPE = {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 32.0,
         "low_freq_factor": 1.0, "high_freq_factor": 4.0,
         "original_max_position_embeddings": 8192}

# kyutai/mimi (the parity spec `mimi`'s configuration, transformers MimiConfig fields)
MIMI = dict(
    model_type="mimi", sampling_rate=24000, audio_channels=1, hidden_size=512, num_filters=64,
    num_residual_layers=1, upsampling_ratios=[8, 6, 5, 4], kernel_size=7, last_kernel_size=3,
    residual_kernel_size=3, dilation_growth_rate=2, use_causal_conv=True, pad_mode="constant",
    compress=2, trim_right_ratio=1.0, codebook_size=2048, codebook_dim=256, num_quantizers=32,
    use_conv_shortcut=False, vector_quantization_hidden_dimension=256,
    num_semantic_quantizers=1, upsample_groups=512, num_hidden_layers=8, intermediate_size=2048,
    num_attention_heads=8, num_key_value_heads=8, head_dim=64, hidden_act="gelu",
    max_position_embeddings=8000, norm_eps=1e-5,
    rope_parameters={"rope_theta": 10000.0, "rope_type": "default"}, sliding_window=250,
    layer_scale_initial_scale=0.01, attention_bias=False)
MIMI_TINY = dict(
    MIMI, hidden_size=16, num_filters=4, upsampling_ratios=[4, 2], codebook_size=64,
    codebook_dim=8, num_quantizers=8, vector_quantization_hidden_dimension=8,
    upsample_groups=16, num_hidden_layers=2, intermediate_size=32, num_attention_heads=2,
    num_key_value_heads=2, head_dim=8, sliding_window=6)


def _csm(*, text_vocab_size, hidden_size, intermediate_size, num_hidden_layers,
         num_attention_heads, num_key_value_heads, head_dim, depth, codec, bos_token_id,
         audio_token_id, audio_eos_token_id, pad_token_id):
    n_cb, vocab = codec["num_quantizers"], codec["codebook_size"] + 3
    return dict(
        num_codebooks=n_cb, vocab_size=vocab, text_vocab_size=text_vocab_size,
        hidden_size=hidden_size, intermediate_size=intermediate_size,
        num_hidden_layers=num_hidden_layers, num_attention_heads=num_attention_heads,
        num_key_value_heads=num_key_value_heads, head_dim=head_dim, hidden_act="silu",
        max_position_embeddings=2048, rms_norm_eps=1e-5, rope_parameters=dict(_ROPE),
        attention_bias=False, mlp_bias=False, tie_codebooks_embeddings=True,
        pad_token_id=pad_token_id, codebook_pad_token_id=vocab - 1, codebook_eos_token_id=0,
        bos_token_id=bos_token_id, audio_token_id=audio_token_id,
        audio_eos_token_id=audio_eos_token_id,
        depth_decoder_config=dict(
            num_codebooks=n_cb, backbone_hidden_size=hidden_size, vocab_size=vocab,
            hidden_act="silu", max_position_embeddings=n_cb + 1, rms_norm_eps=1e-5,
            rope_parameters=dict(_ROPE), attention_bias=False, mlp_bias=False, **depth),
        codec_config=dict(codec))


# token layouts of the test tokenizers (tokens.py): bos/eos around "[speaker]text" and the
# audio placeholder ids of the prompt
LLAMA3_TOKENS = dict(bos=128000, eos=128001, audio=128002, audio_eos=128003)
SMOLLM2_TOKENS = dict(bos=1, eos=2, audio=49150, audio_eos=49151)

CSM_1B = _csm(
    text_vocab_size=128256, hidden_size=2048, intermediate_size=8192, num_hidden_layers=16,
    num_attention_heads=32, num_key_value_heads=8, head_dim=64, codec=MIMI,
    depth=dict(hidden_size=1024, intermediate_size=8192, num_hidden_layers=4,
               num_attention_heads=8, num_key_value_heads=2, head_dim=128),
    bos_token_id=128000, audio_token_id=128002, audio_eos_token_id=128003, pad_token_id=128002)
CSM_TEST_TINY = _csm(
    text_vocab_size=128256, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
    num_attention_heads=4, num_key_value_heads=2, head_dim=16, codec=MIMI_TINY,
    depth=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
               num_attention_heads=4, num_key_value_heads=2, head_dim=8),
    bos_token_id=128000, audio_token_id=128002, audio_eos_token_id=128003, pad_token_id=128002)
MARVIS_250M = _csm(
    text_vocab_size=49152, hidden_size=1536, intermediate_size=8192, num_hidden_layers=6,
    num_attention_heads=12, num_key_value_heads=3, head_dim=128, codec=MIMI,
    depth=dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=4,
               num_attention_heads=8, num_key_value_heads=2, head_dim=128),
    bos_token_id=1, audio_token_id=49150, audio_eos_token_id=49151, pad_token_id=49150)
MARVIS_TEST_TINY = _csm(
    text_vocab_size=49152, hidden_size=48, intermediate_size=96, num_hidden_layers=3,
    num_attention_heads=4, num_key_value_heads=1, head_dim=12, codec=MIMI_TINY,
    depth=dict(hidden_size=32, intermediate_size=48, num_hidden_layers=2,
               num_attention_heads=4, num_key_value_heads=2, head_dim=8),
    bos_token_id=1, audio_token_id=49150, audio_eos_token_id=49151, pad_token_id=49150)

PRESETS: dict[str, dict] = {
    "csm-1b": {"csm": CSM_1B, "tokens": LLAMA3_TOKENS},
    "csm-test-tiny": {"csm": CSM_TEST_TINY, "tokens": LLAMA3_TOKENS},
    "marvis-250m": {"csm": MARVIS_250M, "tokens": SMOLLM2_TOKENS},
    "marvis-test-tiny": {"csm": MARVIS_TEST_TINY, "tokens": SMOLLM2_TOKENS},
}
