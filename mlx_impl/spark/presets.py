"""The configurations of the Spark-TTS model ids: plain data (no mlx import), read by the port,
the reference builder and the parity spec.

`PRESETS[id]` = {"config": the model folder's config.yaml, "bicodec": BiCodec/config.yaml's
`audio_tokenizer` block, "wav2vec2": a transformers Wav2Vec2Config dict, "lm": a Qwen2Config dict}.
- `spark-tts-0.5b`: SparkAudio/Spark-TTS-0.5B's dimensions as published (BiCodec config.yaml:
  XLSR-53 features of 1024, Vocos encoder 384 wide x 12, VQ 8192 x 8, speaker encoder on 128
  mels with 32 tokens of FSQ 4^6, prenet 384 x 12 conditioned on the 1024 d-vector, wave
  generator 1536 channels at rates 8/5/4/2; wav2vec2-large-xlsr-53; Qwen2.5-0.5B with the
  vocabulary 166000), recalled from the released config files, which cannot be read offline.
- `spark-tts-test-tiny`: the same structure and token counts (8192 semantic codes of dim 8,
  4^6 global codes, 32 global tokens, the real mel settings and 320-sample hop) at tiny widths:
  wav2vec2 32 wide with 17 layers (hidden state 16 is the output of layer 15), Vocos 32 x 2,
  wave generator 64 channels; Qwen2 64 wide, 2 layers, 4 / 2 heads, qkv bias, tied embeddings,
  rope theta 1e6, over the test token layout (`tokens.VOCAB`).
"""

from mlx_impl.spark.tokens import VOCAB

FOLDER_CONFIG = dict(sample_rate=16000, highpass_cutoff_freq=40, segment_duration=2.4,
                     max_val_duration=12, latent_hop_length=320, ref_segment_duration=6,
                     volume_normalize=True)

MEL = dict(sample_rate=16000, n_fft=1024, win_length=640, hop_length=320, mel_fmin=10,
           mel_fmax=None, num_mels=128)


def _bicodec(feat: int, dim: int, inter: int, layers: int, latent: int, out_dim: int,
             channels: int, post_layers: int) -> dict:
    vocos = dict(vocos_dim=dim, vocos_intermediate_dim=inter, vocos_num_layers=layers)
    return dict(
        mel_params=MEL,
        encoder=dict(input_channels=feat, **vocos, out_channels=latent, sample_ratios=[1, 1]),
        decoder=dict(input_channel=latent, channels=channels, rates=[8, 5, 4, 2],
                     kernel_sizes=[16, 11, 8, 4]),
        quantizer=dict(input_dim=latent, codebook_size=8192, codebook_dim=8, commitment=0.25,
                       codebook_loss_weight=2.0, use_l2_normlize=True,
                       threshold_ema_dead_code=0.2),
        speaker_encoder=dict(input_dim=128, out_dim=out_dim, latent_dim=128, token_num=32,
                             fsq_levels=[4, 4, 4, 4, 4, 4], fsq_num_quantizers=1),
        prenet=dict(input_channels=latent, **vocos, out_channels=latent, condition_dim=out_dim,
                    sample_ratios=[1, 1], use_tanh_at_final=False),
        postnet=dict(input_channels=latent, vocos_dim=dim, vocos_intermediate_dim=inter,
                     vocos_num_layers=post_layers, out_channels=feat, use_tanh_at_final=False))


def _wav2vec2(hidden: int, layers: int, heads: int, inter: int, conv: int, pos: int) -> dict:
    return dict(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                intermediate_size=inter, conv_dim=[conv] * 7, conv_stride=[5, 2, 2, 2, 2, 2, 2],
                conv_kernel=[10, 3, 3, 3, 3, 2, 2], conv_bias=True, feat_extract_norm="layer",
                do_stable_layer_norm=True, num_conv_pos_embeddings=pos,
                num_conv_pos_embedding_groups=16, layer_norm_eps=1e-5, hidden_act="gelu",
                feat_extract_activation="gelu", apply_spec_augment=False, vocab_size=32)


def _qwen2(vocab: int, hidden: int, inter: int, layers: int, heads: int, kv: int) -> dict:
    return dict(vocab_size=vocab, hidden_size=hidden, intermediate_size=inter,
                num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv,
                rms_norm_eps=1e-6, rope_theta=1000000.0, max_position_embeddings=32768,
                tie_word_embeddings=True, hidden_act="silu", use_sliding_window=False)


PRESETS: dict[str, dict] = {
    "spark-tts-0.5b": {
        "config": FOLDER_CONFIG,
        "bicodec": _bicodec(1024, 384, 2048, 12, 1024, 1024, 1536, 6),
        "wav2vec2": _wav2vec2(1024, 24, 16, 4096, 512, 128),
        "lm": _qwen2(166000, 896, 4864, 24, 14, 2),
    },
    "spark-tts-test-tiny": {
        "config": FOLDER_CONFIG,
        "bicodec": _bicodec(32, 32, 64, 2, 32, 32, 64, 1),
        "wav2vec2": _wav2vec2(32, 17, 2, 64, 32, 16),
        "lm": _qwen2(VOCAB, 64, 128, 2, 4, 2),
    },
}
