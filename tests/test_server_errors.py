"""Bad input to the audio server, through the real `openai` client (and raw HTTP where the client
cannot send it): each gets OpenAI's error shape and status, and the server keeps serving.
The server here requires an API key; the upload limit is the default 25 MB."""

from __future__ import annotations

import pytest

from server_helpers import (
    FOX,
    assert_error,
    client,
    live_server,
    orpheus_tiny,
    raw,
    server_deps,
)

server_deps()

import openai  # noqa: E402

from mlx_impl.server.app import ServerConfig  # noqa: E402

KEY = "test-key-123"
TTS = "orpheus-test-tiny"
FAST_TTS = {"max_tokens": 7}


@pytest.fixture(scope="module")
def server():
    orpheus_tiny()
    with live_server(ServerConfig(api_key=KEY)) as (base, app):
        yield base, app


@pytest.fixture(scope="module")
def api(server):
    return client(server[0], KEY)


def transcribe(api, file, **kw):
    return api.audio.transcriptions.create(model=kw.pop("model", "whisper-tiny.en"), file=file,
                                           **kw)


def speak(api, **kw):
    args = {"model": TTS, "input": "Hi", "voice": "tara", "response_format": "wav",
            "extra_body": FAST_TTS, **kw}
    return api.audio.speech.create(**args)


def test_bad_files(api):
    wav = FOX.read_bytes()
    cases = {"not audio": ("notes.wav", b"this is a text file, not audio\n" * 20),
             "empty": ("empty.wav", b""),
             "truncated inside the header": ("cut.wav", wav[:30]),
             "truncated mp3": ("cut.mp3", b"ID3\x04\x00\x00\x00\x00\x00\x10" + b"\xff\xfb" * 8)}
    for what, (name, data) in cases.items():
        with pytest.raises(openai.BadRequestError) as e:
            transcribe(api, (name, data, "application/octet-stream"))
        assert_error(e.value, 400, "invalid_audio", "file")
        assert "/tmp" not in e.value.message, e.value.message  # no server paths leak


def test_oversized_upload_is_413(api):
    big = b"RIFF" + bytes(25 * 2**20 + 1)
    with pytest.raises(openai.APIStatusError) as e:
        transcribe(api, ("big.wav", big, "audio/wav"))
    assert_error(e.value, 413, "file_too_large", "file")


def test_unknown_model_voice_format_speed(api):
    with open(FOX, "rb") as f:
        with pytest.raises(openai.NotFoundError) as e:
            transcribe(api, f, model="whisper-huge-v9")
        assert_error(e.value, 404, "model_not_found", "model")
        f.seek(0)
        with pytest.raises(openai.NotFoundError) as e:  # a TTS id is not a transcriber
            transcribe(api, f, model=TTS)
        assert_error(e.value, 404, "model_not_found", "model")
        f.seek(0)
        with pytest.raises(openai.BadRequestError) as e:
            transcribe(api, f, response_format="mp4")
        assert_error(e.value, 400, "invalid_value", "response_format")
        f.seek(0)
        with pytest.raises(openai.BadRequestError) as e:
            transcribe(api, f, response_format="json", timestamp_granularities=["word"])
        assert_error(e.value, 400, "invalid_value", "timestamp_granularities")
        f.seek(0)
        with pytest.raises(openai.BadRequestError) as e:
            transcribe(api, f, temperature=1.5)
        assert_error(e.value, 400, "invalid_value", "temperature")
        f.seek(0)
        with pytest.raises(openai.BadRequestError) as e:
            transcribe(api, f, language="klingon")
        assert_error(e.value, 400, "invalid_value", "language")
    with pytest.raises(openai.NotFoundError) as e:
        speak(api, model="whisper-tiny.en")
    assert_error(e.value, 404, "model_not_found", "model")
    with pytest.raises(openai.BadRequestError) as e:
        speak(api, voice="alloy")
    assert_error(e.value, 400, "invalid_voice", "voice")
    assert "tara" in e.value.message  # the voices it does take
    with pytest.raises(openai.BadRequestError) as e:
        speak(api, voice="../../etc/passwd")
    assert_error(e.value, 400, "invalid_voice", "voice")
    with pytest.raises(openai.BadRequestError) as e:
        speak(api, response_format="ogg")
    assert_error(e.value, 400, "invalid_value", "response_format")
    for speed in (0.1, 4.5):
        with pytest.raises(openai.BadRequestError) as e:
            speak(api, speed=speed)
        assert_error(e.value, 400, "invalid_value", "speed")
    with pytest.raises(openai.BadRequestError) as e:
        speak(api, input="x" * 4097)
    assert_error(e.value, 400, "string_above_max_length", "input")
    with pytest.raises(openai.BadRequestError) as e:
        speak(api, instructions="whisper it")
    assert_error(e.value, 400, "invalid_value", "instructions")
    with pytest.raises(openai.BadRequestError) as e:
        speak(api, stream_format="websocket")
    assert_error(e.value, 400, "invalid_value", "stream_format")


def test_api_key(server):
    with pytest.raises(openai.AuthenticationError) as e:
        client(server[0], "wrong-key").models.list()
    assert_error(e.value, 401, "invalid_api_key")
    r = raw("GET", f"{server[0]}/v1/models")  # no Authorization header at all
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    assert raw("GET", f"{server[0]}/health").status_code == 200  # health needs no key


def test_malformed_bodies(server):
    base, auth = server[0], {"Authorization": f"Bearer {KEY}"}
    url = f"{base}/v1/audio/transcriptions"
    bodies = {
        "no closing boundary": b"--XyZ\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\n"
                               b"whisper-tiny.en\r\n--XyZ\r\nContent-Disposition: form-data; "
                               b"name=\"file\"; filename=\"a.wav\"\r\n\r\nRIFF",
        "garbage": b"\x00\x01 this is not multipart at all",
        "no file part": b"--XyZ\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\n"
                        b"whisper-tiny.en\r\n--XyZ--\r\n",
    }
    for what, body in bodies.items():
        r = raw("POST", url, content=body, headers={
            **auth, "Content-Type": "multipart/form-data; boundary=XyZ"})
        assert r.status_code == 400, (what, r.status_code, r.text)
        assert set(r.json()["error"]) == {"message", "type", "param", "code"}, r.text
    r = raw("POST", url, json_body={"model": "whisper-tiny.en"}, headers=auth)
    assert r.status_code == 415 and r.json()["error"]["code"] == "unsupported_media_type"
    r = raw("POST", f"{base}/v1/audio/speech", content=b"{not json",
                   headers={**auth, "Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"
    r = raw("POST", f"{base}/v1/audio/speech", json_body={"input": "hi", "voice": "tara"}, headers=auth)
    assert r.status_code == 400 and r.json()["error"]["param"] == "model"
    r = raw("GET", f"{base}/v1/no/such/path", headers=auth)
    assert r.status_code == 404 and set(r.json()["error"]) == {"message", "type", "param",
                                                                "code"}


def test_still_serving_after_the_bad_input(api, server):
    """Runs last in this file: after every bad request above, real work still goes through."""
    audio = speak(api).content
    assert audio[:4] == b"RIFF" and len(audio) > 44
    stats = raw("GET", f"{server[0]}/health").json()["worker"]
    assert stats["busy"] is False and stats["queued"] == 0
