"""Reference MLX implementations of audio models.

Importing this package first preloads a fast BLAS on Linux (MKL or OpenBLAS, see
`mlx_impl._blas`), so it must run before anything imports mlx; `blas_info()` reports which BLAS
MLX uses.
"""

from mlx_impl._blas import blas_info, preload_blas
from mlx_impl._cpu_ext import cpu_kernels_info

preload_blas()

__all__ = ["blas_info", "cpu_kernels_info"]
