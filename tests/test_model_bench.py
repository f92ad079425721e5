"""The benchmark runner's per-stage path (benchmarks.runner, benchmarks.worker) with a fake spec:
the worker's measurement loop, per-stage summaries, ratios against ours, tables, Markdown and
errors, and one real run of a test-tiny spec in fresh processes.
No timed asserts: performance numbers live in reports/, not in tests."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from tests.helpers import assert_close

from benchmarks import runner, worker
from benchmarks.tts_peers import EngineUnavailable
from parity import registry
from parity.spec import BenchSpec, BenchStage

CALLS: dict[str, list[int]] = {}


def fake_build(engine: str, dtype: str, audio: np.ndarray) -> list[BenchStage]:
    """Two stages that record how often they ran and on what input length; the "mlx" engine
    computes with MLX (so its process has an MLX peak), the other with numpy."""
    if audio.ndim != 1 or audio.dtype != np.float32:
        raise ValueError("expected 1-D float32 audio")
    seconds = audio.size / 16000
    if engine == "mlx":  # imported while building, as a real MLX engine does
        import mlx.core as mx

    def stage(name):
        def run():
            CALLS.setdefault(f"{engine}.{name}", []).append(audio.size)
            if engine == "mlx":
                return mx.sum(mx.square(mx.array(audio))).item()
            return float(np.sum(audio * audio))
        return BenchStage(name, run, seconds)

    return [stage("encode"), stage("decode")]


@pytest.fixture
def fake_spec(monkeypatch):
    spec = dataclasses.replace(registry.get("whisper-test-tiny"), name="fake-bench",
                               bench=BenchSpec(engines=("mlx", "torch"), build=fake_build,
                                               audio_seconds=0.5))
    monkeypatch.setitem(registry.REGISTRY, "fake-bench", spec)
    CALLS.clear()
    return spec


def test_measure_runs_warmup_and_repeats(tmp_path, fake_spec):
    clip = tmp_path / "clip.npy"
    np.save(clip, np.full(8000, 0.1, dtype=np.float32))
    job = {"model": "fake-bench", "threads": 1, "clip": str(clip), "cache": str(tmp_path)}
    out = worker.measure(dict(job, engine="torch", dtype="float32", repeats=3))
    assert [s["name"] for s in out["stages"]] == ["encode", "decode"]
    assert [len(s["wall_s"]) for s in out["stages"]] == [3, 3]
    assert CALLS == {"torch.encode": [8000] * 4, "torch.decode": [8000] * 4}  # warm-up + 3
    assert out["peak_rss_bytes"] > 0 and out["load_s"] >= 0
    assert "facts" not in out["stages"][0]  # the stages return floats, not facts
    ours = worker.measure(dict(job, engine="mlx", dtype="float32", repeats=1))
    assert ours["mlx_peak_run_bytes"] >= 8000 * 4 and ours["blas"]["library"]
    assert ours["mlx_peak_bytes"] == max(ours["mlx_peak_load_bytes"], ours["mlx_peak_run_bytes"])
    assert CALLS["mlx.encode"] == [8000] * 2


def test_summaries_ratios_and_markdown():
    def result(engine, enc, dec):
        return {"engine": engine, "load_s": 0.5, "peak_rss_bytes": 100 * 2**20,
                "mlx_peak_bytes": None, "mlx_peak_run_bytes": None,
                "stages": [{"name": "encode", "audio_seconds": 10.0, "wall_s": enc},
                           {"name": "decode", "audio_seconds": 10.0, "wall_s": dec}]}
    s = {"mlx": runner.summarize_stages(result("mlx", [1.0, 2.0, 3.0], [0.5, 0.5, 0.5])),
         "torch": runner.summarize_stages(result("torch", [4.0, 4.0, 4.0], [0.25] * 3))}
    runner.add_ratios(s, "mlx")
    assert_close("ratios", [s["torch"]["stages"]["encode"]["time_vs_ours"],
                            s["torch"]["stages"]["decode"]["time_vs_ours"],
                            s["mlx"]["stages"]["encode"]["rtf"]["median"]],
                 [2.0, 0.5, 0.2], atol=1e-12)
    rep = {"kind": "stages", "summaries": s, "failed": {"other": "RuntimeError: boom"}}
    rows, columns = runner.report_table(rep)
    assert columns == runner.STAGE_COLUMNS
    assert [r[:2] for r in rows] == [["mlx", "encode"], ["mlx", "decode"], ["torch", "encode"],
                                     ["torch", "decode"], ["other", "FAILED: RuntimeError: boom"]]
    assert rows[2] == ["torch", "encode", "0.4000 [0.4000-0.4000]", "4.000 [4.000-4.000]", "2.00x",
                       "0.50", "100", "-"]
    assert rows[0][2:5] == ["0.2000 [0.1000-0.3000]", "2.000 [1.000-3.000]", "1.00x"]
    assert runner.headline(s, "mlx") == [
        "encode: torch takes 2.00x ours' time (ours is 2.00x faster)",
        "decode: torch takes 0.50x ours' time (ours is 2.00x slower)"]


def test_run_errors(fake_spec):
    with pytest.raises(ValueError, match="no BenchSpec"):
        runner.run("whisper-test-tiny")
    with pytest.raises(ValueError, match="unknown engines"):
        runner.run("fake-bench", engines=["onnx"])
    with pytest.raises(ValueError, match="repeats must be >= 1"):
        runner.run("fake-bench", repeats=0)
    with pytest.raises(ValueError, match="bench dtype"):
        runner.run("fake-bench", dtype="float16")


def test_run_tiny_spec_in_fresh_processes(tmp_path):
    """One real run: both engines of a test-tiny vocoder, each in its own process, one repeat."""
    rep = runner.run("vocos-mel-test-tiny", repeats=1, threads=1, command="test")
    assert rep["failed"] == {} and rep["kind"] == "stages" and rep["ours"] == "mlx"
    s = rep["summaries"]
    assert list(s) == ["mlx", "torch"] and all(list(x["stages"]) == ["vocode"] for x in s.values())
    mlx, torch = s["mlx"]["stages"]["vocode"], s["torch"]["stages"]["vocode"]
    assert mlx["wall_s"]["n"] == 1 and mlx["wall_s"]["median"] > 0
    assert_close("audio seconds", mlx["audio_seconds"], 10.0, atol=1e-9)
    assert_close("rtf", mlx["rtf"]["median"], mlx["wall_s"]["median"] / 10.0, atol=1e-12)
    assert_close("ratios", [mlx["time_vs_ours"], torch["time_vs_ours"]],
                 [1.0, torch["wall_s"]["median"] / mlx["wall_s"]["median"]], atol=1e-12)
    # MLX's own peak only where MLX ran; both processes' VmHWM
    assert s["mlx"]["mlx_peak_bytes"] >= s["mlx"]["mlx_peak_run_bytes"] > 0
    assert s["torch"]["mlx_peak_bytes"] is None and s["torch"]["peak_rss_bytes"] > 0
    js, md = runner.write(rep, tmp_path)
    text = md.read_text()
    assert "| engine | stage | RTF | wall s | time / ours |" in text and "| mlx | vocode |" in text
    assert json.loads(js.read_text())["summaries"]["torch"]["stages"]["vocode"][
        "time_vs_ours"] == torch["time_vs_ours"]


# --- text to speech (benchmarks/tts.py, benchmarks/tts_peers.py) ----------------------------

TTS_TOKENS = 14  # two Orpheus frames: a CI-sized run


def test_tts_bench_tiny_fresh_processes(tmp_path):
    """ours and the torch reference on orpheus-test-tiny, each in its own process, one repeat:
    both generate the same ids (same seed and noise), the same audio length, and the report's
    numbers are the facts' (tokens / wall time, audio seconds / wall time)."""
    rep = runner.run("orpheus-test-tiny", repeats=1, threads=1, engines=["mlx", "torch"],
                     cache=tmp_path, command="test", options={"max_tokens": TTS_TOKENS})
    assert rep["failed"] == {}, rep["failed"]
    assert rep["kind"] == "speech" and rep["ours"] == "mlx"
    s = rep["summaries"]
    assert list(s["mlx"]["stages"]) == ["synthesize", "stream"]
    assert list(s["torch"]["stages"]) == ["synthesize"]
    frames_s = 2 * 2048 / 24000  # two frames of the tiny SNAC (hop 512 x 4 per frame)
    for name in ("mlx", "torch"):
        st = s[name]["stages"]["synthesize"]
        assert st["n_tokens"] == [TTS_TOKENS] and st["stop"] == "max_tokens"
        assert_close(f"{name} audio s", st["audio_s"], [frames_s], atol=1e-9)
        assert_close(f"{name} tokens/s", st["tokens_per_s"]["median"],
                     TTS_TOKENS / st["wall_s"]["median"], rtol=1e-12)
        assert_close(f"{name} x real time", st["x_real_time"]["median"],
                     frames_s / st["wall_s"]["median"], rtol=1e-12)
    assert s["torch"]["stages"]["synthesize"]["same_ids_as_ours"] is True
    assert s["mlx"]["stages"]["synthesize"]["ids_sha256"] == \
        s["torch"]["stages"]["synthesize"]["ids_sha256"]
    stream = s["mlx"]["stages"]["stream"]
    assert 0 < stream["ttfa_s"]["median"] <= stream["wall_s"]["median"]
    assert_close("stream audio s", stream["audio_s"], [frames_s], atol=1e-9)
    assert s["mlx"]["mlx_peak_bytes"] > 0 and s["torch"]["mlx_peak_bytes"] is None
    plan = rep["plan"]
    assert plan["voice"] == "tara" and plan["options"]["max_tokens"] == TTS_TOKENS
    js, md = runner.write(rep, tmp_path)
    text = md.read_text()
    assert "| engine | stage | tokens | tokens/s |" in text and "| torch | synthesize |" in text
    assert "drifts 15-25 %" in text
    assert json.loads(js.read_text())["summaries"]["torch"]["stages"]["synthesize"][
        "same_ids_as_ours"] is True


