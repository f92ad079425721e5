"""Voxtral (mistralai/Voxtral-Mini-3B-2507 architecture) speech-to-text in MLX: a Whisper encoder,
a 4-frame-stacking projector and a Llama-style decoder (mlx_impl/layers/llm.py)."""
