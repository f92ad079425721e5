"""Bark (suno-ai/bark architecture, transformers `BarkModel`) in MLX: a semantic GPT over text
ids with the text-embedding merge, a coarse GPT writing 2 interleaved EnCodec codebooks over a
sliding window, a non-causal fine GPT filling codebooks 3..8, decoded by EnCodec 24 kHz
(`mlx_impl.encodec`)."""
