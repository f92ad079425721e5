"""Wav2Vec2 CTC speech recognition in MLX (transformers `Wav2Vec2ForCTC` port)."""
