"""The audio server (mlx_impl/server) through the real `openai` client, against a live uvicorn on
127.0.0.1: every transcription response format and timestamp granularity, SSE transcription,
translation, speech in every format (plain and `with_streaming_response`, and SSE), the model
list; transcripts equal the Whisper CLI's on the same clips; TTS speech transcribed back.

Whisper requests pass the server's `beam_size=none` extension (greedy, ~3x faster than the
default beam of 5 on this 2-core machine) and the CLI gets `--beam-size none` to match; the
server's default equals the CLI's default (`whisper_options` in app.py) otherwise.
"""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest

from server_helpers import (
    FOX,
    ROOT,
    WEATHER,
    assert_error,
    client,
    live_server,
    orpheus_tiny,
    server_deps,
    wav2vec2_folder,
)

server_deps()

import openai  # noqa: E402
import soundfile as sf  # noqa: E402

from mlx_impl.server.app import ServerConfig  # noqa: E402

GREEDY = {"beam_size": "none"}
TTS = "orpheus-test-tiny"
FAST_TTS = {"max_tokens": 21}  # 3 Orpheus frames: 3 x 2048 samples at 24 kHz


@pytest.fixture(scope="module")
def server():
    import parity.models.parakeet as P
    import parity.models.voxtral as V

    orpheus_tiny()
    config = ServerConfig(stt_models={"wav2vec2-test-tiny": str(wav2vec2_folder()),
                                      "parakeet-tdt-test-tiny": str(P.checkpoint(P.TDT_TINY)),
                                      "voxtral-test-tiny": str(V.checkpoint(V.TEST_TINY_CONFIG))})
    with live_server(config) as (base, app):
        yield base, app


@pytest.fixture(scope="module")
def api(server):
    return client(server[0])


def cli(argv: list[str], capsys) -> str:
    """stdout of `python -m mlx_impl.whisper ...`, run in this process."""
    from mlx_impl.whisper.__main__ import main

    capsys.readouterr()
    assert main([*argv, "--no-progress"]) == 0
    return capsys.readouterr().out


def test_models_list_and_retrieve(api):
    ids = {m.id for m in api.models.list()}
    assert {"whisper-tiny.en", TTS, "wav2vec2-test-tiny"} <= ids, ids
    card = api.models.retrieve("whisper-tiny.en")
    assert (card.id, card.object, card.owned_by) == ("whisper-tiny.en", "model",
                                                     "mlx-audio-parity")
    with pytest.raises(openai.NotFoundError) as e:
        api.models.retrieve("no-such-model")
    assert_error(e.value, 404, "model_not_found", "model")


def test_transcripts_equal_the_cli(api, shared_clips, capsys):
    clips = {c["id"]: c["path"] for c in shared_clips}
    jfk, libri = clips["jfk_inaugural_1961"], clips["librispeech_dev_1272-128104-0000"]
    # text format: the CLI's txt output, byte for byte
    with open(jfk, "rb") as f:
        text = api.audio.transcriptions.create(model="whisper-tiny.en", file=f,
                                               response_format="text", extra_body=GREEDY)
    want = cli([str(jfk), "--model", "whisper-tiny.en", "--beam-size", "none"], capsys)
    assert text == want and "ask not what your country can do for you" in text
    # verbose_json: the CLI's json segments
    with open(libri, "rb") as f:
        verbose = api.audio.transcriptions.create(model="whisper-tiny.en", file=f,
                                                  response_format="verbose_json",
                                                  extra_body=GREEDY)
    ref = json.loads(cli([str(libri), "--model", "whisper-tiny.en", "--beam-size", "none",
                          "-f", "json"], capsys))
    assert verbose.text == ref["text"].strip() and verbose.language == "english"
    assert [(s.id, s.seek, s.start, s.end, s.text, s.tokens) for s in verbose.segments] == \
        [(s["id"], s["seek"], s["start"], s["end"], s["text"], s["tokens"])
         for s in ref["segments"]]
    assert verbose.duration == pytest.approx(93680 / 16000, abs=1e-3)
    assert verbose.usage.seconds == 6 and verbose.words is None


