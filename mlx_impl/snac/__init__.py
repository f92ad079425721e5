"""SNAC (Multi-Scale Neural Audio Codec) in MLX; see `model.py`."""
