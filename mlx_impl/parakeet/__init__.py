"""Parakeet (NVIDIA FastConformer) speech recognition in MLX: CTC, RNN-T and TDT heads."""