def test_tts_bench_failed_engine_is_reported(tmp_path):
    """A peer that cannot run is a FAILED row with its reason, never a silent skip: here
    mlx-audio, not installed in this cache folder."""
    rep = runner.run("orpheus-test-tiny", repeats=1, threads=1, engines=["mlx-audio"],
                     cache=tmp_path, command="test", options={"max_tokens": TTS_TOKENS})
    assert list(rep["failed"]) == ["mlx-audio"] and rep["summaries"] == {}
    assert "setup_bench_peers.sh" in rep["failed"]["mlx-audio"]
    _, md = runner.write(rep, tmp_path)
    assert "**mlx-audio** FAILED: FileNotFoundError: mlx-audio 0.6.2 is not installed" \
        in md.read_text()


def test_tts_engine_errors(tmp_path, monkeypatch):
    """Wrong engine names and a reference module without TTS_REFERENCE are clear errors."""
    from benchmarks import tts

    with pytest.raises(ValueError, match="unknown engines"):
        runner.run("orpheus-test-tiny", engines=["onnx"], cache=tmp_path)
    with pytest.raises(ValueError, match="max_tokens >= 1"):
        tts.TTSRun(max_tokens=0)
    import reference.orpheus

    monkeypatch.delattr(reference.orpheus, "TTS_REFERENCE")
    with pytest.raises(EngineUnavailable, match="has no TTS_REFERENCE"):
        tts.build_torch({"package": "orpheus"}, "float32")


