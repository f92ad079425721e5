"""OuteTTS 1.0 (OuteAI/Llama-OuteTTS-1.0-1B architecture) in MLX: a Llama-3.2-1B language model
whose vocabulary is extended with OuteTTS's special tokens and 2 x 1025 audio-code tokens
(`<|c1_N|>`, `<|c2_N|>`), emitting one c1/c2 pair per codec frame, decoded by a 2-codebook DAC at
24 kHz (`mlx_impl.dac`). Speaker profiles (words, durations, features, codes) prefix the prompt.
"""
