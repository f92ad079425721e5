"""Parity harness: compare MLX ports against upstream PyTorch references tap by tap.

CLI: `python -m parity list | run MODEL [--dtype float32|float16|bfloat16] [--fail-fast]
[--no-golden] [--golden-only] | golden MODEL`.
"""
