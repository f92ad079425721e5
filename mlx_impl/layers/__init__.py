"""Shared MLX layers, each parity-tested op by op against torch (tests/test_layers_*.py).

- `activations`: `gelu` (exact erf form), `softmax`, `exp`, `erf`, `sum_last`: fp32-exact and, on
  the CPU, built from fused arithmetic instead of MLX's slow scalar transcendentals.
- `linear`: `Linear` / `linear` (`nn.Linear` semantics); one-row float32 products (token-by-token
  decoding) run as cblas_sgemv on the CPU instead of sgemm, which packs the whole weight first.
- `norm`: `layer_norm` / `LayerNorm` (torch `nn.LayerNorm` semantics, fp32 compute).
- `spectral`: the one Hann window (periodic/symmetric), STFT (padding "center"/"same"/"none",
  reflect or zero padding, normalized, one- or two-sided; mx arrays, or numpy for float64) and
  inverse STFT (torch's and Vocos' "same"), and mel filterbanks (Slaney or HTK scale, Slaney
  area norm or none: librosa / torchaudio). Every front end and iSTFT head below builds on it.
- `audio`: Whisper's log-mel front end (`log_mel_spectrogram`, `power_spectrum`); Whisper's
  constants and `pad_or_trim` are in `weights.whisper_audio` (shared with the torch side).
- `attention`, `positions`: the one attention core `scaled_dot_product_attention` (grouped-query
  heads, additive/boolean masks; `mx.fast` on Metal/CUDA, the CPU extension's tiled kernel for
  unmasked float32, MLX ops otherwise), the preallocated `KVCache`, and Whisper's multi-head
  attention (cross K/V pre-scaled and transposed once per window); sinusoidal positions.
- `rope`: rotary embeddings, rotate-half or interleaved (GPT-J) layout, partial rotary, Llama-3
  frequency scaling; `mx.fast.rope` off the CPU.
- `sampling`: repetition penalty (whole history or window), temperature, top-k, top-p, min-p,
  classifier-free guidance (standard and Dia's), and the draw from noise passed in (Gumbel or
  uniform inverse CDF; greedy at temperature 0); `make_sampler` / `make_logits_processors`.
- `snake`: Snake / SnakeBeta periodic activations (plain or log-scale parameters).
- `conv`: EnCodec/SEANet padded convs (causal/reflect/replicate), kernel
  transposes; `torch_conv`: torch-semantics Conv1d/ConvTranspose1d (zero padding, dilation,
  groups) on MLX's fast CPU paths (dilated convs by phases, transposed convs as one matmul).
- `group_norm`, `conv_positions`, `lstm` (optional initial state), `seanet` (encoder/decoder,
  residual blocks, optional LSTM), `quantize` (Euclidean residual VQ).
- `conformer`: FastConformer pieces (relative-position attention, convolution module, batch norm).
- `fsq`: finite scalar quantization as S3 tokenizer v2 (projection, tanh, 3 levels, 3**8 codes).
- `fsmn`: FSMN memory block (zero-padded depthwise conv over time plus the input, masked).
- `llm`: Llama/Mistral/Qwen2 decoder LM pieces (RMSNorm, grouped-query attention with KV cache
  and RoPE incl. Llama-3 scaling, q/k/v biases, SwiGLU MLP, decoder layer, embedding + tied or
  separate vocabulary head); `mx.fast` norms/rope/attention off the CPU.
- `transformer`: pre-norm transformer layer (Mimi): RoPE attention, optional layer scale,
  sliding-window causal mask, `SlidingKVCache` for streaming.
- `convnext`: Vocos' ConvNeXt block (depthwise conv, layer scale) and `AdaLayerNorm`
  (bandwidth-conditioned scale/shift).
- `mel`: torchaudio-style magnitude mel spectrogram (HTK, no norm, center/"same") and log.
- `istft_head`: Vocos' iSTFT head (log-magnitude and phase -> iSTFT, center/"same").
- `vq_factorized`: factorised L2-normalised residual VQ (DAC, SNAC): 1x1 in/out projections,
  cosine nearest code, per-stage time strides; encode (n_quantizers) and decode from codes.
- `alias_free`: BigVGAN's anti-aliased activation (Kaiser-sinc filter, replicate-padded 2x
  up/down-sampling, `Activation1d` = up -> act -> down).

Import the modules directly (`from mlx_impl.layers.activations import gelu`); this package
imports nothing itself.
"""