def test_speech_summaries_ratios_and_rows():
    def result(engine, walls, tokens, audio_s, ids, ttfa=None):
        facts = [{"n_tokens": tokens, "audio_s": audio_s, "stop": "max_tokens",
                  "ids_sha256": ids, **({"ttfa_s": ttfa} if ttfa else {})} for _ in walls]
        return {"engine": engine, "load_s": 0.5, "peak_rss_bytes": 100 * 2**20,
                "mlx_peak_bytes": None, "mlx_peak_run_bytes": None,
                "stages": [{"name": "synthesize", "audio_seconds": 0.0, "wall_s": walls,
                            "facts": facts}]}
    s = {"mlx": runner.summarize_speech(result("mlx", [1.0, 2.0, 4.0], 100, 2.0, "abc")),
         "torch": runner.summarize_speech(result("torch", [8.0, 8.0], 100, 2.0, "abc")),
         "peer": runner.summarize_speech(result("peer", [1.0], 50, 1.0, None, ttfa=0.25))}
    runner.add_speech_ratios(s, "mlx")
    mlx, torch, peer = (s[k]["stages"]["synthesize"] for k in ("mlx", "torch", "peer"))
    # tokens/s per call: 100, 50, 25 -> median 50; torch 12.5; x real time 2/2 = 1 median
    assert_close("tokens/s", [mlx["tokens_per_s"]["median"], torch["tokens_per_s"]["median"],
                              mlx["x_real_time"]["median"], mlx["rtf"]["median"],
                              torch["tokens_per_s_vs_ours"], torch["time_vs_ours"],
                              peer["tokens_per_s_vs_ours"], peer["ttfa_s"]["median"]],
                 [50.0, 12.5, 1.0, 1.0, 0.25, 4.0, 1.0, 0.25], rtol=1e-12)
    assert (mlx["same_ids_as_ours"], torch["same_ids_as_ours"], peer["same_ids_as_ours"]) == \
        (True, True, None)
    rows = runner.speech_rows(s, {"x": "RuntimeError: boom"})
    assert rows[1][:5] == ["torch", "synthesize", "100 (max_tokens)", "12.5 [12.5-12.5]", "0.25x"]
    assert rows[2][7] == "0.250" and rows[2][12] == "n/a" and rows[1][12] == "yes"
    assert rows[3][:2] == ["x", "FAILED: RuntimeError: boom"]
    assert runner.headline(s, "mlx") == [
        "synthesize: torch generates 12.5 tokens/s, 0.25x ours' (ours is 4.00x faster)",
        "synthesize: peer generates 50.0 tokens/s, 1.00x ours' (ours is 1.00x faster)"]


