"""Reference MLX implementations of audio models.

Importing this package first preloads the system OpenBLAS on Linux (see `mlx_impl._blas`), so it
must run before anything imports mlx; `blas_info()` reports which BLAS MLX uses.
"""

from mlx_impl._blas import blas_info, preload_openblas
from mlx_impl._cpu_ext import cpu_kernels_info

preload_openblas()

__all__ = ["blas_info", "cpu_kernels_info"]
