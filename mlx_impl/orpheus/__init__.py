"""Orpheus TTS (canopylabs/orpheus-3b-0.1-ft architecture) in MLX: a Llama-3.2-3B language model
(llama3 RoPE scaling) whose vocabulary is extended with 7 x 4096 audio tokens, emitting 7 tokens
per SNAC frame, decoded by SNAC 24 kHz (`mlx_impl.snac`)."""