def test_mlx_audio_layout_tokenizer_and_snac_names(tmp_path):
    """The peer's prepared layout: the test tokenizer encodes as ours' Orpheus tokens, and SNAC's
    torch names and kernels map to mlx-audio's."""
    from transformers import AutoTokenizer

    from benchmarks.tts_peers import snac_to_mlx_audio, write_test_tokenizer
    from mlx_impl.orpheus.tokens import encode_text

    write_test_tokenizer(tmp_path / "tok", 128300)
    tok = AutoTokenizer.from_pretrained(str(tmp_path / "tok"))
    for text in ("tara: Hello there!", "Grüße, naïve café — ok?"):
        assert tok(text).input_ids == encode_text(text), text
    assert tok.convert_ids_to_tokens([128000, 128009, 128266]) == [
        "<|begin_of_text|>", "<|eot_id|>", "<custom_token_10>"]
    v = np.arange(24, dtype=np.float32).reshape(2, 3, 4)  # (out, in, k)
    out = snac_to_mlx_audio({
        "decoder.model.2.block.1.parametrizations.weight.original1": v,
        "decoder.model.2.block.1.parametrizations.weight.original0": np.ones((2, 1, 1)),
        "encoder.block.0.bias": np.zeros(2), "quantizer.quantizers.1.codebook.weight": v[0]})
    assert sorted(out) == ["decoder.model.layers.2.block.layers.1.weight_g",
                           "decoder.model.layers.2.block.layers.1.weight_v",
                           "encoder.block.layers.0.bias", "quantizer.quantizers.1.codebook.weight"]
    assert_close("weight_v (out, k, in)",
                 out["decoder.model.layers.2.block.layers.1.weight_v"], v.transpose(0, 2, 1))


def test_mlx_audio_outetts_tokenizer_and_dac_names(tmp_path):
    """The OuteTTS layout: the test tokenizer encodes OuteTTS's completion prompt text as ours'
    prompt ids, and the DAC's fused conv weights come back from mlx-audio's weight norm."""
    from transformers import AutoTokenizer

    from benchmarks.tts_peers import dac_to_mlx_audio, write_outetts_tokenizer
    from mlx_impl.layers.conv import torch_to_mlx_kernel
    from mlx_impl.outetts.tokens import prompt_ids

    write_outetts_tokenizer(tmp_path / "tok")
    tok = AutoTokenizer.from_pretrained(str(tmp_path / "tok"))
    text = "Hello, world. Grüße!"
    completion = f"<|im_start|>\n<|text_start|>{text}<|text_end|>\n<|audio_start|>\n"
    assert tok.encode(completion, add_special_tokens=False) == prompt_ids(text)
    assert tok.encode("<|c1_0|><|c2_1024|><|t_0.25|><|pitch_100|>", add_special_tokens=False) \
        == [128272, 128272 + 2 * 1025 - 1, 128272 + 2 * 1025 + 25, 128272 + 2 * 1025 + 1001 + 302]
    rng = np.random.default_rng(0)
    conv, conv_t = rng.standard_normal((4, 3, 7)), rng.standard_normal((3, 2, 8))
    out = dac_to_mlx_audio({
        "decoder.conv1.weight": conv, "decoder.block.0.conv_t1.weight": conv_t,
        "decoder.block.0.res_unit2.snake1.alpha": np.ones((1, 5, 1)),
        "encoder.block.1.conv1.bias": np.zeros(2), "decoder.snake1.alpha": np.ones((1, 3, 1))},
        n_blocks=4)
    assert sorted(out) == [
        "decoder.model.layers.0.weight_g", "decoder.model.layers.0.weight_v",
        "decoder.model.layers.1.block.layers.1.weight_g",
        "decoder.model.layers.1.block.layers.1.weight_v",
        "decoder.model.layers.1.block.layers.3.block.layers.0.alpha",
        "decoder.model.layers.5.alpha", "encoder.block.layers.2.block.layers.4.bias"]
    for base, w, t, axes in (("decoder.model.layers.0", conv, False, (1, 2)),
                             ("decoder.model.layers.1.block.layers.1", conv_t, True, (0, 1))):
        v, g = out[base + ".weight_v"], out[base + ".weight_g"]
        rebuilt = g * v / np.sqrt((v.astype(np.float64) ** 2).sum(axis=axes, keepdims=True))
        assert_close(base, rebuilt, torch_to_mlx_kernel(w.astype(np.float32), t), rtol=1e-6)
    assert out["decoder.model.layers.5.alpha"].shape == (1, 1, 3)


