"""`python -m parity list | run MODEL [...] | golden MODEL | sweep [...] | export MODEL --out DIR
| cards | quant MODEL`; exit status 1 on any failure."""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from pathlib import Path

from parity import cards
from parity.spec import DTYPES, ParityError

REFERENCE_PACKAGES = ("torch", "whisper", "transformers", "reference")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m parity", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="list the registered models")
    cards.add_parser(sub)
    r = sub.add_parser("run", help="compare the MLX port with the reference and the goldens")
    r.add_argument("model")
    r.add_argument("--dtype", choices=DTYPES, default="float32", help="MLX compute dtype")
    r.add_argument("--fail-fast", action="store_true", help="stop at the first failing tap")
    r.add_argument("--no-golden", action="store_true", help="skip the stored goldens")
    r.add_argument("--golden-only", action="store_true",
                   help="compare against the stored goldens only (no torch needed)")
    r.add_argument("--no-checks", action="store_true",
                   help="skip the end-to-end checks (decoding, word timings, WER)")
    r.add_argument("--full", action="store_true",
                   help="run the full end-to-end sweeps (every clip, every strategy) instead of "
                        "the default items; the slow tier runs this")
    r.add_argument("--report-dir", default=None, help="where to write the reports "
                   "(default reports/parity/, with --port reports/ports/PORT/)")
    r.add_argument("--port", default=None, metavar="NAME",
                   help="put a third-party MLX port on the MLX side (parity/ports.py: "
                        "mlx-whisper); the end-to-end checks, which build our port, are left out")
    g = sub.add_parser("golden", help="regenerate golden/<model>/ from the reference")
    g.add_argument("model")
    from parity import sweep

    sw = sub.add_parser("sweep", help="run many specs (x dtypes), each in its own process, here "
                        "or on a Ray cluster; one aggregated report (reports/sweep.md)")
    sweep.add_arguments(sw)
    e = sub.add_parser("export", help="write fixtures another port can walk: one safetensors "
                       "per case and dtype, and a manifest (tools/check_export.py reads them)")
    e.add_argument("model")
    e.add_argument("--out", required=True, help="directory to write (replaced atomically)")
    e.add_argument("--max-elements", type=int, default=-1,
                   help="store taps above this many elements as a strided slice (default: "
                        "whole for -test-tiny models, else 65536; 0: everything whole)")
    e.add_argument("--dtypes", default=",".join(DTYPES),
                   help="files to write, comma-separated; float32 is always needed")
    q = sub.add_parser("quant", help="quantized (q8/q4) model against the float32 reference: "
                       "tap SNRs, codes/tokens agreement, Whisper transcripts; writes "
                       "reports/quant/MODEL.md/.json")
    q.add_argument("model", help="whisper-tiny.en, whisper-base, or a codec spec "
                   "(encodec-test-tiny, dac-test-tiny, snac-test-tiny, mimi-test-tiny, ...)")
    q.add_argument("--report-dir", default=None, help="default reports/quant/")
    a = p.parse_args(argv)
    if a.cmd == "sweep":
        return sweep.main(a, sys.argv[1:] if argv is None else argv)
    if a.cmd == "quant":
        os.environ.setdefault("MLX_ENABLE_TF32", "0")
        import mlx_impl  # noqa: F401  (its BLAS preload works only before mlx loads)
        from parity import quant

        md, js = quant.run(a.model, Path(a.report_dir) if a.report_dir else quant.REPORTS)
        print(f"wrote {md} and {js}")
        return 0

    from parity import registry

    if a.cmd == "cards":
        return cards.main(a)
    if a.cmd == "list":
        for s in registry.SPECS:
            print(f"{s.name:20s} {s.description}")
            print(f"{'':20s} weights: {s.weights}; {len(s.taps)} taps; golden cases: "
                  f"{', '.join(c.name for c in s.golden_cases)}")
        return 0
    try:
        spec = registry.get(a.model)
    except KeyError as e:
        print(e.args[0], file=sys.stderr)
        return 2
    if a.cmd == "export":
        from parity.export import export

        try:
            path = export(spec, Path(a.out), max_elements=a.max_elements or None,
                          dtypes=tuple(d.strip() for d in a.dtypes.split(",") if d.strip()))
        except (ParityError, ValueError, FileExistsError) as err:
            print(f"ERROR: {err}", file=sys.stderr)
            return 1
        print(f"wrote {path}; check a port against it with `python tools/check_export.py "
              f"{path} --port parity.export:mlx_port`")
        return 0
    if a.cmd == "golden":
        from parity.runner import generate_golden

        path = generate_golden(spec)
        print(f"wrote {path}")
        return 0
    if a.no_golden and a.golden_only:
        print("--no-golden and --golden-only leave nothing to compare; pick one", file=sys.stderr)
        return 2
    # fp32 parity needs full-precision matmuls on every backend
    os.environ.setdefault("MLX_ENABLE_TF32", "0")
    from parity import report
    from parity.progress import Progress
    from parity.runner import run

    report_root = Path(a.report_dir) if a.report_dir else report.REPORTS
    if a.port:
        import dataclasses

        from parity.ports import port_for

        try:
            port = port_for(a.port, spec)
        except ParityError as err:
            print(f"ERROR: {err}", file=sys.stderr)
            return 2
        ours = spec
        spec = dataclasses.replace(spec, build_mlx=lambda dtype: port.build(ours, dtype))
        a.no_checks = True  # the checks build our own port; they say nothing about theirs
        if not a.report_dir:
            report_root = report.REPORTS.parent / "ports" / a.port
        print(f"MLX side: {a.port} (parity/ports.py), not mlx_impl; end-to-end checks left out")
    res = run(spec, a.dtype, fail_fast=a.fail_fast, reference=not a.golden_only,
              golden=not a.no_golden, checks=not a.no_checks, log=Progress(),
              tier="full" if a.full else "default", raise_errors=False)
    if res.error is not None:
        e = res.exception
        if isinstance(e, ImportError) and not a.golden_only and \
                (e.name or "").split(".")[0] in REFERENCE_PACKAGES:
            print(f"ERROR: the reference side needs {e.name or e}; install the reference "
                  "packages (torch, openai-whisper, transformers) or compare against the stored "
                  "goldens with --golden-only", file=sys.stderr)
        elif isinstance(e, ParityError):
            print(f"ERROR: {e}", file=sys.stderr)
        else:  # an unexpected exception: its traceback, and still a FAIL report
            traceback.print_exception(e, file=sys.stderr)
    print(report.header(res))
    for c in res.cases:
        report.print_case(c)
    for c in res.checks:
        report.print_check(c)
    md, js = report.write(res, root=report_root)
    print("\n" + report.timing_table(res))
    stale = res.stale_overrides
    print("\n" + "\n".join(report.stale_lines(res)))
    print(f"\n{report.run_verdict(res)}: {spec.name} {a.dtype}; report {md} and {js}")
    if stale:  # the port passed, but its table no longer says what was measured
        print(f"FAIL: {len(stale)} stale tolerance override(s) in {spec.name}'s {a.dtype} "
              "table (listed above); re-derive them from this report", file=sys.stderr)
    if isinstance(res.exception, KeyboardInterrupt):
        return 130
    return 0 if res.passed and not stale else 1


if __name__ == "__main__":
    sys.exit(main())
