"""Whisper in MLX: config, model, converter, transcription.

Upstream: openai-whisper 20250625 (`whisper/model.py`, `decoding.py`, `timing.py`, `transcribe.py`).
"""