@pytest.mark.slow
@pytest.mark.parametrize("model", ["orpheus-test-tiny", "outetts-1.0-1b-test-tiny",
                                   "csm-test-tiny", "marvis-test-tiny", "dia-test-tiny"])
def test_tts_bench_mlx_audio_peer(model, tmp_path):
    """mlx-audio 0.6.2 runs both tiny models on the seeded checkpoint (its prompt equal to ours,
    checked by the engine), when `scripts/setup_bench_peers.sh` installed it."""
    from benchmarks.prepare import DEFAULT_CACHE
    from benchmarks.tts_peers import VERSION, installed_version

    if installed_version(DEFAULT_CACHE) != VERSION:
        pytest.skip(f"mlx-audio {VERSION} is not installed in the bench cache "
                    "(scripts/setup_bench_peers.sh)")
    (tmp_path / "peers").symlink_to(DEFAULT_CACHE / "peers")  # the installed peer, a fresh plan
    per = FAMILY_RUNS[model][1] if model in FAMILY_RUNS else 1  # ids per counted step
    n = 48 if model == "dia-test-tiny" else TTS_TOKENS  # its Dia drops 30 rows of audio
    rep = runner.run(model, repeats=1, threads=1, engines=["mlx-audio"], cache=tmp_path,
                     command="test", options={"max_tokens": n})
    assert rep["failed"] == {}, rep["failed"]
    st = rep["summaries"]["mlx-audio"]["stages"]
    assert list(st) == (["synthesize"] if model == "dia-test-tiny" else ["synthesize", "stream"])
    assert 0 < st["synthesize"]["n_tokens"][0] <= n * per
    assert st["synthesize"]["n_tokens"][0] % per == 0 and st["synthesize"]["audio_s"][0] > 0
    if "stream" in st:
        assert 0 < st["stream"]["ttfa_s"]["median"] <= st["stream"]["wall_s"]["median"]


@pytest.mark.slow
def test_mlx_audio_dac_layout_decodes_as_ours(tmp_path):
    """mlx-audio's DAC loaded strictly from the prepared layout decodes codes as ours' DAC does
    (measured 2026-12-05 on outetts-1.0-1b-test-tiny: max |diff| 8.9e-7 at rms 0.156)."""
    import sys

    from benchmarks import tts_peers
    from benchmarks.prepare import DEFAULT_CACHE
    from benchmarks.tts import prepare_plan

    if tts_peers.installed_version(DEFAULT_CACHE) != tts_peers.VERSION:
        pytest.skip("mlx-audio 0.6.2 is not installed in the bench cache "
                    "(scripts/setup_bench_peers.sh)")
    (tmp_path / "peers").symlink_to(DEFAULT_CACHE / "peers")
    plan = prepare_plan("outetts-1.0-1b-test-tiny", tmp_path, max_tokens=TTS_TOKENS)
    folder = tts_peers.prepare(plan, tmp_path) / "dac"
    sys.path.insert(0, str(tts_peers.peer_dir(DEFAULT_CACHE)))
    try:
        import mlx.core as mx
        from mlx_audio.codec.models.descript.dac import DAC
    finally:
        sys.path.pop(0)
    from mlx_impl.outetts.load import load_tts

    theirs = DAC(**json.loads((folder / "config.json").read_text()))
    theirs.load_weights(str(folder / "model.safetensors"), strict=True)
    codes = np.random.default_rng(0).integers(0, 1024, (2, 40))
    want = load_tts(plan["folder"]).decode(codes)
    got = np.array(theirs.decode(theirs.quantizer.from_codes(mx.array(codes[None]))[0]))
    assert_close("mlx-audio DAC vs ours", got.reshape(-1), want, atol=1e-5)


