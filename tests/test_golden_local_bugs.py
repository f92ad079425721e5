"""Planted local bugs: one frame shifted by +3.0 on every channel, one frame zeroed, one channel
zeroed, one sample spiked. Each must fail at that tap both live (MLX against the reference
array, `compare_taps`) and against a golden written by `parity.golden` and read back, on real
tap shapes: whisper-tiny.en's encoder block (1, 1500, 384) and a 1-D audio tap of 103399 samples
(wav2vec2's `input_values`), each held to its spec's own fp32 tolerance. The spike is planted
where the golden stores no element whole; for every bug the test also asserts that the frame or
channel statistics themselves (golden/README.md) flag the planted block and no other, so the
failure never rests on a lucky sample. Then a real
test-tiny spec end to end: its golden generated into a temporary root, a bug planted in one tap
of the MLX side, and the golden comparison fails at exactly that tap.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from parity import golden as golden_store
from parity import runner
from parity.clips import FIXTURES, read_audio
from parity.compare import Fingerprint, Grid, compare_fingerprint, compare_taps
from parity.registry import get
from parity.spec import Tolerance

WHISPER_TAP = "encoder.blocks.3"
AUDIO_TAP = "input_values"


def whisper_block_like(seed: int = 0) -> np.ndarray:
    """(1, 1500, 384) with the scale of whisper-tiny.en's `encoder.blocks.3` on the fox clip
    (committed golden summary: mean 0.45, std 5.0, min -625, max 140; this one: mean 0.32,
    std 5.6, min -625, max 140): a residual stream near N(0.45, 1) correlated over time,
    per-channel gains, and two outlier channels of large magnitude (one reaching -625 on the
    first frame) as trained transformers have."""
    rng = np.random.default_rng(seed)
    t, c = 1500, 384
    x = np.empty((t, c))
    x[0] = rng.standard_normal(c)
    noise = rng.standard_normal((t, c)) * np.sqrt(1 - 0.8 ** 2)
    for i in range(1, t):
        x[i] = 0.8 * x[i - 1] + noise[i]
    x = 0.45 + x * rng.lognormal(0.0, 0.3, c)
    x[:, 7] = -90 + 30 * rng.standard_normal(t)
    x[0, 7] = -625.0
    x[:, 300] = 40 + 20 * rng.standard_normal(t)
    x[3, 300] = 140.0
    return x[None].astype(np.float32)


def audio_like() -> np.ndarray:
    """(1, 103399): the espeak fox clip at 16 kHz, tiled to wav2vec2-base-960h's input length
    and normalised to zero mean and unit variance, as its `input_values` tap is."""
    a = read_audio(FIXTURES / "espeak_en_fox.wav", 16000).astype(np.float64)
    a = np.tile(a, -(-103399 // a.size))[:103399]
    return ((a - a.mean()) / a.std())[None].astype(np.float32)


def unstored(fp: Fingerprint) -> np.ndarray:
    """Boolean mask over the flat tap: True where the golden keeps no element whole."""
    mask = np.ones(int(np.prod(fp.shape)), bool)
    mask[fp.checked()[0]] = False
    return mask


def plant(want: np.ndarray, fp: Fingerprint, bug: str) -> tuple[np.ndarray, str, int]:
    """A copy of `want` with `bug` planted, and where the statistics must see it: ("frames",
    frame block) or ("channels", channel block). The spiked element is one the golden does not
    store, so only the statistics can catch it; frames and channels always hold stored elements
    (a sample in every frame block, the first and last frame whole), so the test asserts that
    the statistics flag the planted block as well."""
    got = want.copy()
    free = unstored(fp)
    r = fp.grid.rows_per_block
    if fp.grid.one_d:  # a 1-D signal: a frame is 320 samples (wav2vec2's hop)
        flat = got.reshape(-1)
        start = 40_000
        if bug == "frame_shift":
            flat[start:start + 320] += 3.0
        elif bug == "frame_zero":
            flat[start:start + 320] = 0.0
        elif bug == "spike":
            start = next(i for i in range(start, flat.size) if free[i])
            block = flat[(start // r) * r:(start // r + 1) * r]
            flat[start] = 10 * np.abs(block).max()
        else:
            raise ValueError(bug)
        return got, "frames", start // r
    rows = got.reshape(fp.grid.frames, fp.grid.width)
    free = free.reshape(rows.shape)
    frame = 900
    if bug == "frame_shift":
        rows[frame] += 3.0
    elif bug == "frame_zero":
        rows[frame] = 0.0
    elif bug == "channel_zero":
        ch = 10  # an ordinary channel (7 and 300 are the outliers)
        rows[:, ch] = 0.0
        return got, "channels", ch // fp.grid.cols_per_block
    elif bug == "spike":
        frame, j = 1100, int(np.argmax(free[1100]))
        assert free[frame, j]
        rows[frame, j] = 10 * np.abs(rows[frame]).max()
    else:
        raise ValueError(bug)
    return got, "frames", frame // r


def golden_round_trip(tmp_path, name: str, want: np.ndarray) -> Fingerprint:
    """`want` packed, written and read back through parity.golden: the stored fingerprint."""
    tensors, entries = golden_store.pack_case({}, {name: want})
    manifest = {"format_version": golden_store.FORMAT_VERSION, "model": "planted",
                "cases": [{"name": "case", "taps": entries}]}
    golden_store.write("planted", manifest, {"case": tensors}, root=tmp_path)
    (case,) = golden_store.read("planted", root=tmp_path).cases
    fp = case.taps[name]
    assert isinstance(fp, Fingerprint), type(fp)
    return fp


CASES = [("whisper-tiny.en", WHISPER_TAP, whisper_block_like, bug)
         for bug in ("frame_shift", "frame_zero", "channel_zero", "spike")]
CASES += [("wav2vec2-base-960h", AUDIO_TAP, audio_like, bug)
          for bug in ("frame_shift", "frame_zero", "spike")]


@pytest.mark.parametrize("model,tap,make,bug", CASES,
                         ids=[f"{m}-{b}" for m, _, _, b in CASES])
def test_planted_bug_fails_live_and_against_the_golden(model, tap, make, bug, tmp_path):
    table = get(model).tolerance("float32")
    want = make()
    fp = golden_round_trip(tmp_path, tap, want)
    assert fp.shape == want.shape and int(np.prod(fp.shape)) > golden_store.MAX_WHOLE
    # the clean tap and one within its tolerance pass both ways
    tol, _ = table.for_tap(tap)
    rms = float(np.sqrt(np.mean(want.astype(np.float64) ** 2)))
    eps = 0.5 * tol.floor(rms) * np.random.default_rng(1).choice([-1.0, 1.0], want.shape)
    near = (want + eps).astype(np.float32)
    for got in (want, near):
        assert compare_taps({tap: got}, {tap: want}, (tap,), table).passed
        assert compare_taps({tap: got}, {tap: fp}, (tap,), table, want_label="golden").passed

    bad, axis, block = plant(want, fp, bug)
    live = compare_taps({tap: bad}, {tap: want}, (tap,), table)
    gold = compare_taps({tap: bad}, {tap: fp}, (tap,), table, want_label="golden")
    assert not live.passed and live.first_failure.name == tap
    assert not gold.passed and gold.first_failure.name == tap
    r = gold.first_failure
    assert "out of bounds" in r.note, r.note
    found = [(v["axis"], v["block"]) for v in fp.violations(bad, r.floor, r.rtol)]
    assert (axis, block) in found, (axis, block, found[:8])
    # the statistics flag only blocks that hold a planted element (and the whole-tap summary)
    touched = (bad != want).reshape(fp.grid.frames, fp.grid.width)
    allowed = {("frames", int(i) // fp.grid.rows_per_block)
               for i in np.nonzero(touched.any(1))[0]}
    if fp.cols is not None:
        allowed |= {("channels", int(j) // fp.grid.cols_per_block)
                    for j in np.nonzero(touched.any(0))[0]}
    assert {f for f in found if f[0] != "whole"} <= allowed, sorted(set(found) - allowed)[:8]


def test_end_to_end_test_tiny_spec_golden_fails_at_the_planted_tap(tmp_path):
    """wav2vec2-test-tiny: its golden generated into a temporary root from the real reference;
    the real MLX side with one fingerprinted tap's frame shifted by +3.0 fails against that
    golden at exactly that tap, and only there."""
    spec = get("wav2vec2-test-tiny")
    runner.generate_golden(spec, log=lambda m: None, root=tmp_path)
    g = golden_store.read(spec.name, root=tmp_path)
    fps = [t for t, v in g.cases[0].taps.items() if isinstance(v, Fingerprint)]
    target = fps[len(fps) // 2]
    clean = runner.run(spec, "float32", reference=False, golden_root=tmp_path,
                       log=lambda m: None)
    assert clean.passed, [(c.case, c.error) for c in clean.cases]

    def build_mlx(dtype):
        side = spec.build_mlx(dtype)

        def call(inputs, **kw):
            taps = dict(side(inputs, **kw))
            a = np.array(taps[target], copy=True)
            a.reshape(-1, a.shape[-1])[a.reshape(-1, a.shape[-1]).shape[0] // 2] += 3.0
            taps[target] = a
            return taps
        return call

    bad = dataclasses.replace(spec, build_mlx=build_mlx)
    res = runner.run(bad, "float32", reference=False, golden_root=tmp_path, log=lambda m: None)
    assert not res.passed
    for case in res.cases:
        failing = [r.name for r in case.comparison.results if not r.passed]
        assert failing == [target], (case.case, failing)


SOUND_SHAPES = [(30_000,), (1, 12_000, 1), (1, 9_000, 2), (2, 101, 97), (1, 3, 5_000),
                (4, 100, 32), (1, 2_500, 7)]


@pytest.mark.parametrize("shape", SOUND_SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_a_tap_with_every_element_inside_its_bound_passes_the_statistics(shape):
    """The limits are bounds, not estimates: a tap whose every element sits at 99 % of its own
    bound, with the signs that push each statistic furthest (all up, all down, away from zero,
    towards zero, random), passes; ragged last blocks, 1-D signals, a large offset (float32
    rounding of the stored sums) and k_rms included."""
    rng = np.random.default_rng(7)
    base = rng.standard_normal(shape)
    for offset, tol in ((0.0, Tolerance(1e-3, 1e-2)), (1000.0, Tolerance(1e-4, 1e-4)),
                        (0.0, Tolerance(1e-9, 0.0, k_rms=1e-3))):
        want = (offset + base).astype(np.float32)
        fp = Fingerprint.of(want, golden_store.sample_indices(Grid.of(want.shape)))
        w = want.astype(np.float64)
        b = tol.floor(fp.rms) + tol.rtol * np.abs(w)
        for sign in (1.0, -1.0, np.sign(w), -np.sign(w), rng.choice([-1.0, 1.0], shape)):
            got = (w + 0.99 * b * sign).astype(np.float32)
            r = compare_fingerprint("t", got, fp, tol)
            assert r.passed, (shape, offset, tol, r.note)
