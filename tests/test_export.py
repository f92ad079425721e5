"""`python -m parity export` read back by its second reader, tools/check_export.py.

The export of whisper-test-tiny (seeded random weights, torch reference) is checked against our
MLX port through the standalone reader only; a planted error in the port must be named as the
first diverging tap, and a file changed after the export must be refused.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch", reason="the export runs the torch reference")

from parity import registry  # noqa: E402
from parity.export import bounded_slice, export, mlx_port, to_bfloat16_bits  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def _checker():
    """tools/check_export.py loaded from its file, as a porter would run it (not a package)."""
    spec = importlib.util.spec_from_file_location("check_export", ROOT / "tools" / "check_export.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["check_export"] = mod
    spec.loader.exec_module(mod)
    return mod


check_export = _checker()
SPEC = registry.get("whisper-test-tiny")


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    return export(SPEC, tmp_path_factory.mktemp("export") / "whisper-test-tiny", log=lambda m: None)


def test_the_checker_imports_nothing_from_the_project():
    src = (ROOT / "tools" / "check_export.py").read_text()
    imports = [line.split()[1] for line in src.splitlines()
               if line.startswith(("import ", "from "))]
    assert set(imports) <= {"__future__", "argparse", "hashlib", "importlib", "json", "sys",
                            "dataclasses", "pathlib", "numpy", "safetensors.numpy"}, imports


def test_manifest_lists_taps_in_order_with_files_hashed(exported):
    m = json.loads((exported / "manifest.json").read_text())
    assert m["schema_version"] == 1 and m["model"]["id"] == "whisper-test-tiny"
    case = m["cases"][0]
    assert [t["name"] for t in case["taps"]] == list(SPEC.taps)
    assert [t["index"] for t in case["taps"]] == list(range(len(SPEC.taps)))
    assert case["taps"][3]["key"] == "taps/003.encoder.embed"
    assert case["taps"][-1]["key"] == "outputs/logits.argmax"
    assert all(t["slice"] is None for t in case["taps"] if t["kind"] == "continuous")  # whole
    assert sorted(case["files"]) == ["bfloat16", "float16", "float32"]
    assert {f["name"] for f in m["files"]} == set(case["files"].values())
    # the key map traced from mlx_impl/whisper/convert.py: the conv kernels transposed
    km = {p["param"]: p for p in m["key_map"]["params"]}
    assert km["encoder.conv1.weight"]["transpose"] == [0, 2, 1]
    assert km["encoder.conv1.weight"]["upstream"] == "encoder.conv1.weight"
    assert "transpose" not in km["decoder.blocks.0.mlp.0.weight"]
    assert not m["key_map"]["dropped_upstream_keys"]
    assert all(p["upstream"] for p in m["key_map"]["params"])
    # exact outputs: the argmax ids, the same in the file and the manifest
    t = check_export.case_arrays(exported, case)
    np.testing.assert_array_equal(t["outputs/logits.argmax"], case["outputs"][0]["values"])


def test_our_port_passes_every_tap(exported):
    rep = check_export.check(exported, mlx_port, "float32")
    assert rep.passed, rep.first_divergence
    assert [r.name for r in rep.results] == list(SPEC.taps)
    assert max(r.max_abs for r in rep.results) > 0  # something was compared, not all zeros


def test_a_planted_error_is_named_as_the_first_diverging_tap(exported):
    def broken_port(manifest, dtype):
        port = mlx_port(manifest, dtype)
        block = port.side.model.encoder.blocks[1]
        fc2 = block.mlp[2]

        class Shifted:  # the second encoder block's MLP output + 1e-2
            def __call__(self, x):
                return fc2(x) + 1e-2

        block.mlp[2] = Shifted()
        return port

    rep = check_export.check(exported, broken_port, "float32")
    first = rep.first_divergence
    assert first is not None and first.name == "encoder.blocks.1.mlp", first
    assert all(r.passed for r in rep.results[:-1])
    assert first.max_abs == pytest.approx(1e-2, rel=1e-3)
    assert len(rep.results) == SPEC.taps.index("encoder.blocks.1.mlp") + 1  # stopped there


def test_the_cli_names_the_first_diverging_tap(exported, tmp_path, monkeypatch, capsys):
    (tmp_path / "planted_port.py").write_text(
        "from parity.export import mlx_port\n"
        "def port(manifest, dtype):\n"
        "    p = mlx_port(manifest, dtype)\n"
        "    p.side.model.decoder.ln.bias += 1e-2\n"
        "    return p\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert check_export.main([str(exported), "--port", "planted_port:port"]) == 1
    out = capsys.readouterr().out
    assert "FAIL: first diverging tap: decoder.ln (case fox, index 20)" in out


def test_half_precision_files_hold_the_rounded_taps(exported):
    m = check_export.load_export(exported)
    case = m["cases"][0]
    t32 = check_export.case_arrays(exported, case)
    for dtype, np_half in (("float16", np.float16), ("bfloat16", None)):
        half = check_export.case_arrays(exported, case, dtype)
        np.testing.assert_array_equal(half["inputs/audio"], t32["inputs/audio"])
        want = t32["taps/021.logits"]
        if np_half is not None:
            np.testing.assert_array_equal(half["taps/021.logits"], want.astype(np_half))
        else:
            got = half["taps/021.logits"]
            assert got.dtype == np.float32 and not np.array_equal(got, want)
            assert np.max(np.abs(got - want) / np.abs(want)) <= 2.0 ** -8
    # the float16 port passes against the float32 values with the float16 table
    assert check_export.check(exported, mlx_port, "float16").passed


def test_bfloat16_rounding_is_to_nearest_even():
    x = np.array([1.0, 1.0 + 2 ** -8, 1.0 + 3 * 2 ** -8, -2.5, 1e-40, np.inf], np.float32)
    bits = to_bfloat16_bits(x)
    back = (bits.astype(np.uint32) << 16).view(np.float32)
    np.testing.assert_array_equal(back[:4], [1.0, 1.0, 1.0 + 2 ** -6, -2.5])  # ties to even
    assert back[5] == np.inf and np.isnan((to_bfloat16_bits(np.array([np.nan], np.float32))
                                           .astype(np.uint32) << 16).view(np.float32)[0])


def test_a_changed_file_is_refused(exported, tmp_path):
    import shutil

    d = tmp_path / "copy"
    shutil.copytree(exported, d)
    f = d / "fox.float32.safetensors"
    raw = bytearray(f.read_bytes())
    raw[-1] ^= 1
    f.write_bytes(bytes(raw))
    with pytest.raises(check_export.ExportError, match="sha256"):
        check_export.load_export(d)
    assert check_export.main([str(d), "--port", "parity.export:mlx_port"]) == 2


def test_bounded_export_stores_a_strided_slice_and_still_checks(tmp_path):
    assert bounded_slice((1, 23, 51865), 65536) == [[0, 1, 1], [0, 23, 1], [0, 51865, 32]]
    # frames strided, every channel kept
    assert bounded_slice((1, 1500, 512), 65536) == [[0, 1, 1], [0, 1500, 16], [0, 512, 1]]
    assert bounded_slice((100, 64), 8192) is None
    d = export(SPEC, tmp_path / "bounded", max_elements=4096, dtypes=("float32",),
               log=lambda m: None)
    m = json.loads((d / "manifest.json").read_text())
    taps = {t["name"]: t for t in m["cases"][0]["taps"]}
    assert taps["mel"]["slice"] is None  # a front end the spec keeps whole
    assert taps["logits"]["slice"] == [[0, 1, 1], [0, 23, 1], [0, 51865, 512]]
    assert np.prod(taps["logits"]["stored_shape"]) <= 4096 and "channels" not in taps["logits"]
    # (1, 100, 64): every 2nd frame, every channel; plus the 10 largest channels at every frame
    blk = taps["encoder.blocks.1"]
    assert blk["slice"] == [[0, 1, 1], [0, 100, 2], [0, 64, 1]]
    assert blk["channels"]["stored_shape"] == [1, 100, 10]
    assert check_export.check(d, mlx_port, "float32").passed


def test_outlier_channels_catch_an_element_off_the_stride():
    rng = np.random.default_rng(0)
    want = rng.standard_normal((1, 8, 4)).astype(np.float32)
    want[..., 2] *= 50  # the outlier channel
    entry = {"index": 0, "name": "t", "kind": "continuous", "shape": [1, 8, 4],
             "slice": [[0, 1, 1], [0, 8, 2], [0, 4, 1]],
             "channels": {"key": "k", "indices": [2], "stored_shape": [1, 8, 1]},
             "tolerance": {"float32": {"atol": 1e-4, "rtol": 1e-5, "nmse_max": 1.0}}}
    got = want.copy()
    got[0, 3, 2] += 0.1  # an odd frame: not in the strided rows
    stored, channels = want[:, ::2], want[..., [2]]
    assert check_export.compare_tap("c", entry, want, stored, "float32", channels).passed
    r = check_export.compare_tap("c", entry, got, stored, "float32", channels)
    assert not r.passed and "outlier channels [2]" in r.note and "(0, 3, 0)" in r.note
    # the stride alone does not see it
    assert check_export.compare_tap("c", entry, got, stored, "float32", None).passed


def test_export_refuses_a_directory_that_is_not_an_export(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not a parity export"):
        export(SPEC, tmp_path, log=lambda m: None)
    assert (tmp_path / "notes.txt").exists()


def test_a_codec_export_carries_its_loader_key_map(tmp_path):
    """dac-test-tiny: the key map traced through mlx_impl.dac's loader (reader + converter)."""
    d = export(registry.get("dac-test-tiny"), tmp_path / "dac", dtypes=("float32",),
               log=lambda m: None)
    m = check_export.load_export(d)
    km = {p["param"]: p for p in m["key_map"]["params"]}
    assert m["key_map"]["converter"] == "mlx_impl/dac/convert.py"
    snake = km["decoder.block.0.res_unit1.snake1.alpha"]
    assert snake["upstream_shape"] == [1, 16, 1] and snake["reshape"] == [16]
    assert km["decoder.block.0.conv_t1.weight"]["transpose"] == [1, 2, 0]  # ConvTranspose1d
    assert km["encoder.conv1.weight"]["transpose"] == [0, 2, 1]
    assert not m["key_map"]["dropped_upstream_keys"]
    assert check_export.check(d, mlx_port, "float32").passed


def test_a_spec_without_a_key_map_says_so():
    from parity.export import key_map_for

    km = key_map_for(registry.get("wav2vec2-test-tiny"))
    assert km["available"] is False and "ModelSpec.key_map is None" in km["why"]