# Dia (rows x 9 channels; max_tokens >= 17 rows: one frame, the eos row, the 15-row delayed
# tail) and CSM / Marvis (frames x 8 codebooks in the tiny models)
FAMILY_RUNS = {"dia-test-tiny": (20, 9), "csm-test-tiny": (6, 8), "marvis-test-tiny": (6, 8)}


@pytest.mark.parametrize("model", list(FAMILY_RUNS))
def test_tts_bench_torch_ids_equal_ours(model, tmp_path):
    """ours and the torch reference (`reference.<package>.TTS_REFERENCE.speak`) in fresh
    processes generate the same ids (the facts' sha256 and head), counted as benchmarks/tts.py
    says (Dia: rows x 9; CSM/Marvis: frames x codebooks), with the same stop and audio length."""
    max_tokens, per_step = FAMILY_RUNS[model]
    rep = runner.run(model, repeats=1, threads=1, engines=["mlx", "torch"], cache=tmp_path,
                     command="test", options={"max_tokens": max_tokens})
    assert rep["failed"] == {}, rep["failed"]
    ours, torch = (rep["summaries"][e]["stages"]["synthesize"] for e in ("mlx", "torch"))
    assert ours["n_tokens"] == torch["n_tokens"] == [max_tokens * per_step]
    assert ours["stop"] == torch["stop"] == "max_tokens"
    assert ours["ids_sha256"] == torch["ids_sha256"] and torch["same_ids_as_ours"] is True
    heads = [rep["engines"][e]["stages"][0]["facts"][0]["ids_head"] for e in ("mlx", "torch")]
    assert heads[0] == heads[1] and len(set(heads[0])) > 1
    assert_close("audio s", torch["audio_s"], ours["audio_s"], atol=1e-9)
    assert ours["audio_s"][0] > 0
    assert rep["plan"]["counting"].startswith("decoder rows" if model.startswith("dia")
                                              else "frames x codebooks")
    if model != "dia-test-tiny":  # CSM streams: the same frames, counted the same way
        stream = rep["summaries"]["mlx"]["stages"]["stream"]
        assert stream["n_tokens"] == ours["n_tokens"]
        assert_close("stream audio s", stream["audio_s"], ours["audio_s"], atol=1e-9)