def test_every_format_and_granularity_agree(api):
    from mlx_impl.stt import Transcription
    from mlx_impl.whisper import writers

    def create(**kw):
        with open(FOX, "rb") as f:
            return api.audio.transcriptions.create(model="whisper-tiny.en", file=f,
                                                   extra_body=GREEDY, **kw)

    both = create(response_format="verbose_json", timestamp_granularities=["word", "segment"])
    assert both.segments and both.words
    # words: OpenAI's shape (no leading space), in order, inside the segments' span
    assert " ".join(w.word for w in both.words) == both.text
    starts = [w.start for w in both.words]
    assert starts == sorted(starts) and both.words[-1].end <= both.segments[-1].end + 0.5
    # segment times move when words are timed (upstream's seek rule), so the writers'
    # formats are checked against a segment-only verbose_json
    segments = create(response_format="verbose_json")
    assert segments.words is None
    result = Transcription.from_dict({
        "text": " " + segments.text, "language": "en",
        "segments": [s.model_dump() for s in segments.segments]})
    assert create(response_format="srt") == writers.render(result, "srt")
    assert create(response_format="vtt") == writers.render(result, "vtt")
    assert create().text == segments.text  # json
    # SSE: one delta per decoded segment, then done with the whole text
    with open(FOX, "rb") as f:
        events = list(api.audio.transcriptions.create(model="whisper-tiny.en", file=f,
                                                      stream=True, extra_body=GREEDY))
    deltas = [e.delta for e in events if e.type == "transcript.text.delta"]
    assert [e.type for e in events][-1] == "transcript.text.done"
    assert len(deltas) == len(segments.segments)
    assert "".join(deltas) == events[-1].text == segments.text


def _translate_de(api, shared_clips) -> tuple[str, str]:
    de = {c["id"]: c["path"] for c in shared_clips}["picovoice_test_de"]
    with open(de, "rb") as f:
        out = api.audio.translations.create(model="whisper-base", file=f,
                                            response_format="text", extra_body=GREEDY)
    return de, out


@pytest.mark.slow  # whisper-base twice: ~30 s on 2 busy cores (measured 2026-12-05)
def test_translation_equals_the_cli(api, shared_clips, capsys):
    de, out = _translate_de(api, shared_clips)
    want = cli([str(de), "--model", "whisper-base", "--task", "translate", "--beam-size",
                "none"], capsys)
    assert out == want


def test_translation(api, shared_clips):
    de, out = _translate_de(api, shared_clips)
    # the clip says "Der hinter diesem Portal liegenden Raum wurde als Leichenhalle genutzt."
    assert out.isascii() and "used" in out.lower(), out  # English words, not German
    with open(de, "rb") as f, pytest.raises(openai.BadRequestError) as e:
        api.audio.translations.create(model="whisper-tiny.en", file=f, extra_body=GREEDY)
    assert_error(e.value, 400, "invalid_value", "model")
    assert "English-only" in e.value.message


def test_wav2vec2_through_the_server_equals_the_model(api):
    from mlx_impl.wav2vec2.transcribe import Wav2Vec2Transcriber

    want = Wav2Vec2Transcriber.from_pretrained(wav2vec2_folder()).transcribe(str(WEATHER))
    with open(WEATHER, "rb") as f:
        got = api.audio.transcriptions.create(model="wav2vec2-test-tiny", file=f,
                                              response_format="verbose_json",
                                              timestamp_granularities=["word"])
    assert got.text == want.text.strip() and got.text  # random weights: gibberish, but fixed
    assert got.segments is None  # word granularity alone: words, no segments
    assert [w.word for w in got.words] == [w.word.strip() for w in want.segments[0].words]


def test_parakeet_and_voxtral_through_the_server_equal_the_models(api, server):
    import parity.models.parakeet as P
    import parity.models.voxtral as V
    from mlx_impl.parakeet.load import load
    from mlx_impl.parakeet.tokenizer import PieceTokenizer
    from mlx_impl.parakeet.transcribe import ParakeetTranscriber
    from mlx_impl.voxtral.transcribe import VoxtralTranscriber

    model, w = load(P.checkpoint(P.TDT_TINY))
    parakeet = ParakeetTranscriber(model, PieceTokenizer(w.vocab, model.config.blank_token_id))
    voxtral = VoxtralTranscriber.from_pretrained(V.checkpoint(V.TEST_TINY_CONFIG))
    for name, stt in (("parakeet-tdt-test-tiny", parakeet), ("voxtral-test-tiny", voxtral)):
        want = stt.transcribe(str(FOX))
        with open(FOX, "rb") as f:
            got = api.audio.transcriptions.create(model=name, file=f, response_format="text")
        assert got == (want.text.strip() + "\n" if want.text else ""), name
        with open(FOX, "rb") as f, pytest.raises(openai.BadRequestError) as e:
            api.audio.transcriptions.create(model=name, file=f, prompt="a prompt")
        assert_error(e.value, 400, "invalid_value", "prompt")
    with open(FOX, "rb") as f:
        words = api.audio.transcriptions.create(model="parakeet-tdt-test-tiny", file=f,
                                                response_format="verbose_json",
                                                timestamp_granularities=["word"]).words
    assert [w.word for w in words] == [w.word.strip() for s in parakeet.transcribe(str(FOX))
                                       .segments for w in s.words]


def _decode(data: bytes, fmt: str) -> tuple[np.ndarray, int]:
    """Samples of an encoded file: soundfile for wav/flac, ffmpeg (load_audio) for the rest."""
    if fmt in ("wav", "flac"):
        audio, sr = sf.read(io.BytesIO(data), dtype="int16")
        return audio, sr
    from mlx_impl.server.audio import decode_upload

    return decode_upload(data, f"speech.{fmt}"), 16000


