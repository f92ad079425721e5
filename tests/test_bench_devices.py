"""Benchmarks off the CPU: which specs can time on the GPU, the dtypes each engine runs there,
the placement helpers' errors, and the GPU matrix's table."""

from __future__ import annotations

import pytest

from benchmarks import gpu_matrix
from benchmarks.runner import engine_dtypes
from parity.models import codec
from parity.registry import get


def test_codec_benches_list_the_gpu_and_torch_half_there():
    bench = get("encodec-test-tiny").bench
    assert bench.devices == ("cpu", "gpu")
    assert engine_dtypes(bench, ["mlx", "torch"], "float16", "gpu") == {
        "mlx": "float16", "torch": "float16"}
    # on the CPU the torch reference stays float32 (its CPU half path is not what users run)
    assert engine_dtypes(bench, ["mlx", "torch"], "float16", "cpu") == {
        "mlx": "float16", "torch": "float32"}
    for model in ("bigvgan-test-tiny", "vocos-mel-test-tiny", "snac-test-tiny", "mimi-test-tiny"):
        assert "gpu" in get(model).bench.devices, model


def test_a_bench_without_a_gpu_path_says_so():
    bench = get("wav2vec2-base-960h").bench
    with pytest.raises(ValueError, match=r"cannot run on 'gpu'; it runs on cpu"):
        engine_dtypes(bench, ["mlx", "torch"], "float32", "gpu")


def test_placement_errors_name_the_fix():
    import mlx.core as mx
    import torch

    with pytest.raises(ValueError, match="timed in float32 on the CPU, not float16"):
        codec.torch_on("cpu", "float16", torch.nn.Identity(), torch.zeros(1))
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        codec.torch_on("tpu", "float32", torch.nn.Identity())
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="no CUDA GPU on this machine"):
            codec.torch_on("gpu", "float32", torch.nn.Identity())
    if not mx.is_available(mx.gpu):
        with pytest.raises(RuntimeError, match="MLX has no GPU on this machine"):
            codec.mlx_on("gpu")


def test_stages_record_no_result_objects():
    # a dict-like result (transformers' EncodecEncoderOutput) would become the stage's facts
    calls = []
    stages = codec.encode_decode_stages(lambda: {"codes": [1, 2]},
                                        lambda codes: calls.append(codes) or {"audio": 0}, 1.0)
    assert [s.name for s in stages] == ["encode", "decode"]
    assert [s.run() for s in stages] == [None, None]
    assert calls == [{"codes": [1, 2]}]


def _run(model, precision, ours_s, torch_s, failed=None):
    def summary(t):
        return {"stages": {"decode": {"wall_s": {"median": t}}}, "peak_rss_bytes": 300 * 2**20,
                "mlx_peak_bytes": 100 * 2**20}
    summaries = {"mlx": summary(ours_s)} | ({} if torch_s is None else {"torch": summary(torch_s)})
    return {"model": model, "precision": precision,
            "report": {"summaries": summaries, "failed": failed or {}}}


def test_matrix_rows_and_markdown():
    rows = gpu_matrix.rows(_run("dac-44khz", "fp16", 0.010, 0.025))
    assert rows == [["dac-44khz", "decode", "fp16", "10.00", "25.00", "2.50x", "300 / 300",
                     "100", ""]]
    failed = gpu_matrix.rows(_run("mimi", "fp32", 0.010, None, {"torch": "RuntimeError: x\ny"}))
    assert failed[0][4:6] == ["-", "-"] and failed[0][-1] == "torch failed: RuntimeError: x"
    skipped = gpu_matrix.rows({"model": "snac-24khz", "precision": "fp32", "error": "deadline"})
    assert skipped[0][-1] == "not run: deadline"
    md = gpu_matrix.markdown({"benchmark": "b", "device": "gpu", "nvidia_smi": "NVIDIA H200",
                              "machine": {"cpu_model": "c", "logical_cores": 16, "python": "3"},
                              "versions": {}, "repeats": 5, "total_s": 12,
                              "runs": [_run("dac-44khz", "fp16", 0.010, 0.025)]})
    assert "| dac-44khz | decode | fp16 | 10.00 | 25.00 | 2.50x |" in md
    assert "NVIDIA H200" in md


def test_success_report_device_matrix_names_each_machine_once():
    from benchmarks import report

    def stage_rep(ours_s, peer_s):
        return {"summaries": {"mlx": {"stages": {"decode": {"wall_s": {"median": ours_s}}}},
                              "torch": {"stages": {"decode": {"wall_s": {"median": peer_s}}}}},
                "ours": "mlx"}
    cpu = {"kind": "stages", "dtype": "float32", "machine": {"cpu_model": "Xeon",
                                                             "logical_cores": 2},
           **stage_rep(2.0, 1.0)}
    gpu = {"runs": [{"model": "dac-44khz", "precision": "fp16", "report": stage_rep(0.01, 0.03)},
                    {"model": "mimi", "precision": "fp32", "error": "deadline"}],
           "nvidia_smi": "NVIDIA H200, 580, 143771 MiB"}
    dm = report.device_matrix({"dac-44khz": cpu, report.MATRIX_REPORT: gpu})
    assert dm["machines"] == {"cpu": "Xeon, 2 cores", "gpu": "NVIDIA H200"}
    assert [(r["model"], r["device"], r["precision"], round(r["peer_over_ours"], 2))
            for r in dm["rows"]] == [("dac-44khz", "cpu", "fp32", 0.5),
                                     ("dac-44khz", "gpu", "fp16", 3.0)]


def test_other_machines_paths_are_made_portable():
    from benchmarks.machine import portable_path

    got = portable_path('File "/opt/torch/.venv/lib/python3.12/site-packages/torch/nn/x.py", '
                        "/tmp/site/whisper/model.py --tokenizer-json /tmp/carry/tok.json "
                        "MLX_PTX_CACHE_DIR=/tmp/mlx_ptx a/tmp/b")
    assert got == ('File "site-packages/torch/nn/x.py", site-packages/whisper/model.py '
                   "--tokenizer-json <tmp>/carry/tok.json MLX_PTX_CACHE_DIR=<tmp>/mlx_ptx a/tmp/b")
