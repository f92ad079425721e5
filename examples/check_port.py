"""Check a port with the harness: export a model's fixtures, then check a port tap by tap.

    .venv/bin/python examples/check_port.py --model whisper-test-tiny [--out DIR] [--plant]
    .venv/bin/python examples/check_port.py --export-dir DIR [--plant]   # check an export again

Model ids: any `python -m parity list` id with a key map and golden cases (whisper-test-tiny,
whisper-tiny.en, whisper-base; test-tiny models are exported whole). This is
`python -m parity export MODEL --out DIR` followed by `python tools/check_export.py DIR --port
parity.export:mlx_port`, in one script: the export runs the PyTorch reference once, then the
standalone reader (which imports nothing from this project) runs the port on the exported
inputs and compares its taps in order. Your port goes where `mlx_port` is: a function
`(manifest, dtype) -> port(inputs) -> {tap name: array}`. `--plant` adds 1e-2 to one MLP of our
port to show what a divergence looks like.
"""

import argparse
import importlib.util
import sys
import tempfile
from pathlib import Path

import mlx_impl  # noqa: F401  (first: it picks the fast CPU BLAS before MLX loads)
from parity import registry
from parity.export import export, mlx_port

ROOT = Path(__file__).resolve().parent.parent


def standalone_reader():
    """tools/check_export.py, loaded from its file (it is a script, not a package)."""
    spec = importlib.util.spec_from_file_location("check_export", ROOT / "tools" / "check_export.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["check_export"] = module
    spec.loader.exec_module(module)
    return module


def planted_port(manifest, dtype):
    port = mlx_port(manifest, dtype)
    block = port.side.model.encoder.blocks[-1]
    fc2 = block.mlp[2]
    block.mlp[2] = lambda x: fc2(x) + 1e-2  # the last encoder block's MLP output, shifted
    return port


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="whisper-test-tiny")
    p.add_argument("--out", default=None, help="export directory (default: a temporary one)")
    p.add_argument("--export-dir", default=None,
                   help="check this existing export instead of exporting (no torch needed)")
    p.add_argument("--plant", action="store_true", help="check a port with a planted error")
    a = p.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        if a.export_dir:
            out = Path(a.export_dir)
        else:
            out = export(registry.get(a.model), Path(a.out or Path(tmp) / a.model))
        reader = standalone_reader()
        model = reader.load_export(out)["model"]["id"]
        report = reader.check(out, planted_port if a.plant else mlx_port, "float32",
                              log=lambda line: print(f"  {line}"))
    first = report.first_divergence
    if first is None:
        print(f"PASS: all {len(report.results)} taps of {model} match the reference")
        return 0
    print(f"FAIL: first diverging tap {first.name} (index {first.index}): {first.note}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
