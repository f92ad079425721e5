"""BigVGAN v2 vocoder in MLX; see `model.py`."""