def test_speech_every_format_plain_and_streamed(api):
    from mlx_impl.server.audio import pcm16
    from mlx_impl.tts.models import load

    tts = load(TTS)
    options = tts.defaults.__class__(**{**tts.defaults.__dict__, "max_tokens": 21})
    want = tts.synthesize("Hello there", "tara", options=options, seed=0)
    assert want.audio.shape == (6144,)
    for fmt in ("wav", "flac", "pcm", "mp3", "opus", "aac"):
        plain = api.audio.speech.create(model=TTS, input="Hello there", voice="tara",
                                        response_format=fmt, extra_body=FAST_TTS).content
        with api.audio.speech.with_streaming_response.create(
                model=TTS, input="Hello there", voice="tara", response_format=fmt,
                extra_body=FAST_TTS) as resp:
            assert resp.headers["x-sample-rate"] == "24000"
            streamed = b"".join(resp.iter_bytes())
        assert streamed == plain, fmt  # seed 0 both times: the same bytes
        if fmt == "pcm":
            assert plain == pcm16(want.audio)
            continue
        audio, sr = _decode(plain, fmt)
        if fmt in ("wav", "flac"):  # lossless: the pcm samples
            assert sr == 24000
            np.testing.assert_array_equal(audio, np.frombuffer(pcm16(want.audio), "<i2"))
        else:  # lossy, at 16 kHz after decoding: the duration (codec padding aside)
            # codec padding, measured 2026-12-05 on 6144 samples at 24 kHz -> 4096 at 16 kHz:
            # mp3 +896 samples, opus +0, aac +683
            assert 4096 <= audio.shape[0] <= 4096 + 1600, (fmt, audio.shape)
            assert np.abs(audio).max() > 0.01


def test_speech_speed_sse_and_round_trip(api):
    wav = api.audio.speech.create(model=TTS, input="Hello there", voice="tara",
                                  response_format="wav", extra_body=FAST_TTS).content
    fast = api.audio.speech.create(model=TTS, input="Hello there", voice="tara",
                                   response_format="wav", speed=2.0, extra_body=FAST_TTS).content
    slow = api.audio.speech.create(model=TTS, input="Hello there", voice="tara",
                                   response_format="wav", speed=0.25,
                                   extra_body=FAST_TTS).content
    n = sf.info(io.BytesIO(wav)).frames
    # ffmpeg atempo: same pitch, length / speed; measured 2026-12-05 on 6144 samples: 3127 at
    # 2.0 (+55), 22885 at 0.25 (-1691: atempo's block edges), hence +-2048
    assert abs(sf.info(io.BytesIO(fast)).frames - n / 2) <= 2048
    assert abs(sf.info(io.BytesIO(slow)).frames - n * 4) <= 2048
    # SSE: base64 deltas whose bytes are the pcm response, then done with token usage
    pcm = api.audio.speech.create(model=TTS, input="Hello there", voice="tara",
                                  response_format="pcm", extra_body=FAST_TTS).content
    raw = api.audio.speech.create(model=TTS, input="Hello there", voice="tara",
                                  response_format="pcm", stream_format="sse",
                                  extra_body=FAST_TTS).content.decode()
    events = [json.loads(line[5:]) for line in raw.splitlines() if line.startswith("data:")]
    assert [e["type"] for e in events[:-1]] == ["speech.audio.delta"] * (len(events) - 1)
    assert b"".join(base64.b64decode(e["audio"]) for e in events[:-1]) == pcm
    done = events[-1]
    assert done["type"] == "speech.audio.done" and done["usage"]["output_tokens"] == 21
    assert done["usage"]["total_tokens"] == done["usage"]["input_tokens"] + 21
    # round trip: the server's speech back through its transcription (random TTS weights make
    # noise, so the check is that it equals the model on the same samples, not the words)
    from mlx_impl.wav2vec2.transcribe import Wav2Vec2Transcriber

    audio, sr = sf.read(io.BytesIO(wav), dtype="float32")
    want = Wav2Vec2Transcriber.from_pretrained(wav2vec2_folder()).transcribe(audio, sr)
    got = api.audio.transcriptions.create(model="wav2vec2-test-tiny",
                                          file=("speech.wav", wav, "audio/wav"))
    assert got.text == want.text.strip()


def test_readme_example_runs_as_written(server, monkeypatch):
    """The README's three-line client example, its URL pointed at this test server."""
    text = (ROOT / "README.md").read_text()
    start = text.index("<!-- server-example -->")
    block = text[start:].split("```python\n", 1)[1].split("```", 1)[0]
    lines = [ln for ln in block.splitlines() if ln.strip()]
    assert len(lines) == 3, lines
    code = "\n".join(lines).replace("http://127.0.0.1:8000", server[0])
    monkeypatch.chdir(ROOT)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102
    assert namespace["text"].startswith("The quick"), namespace["text"]
