"""Bark presets: transformers 5.24.0 `BarkConfig` kwargs (`semantic_config`,
`coarse_acoustics_config`, `fine_acoustics_config`, `codec_config`) and the `generation_config`
sub-configs (`BarkSemanticGenerationConfig` / `BarkCoarseGenerationConfig` /
`BarkFineGenerationConfig` fields). Plain data, importable without mlx.

- `bark-small`: suno/bark-small's dimensions (three GPTs 768 wide x 12 layers x 12 heads,
  block 1024, no biases) and EnCodec 24 kHz (facebook/encodec_24khz's configuration).
- `bark-test-tiny`: 32 wide x 2 layers x 2 heads, but the REAL vocabularies (semantic 129600 in /
  10048 out, coarse 12096, fine 1056) and block sizes: Bark's generation hard-codes its token
  offsets (text at +10048, semantic pad 10000, coarse codebooks at 10000 + 1024 c, infer tokens),
  so smaller vocabularies would change the algorithm; a tiny EnCodec (8 wide, 4 filters) with the
  real strides (hop 320, 75 Hz) and 8 codebooks of 1024 at 6 kbps.
"""

from __future__ import annotations

# generation_config.json of suno/bark-small (transformers' defaults of the three sub-configs;
# suno's real file sets the same offsets and windows)
GENERATION = dict(
    semantic_config=dict(
        eos_token_id=10_000, text_encoding_offset=10_048, text_pad_token=129_595,
        semantic_infer_token=129_599, semantic_vocab_size=10_000, max_input_semantic_length=256,
        semantic_rate_hz=49.9, max_new_tokens=768),
    coarse_acoustics_config=dict(
        coarse_semantic_pad_token=12_048, coarse_rate_hz=75, n_coarse_codebooks=2,
        coarse_infer_token=12_050, max_coarse_input_length=256, max_coarse_history=630,
        sliding_window_len=60),
    fine_acoustics_config=dict(
        max_fine_history_length=512, max_fine_input_length=1024, n_fine_codebooks=8),
    sample_rate=24_000, codebook_size=1024)


def _gpt(hidden: int, layers: int, heads: int, vocab_in: int, vocab_out: int, **extra) -> dict:
    return dict(block_size=1024, input_vocab_size=vocab_in, output_vocab_size=vocab_out,
                num_layers=layers, num_heads=heads, hidden_size=hidden, dropout=0.0,
                bias=False, **extra)


def _bark(hidden: int, layers: int, heads: int, codec: dict) -> dict:
    return dict(
        semantic_config=_gpt(hidden, layers, heads, 129_600, 10_048),
        coarse_acoustics_config=_gpt(hidden, layers, heads, 12_096, 12_096),
        fine_acoustics_config=_gpt(hidden, layers, heads, 1_056, 1_056, n_codes_total=8,
                                   n_codes_given=1),
        codec_config=codec)


_ENCODEC = dict(
    model_type="encodec", target_bandwidths=[1.5, 3.0, 6.0, 12.0, 24.0], sampling_rate=24000,
    audio_channels=1, normalize=False, chunk_length_s=None, overlap=None, hidden_size=128,
    num_filters=32, num_residual_layers=1, upsampling_ratios=[8, 5, 4, 2],
    norm_type="weight_norm", kernel_size=7, last_kernel_size=7, residual_kernel_size=3,
    dilation_growth_rate=2, use_causal_conv=True, pad_mode="reflect", compress=2,
    num_lstm_layers=2, trim_right_ratio=1.0, codebook_size=1024, codebook_dim=128,
    use_conv_shortcut=True)
_ENCODEC_TINY = dict(_ENCODEC, target_bandwidths=[1.5, 3.0, 6.0], hidden_size=8,
                     num_filters=4, codebook_dim=8)

PRESETS: dict[str, dict] = {
    "bark-small": {"model": _bark(768, 12, 12, _ENCODEC), "generation": GENERATION},
    "bark-test-tiny": {"model": _bark(32, 2, 2, _ENCODEC_TINY), "generation": GENERATION},
}
