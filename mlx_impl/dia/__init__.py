"""Dia (nari-labs/Dia-1.6B architecture) in MLX: a byte-level text encoder and an audio decoder
with cross-attention, generating 9 DAC codebooks at once with a per-codebook delay pattern and
classifier-free guidance, decoded by DAC 44.1 kHz (`mlx_impl.dac`)."""
