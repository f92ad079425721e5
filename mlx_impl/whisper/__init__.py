"""Whisper in MLX: config, model, converter, transcription, MLX community checkpoints (q8/q4).

Upstream: openai-whisper 20250625 (`whisper/model.py`, `decoding.py`, `timing.py`, `transcribe.py`).
"""
