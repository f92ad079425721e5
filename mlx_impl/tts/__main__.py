"""`python -m mlx_impl.tts`: see `mlx_impl.tts.cli`."""

import sys

from mlx_impl.tts.cli import main

sys.exit(main())
