"""Measure what a half-precision MLX run needs against the float32 reference, tap by tap.

Run: python scripts/measure_precision.py MODEL [--dtypes float16,bfloat16] [--forced-codes]
     [--out FILE.json]

For each golden case of the spec, the reference runs once (float32) and the MLX side once per
dtype. Per continuous tap it prints the RMS of the reference tap, the decoded/tap SNR and
k_rms = max(|got - want| - rtol |want|) / rms(want) at the dtype's rtol (RTOL below): the
smallest `k_rms` of a `ToleranceTable(atol~0, rtol, k_rms)` that passes the tap. Discrete taps
print the fraction of equal entries; a tap whose shape differs (a decoding that took another
path) is named. docs/PRECISION.md says how the tables were derived from these numbers.

`--forced-codes` (codecs: dac*, snac*, mimi*, encodec*) puts the reference's codes into the MLX
side's nearest-codeword search (the search still runs; the count of its own decisions that
agreed is printed), so the taps after the quantizer measure the decoder's rounding rather than
a flipped code decision. This is a measurement aid only: parity runs never force codes.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

RTOL = {"float16": 1e-3, "bfloat16": 1e-2, "float32": 0.0}  # about one unit of the format at 1


def code_queue(name: str, want: dict) -> list[np.ndarray]:
    """The reference's codes in the order the MLX side's nearest-code searches run."""
    if name.startswith("dac"):
        c = want["quantizer.codes"]  # (B, n_q, T)
        return [c[:, i, :] for i in range(c.shape[1])]
    if name.startswith("snac"):
        return [want[f"quantizer.codes.{i}"] for i in range(3)]
    if name.startswith("mimi"):
        c = want["audio_codes"]  # (B, n_q, T): semantic first, then acoustic
        return [c[:, i, :] for i in range(c.shape[1])]
    if name.startswith("encodec"):
        if "audio_codes" in want:  # chunked: (n_chunks, B, n_q, T), chunk by chunk
            c = want["audio_codes"]
            return [c[j, :, i, :] for j in range(c.shape[0]) for i in range(c.shape[2])]
        c = want["quantizer.codes"]  # (n_q, B, T)
        return [c[i] for i in range(c.shape[0])]
    raise SystemExit(f"--forced-codes: no code layout known for {name!r} (codecs only)")


class ForcedCodes:
    """Patch the shared nearest-codeword searches to return the queued reference codes."""

    def __init__(self):
        import mlx.core as mx

        import mlx_impl.layers.quantize as q
        import mlx_impl.layers.vq_factorized as vqf

        self.mx, self.queue, self.agree, self.total = mx, [], 0, 0
        nearest, encode = vqf.nearest_code, q.EuclideanCodebook.encode
        vqf.nearest_code = lambda *a, **k: self.take(nearest(*a, **k))
        q.EuclideanCodebook.encode = lambda cb, x: self.take(encode(cb, x))

    def take(self, idx):
        if not self.queue:
            return idx
        ref = self.queue.pop(0)
        self.mx.eval(idx)
        if ref.ndim == idx.ndim and ref.shape[-1] > idx.shape[-1]:
            ref = ref[..., :idx.shape[-1]]  # the reference's padded last chunk
        if tuple(ref.shape) != tuple(idx.shape):
            raise SystemExit(f"forced codes of shape {ref.shape} for a search of {idx.shape}")
        self.agree += int((np.array(idx) == ref).sum())
        self.total += ref.size
        return self.mx.array(ref.astype(np.int32))


def tap_rows(spec, got: dict, want: dict, rtol: float) -> list[dict]:
    rows = []
    for t in spec.taps:
        w, g = np.asarray(want[t]), np.asarray(got[t])
        if t in spec.discrete:
            rows.append({"tap": t, "equal": float(np.mean(g == w)) if g.shape == w.shape
                         else None, "shape": list(w.shape)})
            continue
        if g.shape != w.shape:
            rows.append({"tap": t, "shape_mismatch": [list(g.shape), list(w.shape)]})
            continue
        w64, g64 = w.astype(np.float64), g.astype(np.float64)
        d = np.abs(g64 - w64)
        rms = float(np.sqrt(np.mean(w64 ** 2)))
        err = float(np.sum((g64 - w64) ** 2))
        rows.append({
            "tap": t, "rms": rms, "max_abs": float(d.max()), "finite": bool(np.isfinite(g).all()),
            "snr_db": float(10 * np.log10(np.sum(w64 ** 2) / err)) if err > 0 else float("inf"),
            "k_rms": float(max(0.0, (d - rtol * np.abs(w64)).max()) / rms) if rms > 0 else 0.0})
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("model")
    p.add_argument("--dtypes", default="float16,bfloat16")
    p.add_argument("--forced-codes", action="store_true")
    p.add_argument("--out", default=None, help="write the rows as JSON here")
    a = p.parse_args(argv)

    import mlx_impl  # noqa: F401  (first: its BLAS preload works only before mlx loads)
    from parity import registry

    spec = registry.get(a.model)
    forced = ForcedCodes() if a.forced_codes else None
    t0 = time.perf_counter()
    ref = spec.build_reference()
    cases = []
    for case in spec.golden_cases:
        inp = spec.make_inputs(case)
        cases.append((case.name, inp.arrays, {k: np.asarray(v) for k, v in ref(inp.arrays).items()}))
    del ref
    gc.collect()
    print(f"{a.model}: reference {time.perf_counter() - t0:.0f} s", flush=True)
    out = {"model": a.model, "forced_codes": a.forced_codes, "rtol": RTOL, "cases": {}}
    for dt in a.dtypes.split(","):
        side = spec.build_mlx(dt)
        for cname, arrays, want in cases:
            if forced:
                forced.queue[:], forced.agree, forced.total = code_queue(a.model, want), 0, 0
            rows = tap_rows(spec, side(arrays), want, RTOL[dt])
            out["cases"].setdefault(dt, {})[cname] = rows
            head = f"{dt} {cname}"
            if forced:
                head += f" (forced codes; the search's own choice agreed on {forced.agree}/{forced.total})"
            print(head)
            for r in rows:
                if "k_rms" in r:
                    print(f"  {r['tap']:40s} k_rms {r['k_rms']:9.3g}  SNR {r['snr_db']:6.1f} dB"
                          + ("" if r["finite"] else "  NON-FINITE"))
                elif "equal" in r:
                    eq = "shape differs" if r["equal"] is None else f"{100 * r['equal']:.2f} % equal"
                    print(f"  {r['tap']:40s} {eq}")
                else:
                    print(f"  {r['tap']:40s} shape mlx {r['shape_mismatch'][0]} vs "
                          f"reference {r['shape_mismatch'][1]}")
        del side
        gc.collect()
    if a.out:
        Path(a.out).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
