"""S3 speech tokenizer (CosyVoice) v1 and v2 in MLX; see model.py."""