@pytest.mark.parametrize("model", ["dia-test-tiny", "csm-test-tiny"])
def test_tts_bench_missing_peer_is_failed(model, tmp_path):
    """mlx-audio not installed in this cache folder: the Dia and CSM peers are a FAILED row
    with the reason and the fix, never a silent skip; a family without an adapter says so."""
    rep = runner.run(model, repeats=1, threads=1, engines=["mlx-audio"], cache=tmp_path,
                     command="test", options={"max_tokens": 20})
    assert list(rep["failed"]) == ["mlx-audio"] and rep["summaries"] == {}
    assert "setup_bench_peers.sh" in rep["failed"]["mlx-audio"]
    _, md = runner.write(rep, tmp_path)
    assert "**mlx-audio** FAILED: FileNotFoundError: mlx-audio 0.6.2 is not installed" \
        in md.read_text()
    from benchmarks import tts_peers

    (tmp_path / "peers" / "mlx-audio-0.6.2" / "mlx_audio").mkdir(parents=True)
    with pytest.raises(EngineUnavailable, match="no mlx-audio adapter for 'vits'"):
        tts_peers.prepare({"package": "vits"}, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("model", ["csm-test-tiny", "marvis-test-tiny"])
def test_mlx_audio_sesame_layout_greedy_as_ours(model, tmp_path):
    """mlx-audio's Sesame and Mimi loaded strictly from the prepared layout: its Mimi decodes
    codes as ours' Mimi, and greedy generation (argmax behind the codec mask, through its own
    generate) gives ours' greedy audio, so the renamed weights (q/k rows in its RoPE layout
    included) compute ours' frames."""
    import sys

    from benchmarks import tts_peers
    from benchmarks.prepare import DEFAULT_CACHE
    from benchmarks.tts import prepare_plan

    if tts_peers.installed_version(DEFAULT_CACHE) != tts_peers.VERSION:
        pytest.skip("mlx-audio 0.6.2 is not installed in the bench cache "
                    "(scripts/setup_bench_peers.sh)")
    (tmp_path / "peers").symlink_to(DEFAULT_CACHE / "peers")
    plan = prepare_plan(model, tmp_path, max_tokens=6)
    folder = tts_peers.prepare(plan, tmp_path)
    sys.path.insert(0, str(tts_peers.peer_dir(DEFAULT_CACHE)))
    try:
        import mlx.core as mx
        from mlx_audio.tts.utils import load_model
        greedy_plan = plan | {"cache": str(tmp_path),
                              "options": dict(plan["options"], temperature=0.0, top_k=0)}
        tts_peers.build_csm(greedy_plan, "float32", folder)  # its Mimi redirected, prompt checked
        theirs = load_model(folder, strict=True)
    finally:
        sys.path.pop(0)
    from mlx_impl.csm.load import load_tts
    from mlx_impl.tts import SamplingOptions

    ours = load_tts(plan["folder"])
    codebook = json.loads((folder / "mimi" / "config.json").read_text())["codebook_size"]
    codes = np.random.default_rng(0).integers(0, codebook, (8, 24))
    assert_close("mlx-audio Mimi vs ours", np.array(theirs._audio_tokenizer.decode(
        mx.array(codes[None]))).reshape(-1), ours.decode(codes.T), atol=2e-5)
    # the parts where a wrong RoPE layout would show (the greedy frames and the codec's
    # layer-scaled transformer barely feel it): Mimi's decoder transformer's residual update,
    # codebook 0's logits over the prompt, the depth decoder's logits of one frame
    rng = np.random.default_rng(1)
    # small inputs (the layers normalise them) keep out - x free of float32 cancellation
    x = mx.array(0.01 * rng.standard_normal((1, 40, ours.mimi.cfg.hidden_size)).astype(
        np.float32))
    mimi = theirs._audio_tokenizer.decoder_transformer
    got = mimi(x.swapaxes(1, 2), cache=mimi.make_cache())[0]
    got = got.swapaxes(1, 2) if got.shape[1] != x.shape[1] else got
    assert_close("Mimi decoder transformer update", np.array(got - x),
                 np.array(ours.mimi.decoder_transformer(x) - x), k_rms=1e-4)
    m, sm = ours.model, theirs.model
    ids = np.array(plan["prompt"])
    h = m.backbone(m.embed_prompt(ids, np.zeros((0, 8), np.int64)), m.new_cache())
    tokens = mx.zeros((1, ids.size, 9), mx.int32)
    tokens[..., -1] = mx.array(ids[None])
    emb = sm._embed_tokens(tokens) * (mx.arange(9) == 8)[None, None, :, None]
    from mlx_audio.lm.models.cache import make_prompt_cache
    h_theirs = sm.backbone(emb.sum(axis=2), cache=make_prompt_cache(sm.backbone))
    assert_close("codebook 0 logits", np.array(sm.codebook0_head(h_theirs)),
                 np.array(m.logits0(h)), k_rms=1e-4)
    frame = rng.integers(0, codebook, (1, 8))
    want_depth = m.depth_teacher(h[:, -1], mx.array(frame))  # (1, 7, V)
    dx = mx.concatenate([h_theirs[:, -1:]] + [sm._embed_audio(k, mx.array(frame[:, k:k + 1]))
                                              for k in range(7)], axis=1)
    dh = sm.decoder(sm.projection(dx), cache=make_prompt_cache(sm.decoder))
    got_depth = mx.stack([dh[0, k] @ sm.audio_head[k - 1] for k in range(1, 8)])[None]
    assert_close("depth decoder logits", np.array(got_depth), np.array(want_depth), k_rms=1e-4)
    want = ours.synthesize(plan["text"], 0, options=SamplingOptions(temperature=0.0,
                                                                    max_tokens=6))
    allowed = mx.arange(theirs.model.args.audio_vocab_size) < codebook
    got = np.concatenate([np.array(r.audio) for r in theirs.generate(
        plan["text"], voice=None, speaker=0, context=[], split_pattern=None,
        sampler=lambda x: mx.argmax(mx.where(allowed, x, -mx.inf), axis=-1),
        max_audio_length_ms=6 * 80.0)])
    assert want.meta["stop"] == "max_tokens" and got.shape == want.audio.shape
    # float rounding through the two Mimi decoders: measured 2026-12-05 under pytest, needed
    # k_rms 1.3e-4 (max |diff| 3.1e-4 at rms 2.4; 3.3e-6 in a plain script); one different
    # frame moves the audio by O(rms), so 1e-3 x rms still tells equal frames apart
    assert_close("mlx-audio greedy audio vs ours", got, want.audio, atol=2e-5, k_rms=1e-3)


@pytest.mark.slow
def test_mlx_audio_dia_layout_as_ours(tmp_path):
    """mlx-audio's Dia loaded strictly from the prepared nari-labs layout: its encoder output
    equals ours', its teacher-forced logits equal ours' once its cross-attention RoPE (its own
    model difference, benchmarks/tts_peers.py) is switched off and differ with it, and its DAC
    decodes as ours'."""
    import sys

    from benchmarks import tts_peers
    from benchmarks.prepare import DEFAULT_CACHE
    from benchmarks.tts import prepare_plan

    if tts_peers.installed_version(DEFAULT_CACHE) != tts_peers.VERSION:
        pytest.skip("mlx-audio 0.6.2 is not installed in the bench cache "
                    "(scripts/setup_bench_peers.sh)")
    (tmp_path / "peers").symlink_to(DEFAULT_CACHE / "peers")
    plan = prepare_plan("dia-test-tiny", tmp_path, max_tokens=48)
    folder = tts_peers.prepare(plan, tmp_path)
    sys.path.insert(0, str(tts_peers.peer_dir(DEFAULT_CACHE)))
    try:
        import mlx.core as mx
        from mlx_audio.tts.utils import load_model
        tts_peers.build_dia(plan | {"cache": str(tmp_path)}, "float32", folder)  # DAC redirected
        theirs = load_model(folder, strict=True)
    finally:
        sys.path.pop(0)
    from mlx_impl.dia.load import load_tts
    from mlx_impl.dia.tokens import delayed
    from mlx_impl.taps import Taps

    ours = load_tts(plan["folder"])
    rng = np.random.default_rng(0)
    rows = delayed(rng.integers(0, 1024, (10, 9)), ours.model.config.delay_pattern, 1026,
                   1025)[None]
    ids = np.array([plan["prompt"]])
    taps = Taps()
    want = np.array(ours.model.forward(ids, rows, taps))  # (1, T, C, V)
    src, tgt = mx.array(ids.astype(np.int32)), mx.array(rows.astype(np.int32))
    sp, tp = mx.arange(ids.shape[1])[None], mx.arange(rows.shape[1])[None]
    smask, tmask = src != 0, mx.any(tgt != 1025, axis=2)
    enc_mask = theirs._create_attn_mask(smask, smask)
    assert_close("encoder output", np.array(theirs.model.encoder(
        x_ids=src, src_positions=sp, deterministic=True, attn_mask=enc_mask)),
        np.array(taps["model.encoder.norm"]), k_rms=1e-5)

    def logits():
        out = theirs.model(src, tgt, sp, tp, enc_mask,
                           theirs._create_attn_mask(tmask, tmask, is_causal=True),
                           theirs._create_attn_mask(tmask, smask), enable_dropout=False)
        return np.array(out).reshape(want.shape)
    with_rope = logits()
    for layer in theirs.model.decoder.layers:
        layer.cross_attention.rotary_emb = lambda x, position: x
    # measured 2026-12-05: max |diff| 1.7e-6 at rms 1.0 without its cross-attention RoPE,
    # 0.048 with it
    assert_close("logits (its cross-attention RoPE off)", logits(), want, k_rms=1e-5)
    assert np.abs(with_rope - want).max() > 1e-3
    codes = rng.integers(0, 1024, (9, 30))
    dac = theirs.dac_model
    assert_close("mlx-audio DAC vs ours", np.array(dac.decode(dac.quantizer.from_codes(
        mx.array(codes[None]))[0])).reshape(-1), ours.decode(codes), atol=1e-5)
