"""Every malformed or missing golden is a GoldenError naming the file and the command that
regenerates it (never a raw JSONDecodeError or KeyError), the manifest's own hash catches an
edited summary, and a run that stops on an error writes a FAIL report over the old one."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from parity import golden as golden_store
from parity.golden import GoldenError
from parity.registry import SPECS
from tests.test_parity_harness import TOY, ToyMlx

MODEL = "g-test"
FIX = f"make golden MODEL={MODEL}"


@pytest.fixture
def gdir(tmp_path):
    """A golden with a whole, a fingerprinted and a discrete tap, written by parity.golden."""
    rng = np.random.default_rng(0)
    taps = {"small": rng.standard_normal((4, 5)).astype(np.float32),
            "big": rng.standard_normal((1, 300, 40)).astype(np.float32),
            "codes": rng.integers(0, 9, (1, 6))}
    tensors, entries = golden_store.pack_case({"x": taps["small"]}, taps, discrete=("codes",))
    manifest = {"format_version": golden_store.FORMAT_VERSION, "model": MODEL,
                "cases": [{"name": "c", "inputs": {}, "taps": entries}]}
    golden_store.write(MODEL, manifest, {"c": tensors}, root=tmp_path)
    g = golden_store.read(MODEL, root=tmp_path)  # a clean golden reads
    assert isinstance(g.cases[0].taps["big"], golden_store.Fingerprint)
    return tmp_path


def edit(root, mutate, rehash: bool = True) -> None:
    """Apply `mutate` to the manifest; with `rehash`, store a matching manifest_sha256 (so the
    structure checks, not the hash, must catch the change)."""
    path = root / MODEL / "manifest.json"
    m = json.loads(path.read_text())
    mutate(m)
    if rehash:
        m["manifest_sha256"] = golden_store.manifest_digest(m)
    path.write_text(json.dumps(m))


def expect(root, *fragments: str) -> str:
    with pytest.raises(GoldenError) as e:
        golden_store.read(MODEL, root=root)
    msg = str(e.value)
    assert FIX in msg and str(root / MODEL) in msg, msg  # names the file and the fix
    for f in fragments:
        assert f in msg, msg
    return msg


def test_missing_golden(tmp_path):
    with pytest.raises(GoldenError, match=f"no golden for '{MODEL}'.*{FIX}"):
        golden_store.read(MODEL, root=tmp_path)


def test_bad_json(gdir):
    (gdir / MODEL / "manifest.json").write_text('{"format_version": 3, "cases": [')
    expect(gdir, "manifest.json is not valid JSON")


def test_json_that_is_not_an_object(gdir):
    (gdir / MODEL / "manifest.json").write_text("[1, 2]")
    expect(gdir, "holds a JSON list")


def test_other_format_version(gdir):
    edit(gdir, lambda m: m.update(format_version=2))
    expect(gdir, "format version 2", "reads 3 and 4")


def _mel_like():
    """A (300, 40) whole tap whose rows from 120 on are one value, as Whisper's log-mel of a
    padded window: format 4 stores 120 rows and the value."""
    a = np.random.default_rng(1).standard_normal((300, 40)).astype(np.float32)
    a[120:] = np.float32(-0.7056377)
    return a


def test_constant_tail_of_a_whole_tap_is_cut_and_rebuilt_bit_exact(tmp_path):
    mel = _mel_like()
    tensors, entries = golden_store.pack_case({}, {"mel": mel}, whole=("mel",))
    assert entries[0]["tail"] == {"from_row": 120, "value": float(np.float32(-0.7056377))}
    assert tensors["taps.mel"].shape == (120, 40)
    manifest = {"format_version": golden_store.FORMAT_VERSION, "model": MODEL,
                "cases": [{"name": "c", "inputs": {}, "taps": entries}]}
    golden_store.write(MODEL, manifest, {"c": tensors}, root=tmp_path)
    got = golden_store.read(MODEL, root=tmp_path).cases[0].taps["mel"]
    assert got.dtype == np.float32 and np.array_equal(got, mel)
    # a last row that differs in one element keeps the tap whole
    mel[-1, 3] += 1
    _, entries = golden_store.pack_case({}, {"mel": mel}, whole=("mel",))
    assert "tail" not in entries[0]
    # a tail that does not fit the shape is refused, naming the fix
    edit(tmp_path, lambda m: m["cases"][0]["taps"][0]["tail"].update(from_row=300))
    expect(tmp_path, "['tail']['from_row'] 300 does not fit shape [300, 40]")


def test_upgrade_rewrites_a_format_3_golden_losslessly(tmp_path):
    mel, rng = _mel_like(), np.random.default_rng(2)
    big = rng.standard_normal((1, 300, 40)).astype(np.float32)
    tensors, entries = golden_store.pack_case({"x": mel[:2]}, {"mel": mel, "big": big}, whole=("mel",))
    tensors["taps.mel"] = mel  # what format 3 stored: the whole tap
    entries[0].pop("tail")
    manifest = {"format_version": 3, "model": MODEL,
                "cases": [{"name": "c", "inputs": {}, "taps": entries}]}
    golden_store.write(MODEL, manifest, {"c": tensors}, root=tmp_path)
    before = golden_store.read(MODEL, root=tmp_path)  # format 3 still reads
    size3 = (tmp_path / MODEL / "c.safetensors").stat().st_size
    golden_store.upgrade(MODEL, root=tmp_path)
    after = golden_store.read(MODEL, root=tmp_path)
    assert after.manifest["format_version"] == golden_store.FORMAT_VERSION == 4
    assert np.array_equal(after.cases[0].taps["mel"], before.cases[0].taps["mel"])
    fp0, fp1 = before.cases[0].taps["big"], after.cases[0].taps["big"]
    assert np.array_equal(fp0.values, fp1.values) and np.array_equal(fp0.rows, fp1.rows)
    assert (tmp_path / MODEL / "c.safetensors").stat().st_size <= size3 - 180 * 40 * 4
    assert not [p for p in tmp_path.iterdir() if p.name != MODEL]  # no scratch left behind


def test_edited_summary_is_caught_by_the_manifest_hash(gdir):
    def bump(m):
        m["cases"][0]["taps"][1]["summary"]["l2"] *= 1.01

    edit(gdir, bump, rehash=False)
    expect(gdir, "changed after generation", "manifest_sha256")


def test_manifest_without_its_hash(gdir):
    edit(gdir, lambda m: m.pop("manifest_sha256"), rehash=False)
    expect(gdir, "no manifest_sha256")


@pytest.mark.parametrize("mutate,fragment", [
    (lambda m: m.pop("cases"), "manifest has no 'cases'"),
    (lambda m: m.update(cases={}), "manifest['cases'] is dict"),
    (lambda m: m.update(cases=[]), "lists no cases"),
    (lambda m: m["cases"].__setitem__(0, "c"), "cases[0] is str"),
    (lambda m: m["cases"][0].pop("taps"), "cases[0] has no 'taps'"),
    (lambda m: m["cases"][0].pop("sha256"), "cases[0] has no 'sha256'"),
    (lambda m: m["cases"][0].update(file=7), "cases[0]['file'] is int"),
    (lambda m: m["cases"][0].update(file="../c.safetensors"), "is not a file name"),
    (lambda m: m["cases"][0]["taps"][0].pop("shape"), "['taps'][0] has no 'shape'"),
    (lambda m: m["cases"][0]["taps"][0].update(shape="4x5"), "['taps'][0]['shape'] is str"),
    (lambda m: m["cases"][0]["taps"][0].update(shape=[5, 4]), "has shape (4, 5), "
                                                              "the manifest implies (5, 4)"),
    (lambda m: m["cases"][0]["taps"][0].update(kind="blob"), "['kind'] is 'blob'"),
    (lambda m: m["cases"][0]["taps"][1].pop("summary"), "['taps'][1] has no 'summary'"),
    (lambda m: m["cases"][0]["taps"][1]["summary"].update(l2="big"), "['l2'] is str"),
    (lambda m: m["cases"][0]["taps"][1]["grid"].pop("edge"), "['grid'] has no 'edge'"),
    (lambda m: m["cases"][0]["taps"][1]["grid"].update(width=41), "does not fit shape"),
    (lambda m: m["cases"][0]["taps"][1].update(indices="index.9"), "c.safetensors: no tensor 'index.9'"),
    (lambda m: m["cases"][0]["taps"][1].update(name="other"), "no tensor 'fp.other.rows'"),
    (lambda m: m["cases"][0]["taps"][2].update(name="nope"), "no tensor 'taps.nope'"),
])
def test_malformed_manifest(gdir, mutate, fragment):
    edit(gdir, mutate)
    expect(gdir, fragment)


def test_missing_case_file(gdir):
    (gdir / MODEL / "c.safetensors").unlink()
    expect(gdir, "c.safetensors listed in the manifest is missing")


def test_case_file_changed(gdir):
    f = gdir / MODEL / "c.safetensors"
    data = bytearray(f.read_bytes())
    data[-1] ^= 0xFF
    f.write_bytes(bytes(data))
    expect(gdir, "c.safetensors has sha256", "changed after generation")


def _rewrite_case(root, change) -> None:
    """Rewrite the case file with `change(tensors)` applied and every hash updated to match:
    the tensor checks, not the hashes, must catch it."""
    from safetensors.numpy import load_file, save_file

    f = root / MODEL / "c.safetensors"
    t = load_file(str(f))
    change(t)
    if t is not None:
        save_file(t, str(f))
    edit(root, lambda m: m["cases"][0].update(sha256=golden_store.sha256(f)))


@pytest.mark.parametrize("key", ["fp.big.rows", "fp.big.cols", "fp.big.edges", "fp.big.values",
                                 "index.1x300x40", "taps.small", "taps.codes"])
def test_missing_tensor(gdir, key):
    _rewrite_case(gdir, lambda t: t.pop(key))
    expect(gdir, f"c.safetensors: no tensor {key!r}")


@pytest.mark.parametrize("key,change,fragment", [
    ("fp.big.rows", lambda a: a[:, :-1].copy(), "has shape (4, 299), the manifest implies (4, 300)"),
    ("taps.codes", lambda a: a.astype(np.float32), "has dtype float32"),
    ("index.1x300x40", lambda a: a + 12_000, "is not a list of flat indices < 12000"),
])
def test_tensor_of_the_wrong_shape_dtype_or_range(gdir, key, change, fragment):
    _rewrite_case(gdir, lambda t: t.update({key: change(t[key])}))
    assert f"{key!r} {fragment}" in expect(gdir, "c.safetensors")


def test_case_file_that_is_not_safetensors(gdir):
    f = gdir / MODEL / "c.safetensors"
    f.write_bytes(b"not a safetensors file")
    edit(gdir, lambda m: m["cases"][0].update(sha256=golden_store.sha256(f)))
    expect(gdir, "c.safetensors: cannot be read as safetensors")


# ------------------------------------------------------------------------------------------
# a run that errors writes a FAIL report over the old one


def _boom(dtype):
    raise RuntimeError("boom while building the mlx side")


def _reference_error():
    raise golden_store.ParityError("reference side cannot load its weights (test)")


@pytest.mark.parametrize("how", ["exception", "parity_error", "golden_error", "interrupt"])
def test_an_errored_run_replaces_the_old_report_with_a_fail(how, tmp_path, monkeypatch, capsys):
    from parity import __main__ as cli
    from parity import registry

    monkeypatch.setitem(registry.REGISTRY, "toy-mlp", TOY)
    argv = ["run", "toy-mlp", "--no-golden", "--report-dir", str(tmp_path)]
    assert cli.main(argv) == 0  # a PASS report first
    md, js = tmp_path / "toy-mlp.md", tmp_path / "toy-mlp.json"
    assert json.loads(js.read_text())["passed"] and "**PASS**" in md.read_text()

    def interrupt(dtype):
        raise KeyboardInterrupt

    spec, args, want, code = {
        "exception": (dataclasses.replace(TOY, build_mlx=_boom), ["--no-golden"],
                      "RuntimeError: boom while building the mlx side", 1),
        "parity_error": (dataclasses.replace(TOY, build_reference=_reference_error),
                         ["--no-golden"], "ParityError: reference side cannot load", 1),
        "golden_error": (dataclasses.replace(TOY, build_mlx=lambda dt: ToyMlx(dt)),
                         ["--golden-only"], "GoldenError: no golden for 'toy-mlp'", 1),
        "interrupt": (dataclasses.replace(TOY, build_mlx=interrupt), ["--no-golden"],
                      "KeyboardInterrupt", 130),
    }[how]
    monkeypatch.setitem(registry.REGISTRY, "toy-mlp", spec)
    argv = ["run", "toy-mlp", *args, "--report-dir", str(tmp_path)]
    assert cli.main(argv) == code
    out = capsys.readouterr()
    assert f"FAIL (the run stopped on {want}" in out.out, out.out[-2000:]
    data = json.loads(js.read_text())
    assert data["passed"] is False and want in data["error"], data["error"]
    text = md.read_text()
    assert "**FAIL (the run stopped on" in text and f"ERROR: the run stopped on {want}" in text, text[:1000]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["toy-mlp.json", "toy-mlp.md"]


# ------------------------------------------------------------------------------------------
# the committed goldens

BUDGET_BYTES = 64 * 2 ** 20  # golden/README.md: 59.0 MiB for 51 specs in format 4 (2026-12-06)


def test_committed_goldens_stay_within_the_budget():
    files = [p for p in golden_store.ROOT.rglob("*") if p.is_file()]
    total = sum(p.stat().st_size for p in files)
    assert files and total <= BUDGET_BYTES, (
        f"golden/ holds {total / 2 ** 20:.1f} MiB, over its {BUDGET_BYTES / 2 ** 20:.0f} MiB "
        "budget (golden/README.md): shrink the fingerprints or store fewer cases")


@pytest.mark.parametrize("name", [s.name for s in SPECS])
def test_every_committed_golden_reads_with_this_harness(name):
    """Format version, manifest hash, structure and every file's sha256: a format change
    without `make golden MODEL=...` for every spec fails here, naming the command."""
    g = golden_store.read(name)
    assert g.cases and all(c.taps for c in g.cases)
