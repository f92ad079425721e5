"""Sesame CSM (sesame/csm-1b) and Marvis (the same architecture, Marvis-AI/marvis-tts-250m) in
MLX: a Llama backbone over interleaved text and audio frames predicts codebook 0 of each Mimi
frame, a small Llama depth decoder predicts codebooks 1..K-1; Mimi (`mlx_impl.mimi`) decodes."""
