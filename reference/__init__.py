"""Adapters to the upstream PyTorch implementations; the only package that imports torch.

Each adapter builds the upstream model from the canonical numpy weights (see `weights/`), runs it
and returns named taps as numpy arrays in the MLX layout (channels-last). Never imports mlx.
"""
