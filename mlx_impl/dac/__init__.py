"""DAC (Descript Audio Codec) in MLX; see `model.py`."""
