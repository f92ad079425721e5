"""The FastAPI app: OpenAI's audio API over the MLX models (`create_app(ServerConfig)`).

Endpoints (OpenAI's request and response shapes):
- POST /v1/audio/transcriptions, /v1/audio/translations (multipart): file, model, language,
  prompt, temperature, response_format = json | text | srt | verbose_json | vtt,
  timestamp_granularities[] = word and/or segment (verbose_json only), stream = true (SSE
  `transcript.text.delta` events, one per decoded segment, then `transcript.text.done`).
  Extension: beam_size (an integer, or "none" for greedy; default 5 as the CLI).
- POST /v1/audio/speech (JSON): model, input (<= 4096 characters), voice (a name or
  {"id": name}; "default" is the model's own), response_format = mp3 (default) | opus | aac |
  flac | wav | pcm, speed 0.25-4.0, instructions (refused: no model here takes them),
  stream_format = audio (default) | sse (`speech.audio.delta` base64 chunks, then
  `speech.audio.done`). pcm audio streams as the model generates (for models with `stream`,
  at speed 1); the other formats are encoded once synthesis ends and sent in chunks.
  Extensions: seed (default 0: the same request gives the same bytes), max_tokens.
- GET /v1/models, GET /v1/models/{id}; GET /health (no key needed).

Transcription options equal the Whisper CLI's defaults (`python -m mlx_impl.whisper`): beam 5 at
temperature 0, best of 5 when sampling, fallback temperatures from `temperature` to 1.0 in
steps of 0.2; `text` is the CLI's txt output and srt/vtt its writers', so a transcript through
the server equals the CLI's on the same file.

Errors are always `{"error": {"message", "type", "param", "code"}}`: 400 a bad parameter or
file, 401 a missing or wrong key, 404 an unknown model or path, 413 an upload over the limit,
415 a body that is not multipart (or JSON for speech), 503 the queue is full, 500 a failure of
ours. Input checks that need no model run before a request queues; the ones that need the
model run on the worker before any response byte is sent, so they too get their status.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hmac
import importlib
import inspect
import json
import logging
import math
import time
from dataclasses import dataclass, field, replace

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from sse_starlette import EventSourceResponse
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from mlx_impl.server import audio as A
from mlx_impl.server.catalog import Catalog, Entry, UnknownModel
from mlx_impl.server.worker import Busy, InferenceWorker, ModelPool

log = logging.getLogger("mlx_impl.server")

STT_FORMATS = ("json", "text", "srt", "verbose_json", "vtt")
GRANULARITIES = ("word", "segment")
MAX_INPUT_CHARS = 4096  # OpenAI's limit on `input`
CHUNK_BYTES = 32768  # chunk size of a whole encoded file sent as a stream


@dataclass(frozen=True)
class ServerConfig:
    api_key: str | None = None  # bearer key required on /v1/* when set
    cors_origins: tuple[str, ...] = ()  # CORS off when empty
    max_upload_bytes: int = 25 * 2**20  # OpenAI's 25 MB
    max_queue: int = 64  # requests waiting for the worker; beyond: 503
    idle_ttl: float = 600.0  # seconds unused before a model is unloaded
    memory_budget: int = 8 * 2**30  # bytes of parameters held; least recently used out first
    dtype: str = "float32"
    stt_models: dict[str, str] = field(default_factory=dict)  # extra name -> checkpoint folder
    aliases: dict[str, str] = field(default_factory=lambda: {"whisper-1": "whisper-base"})


class APIError(Exception):
    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error",
                 param: str | None = None, code: str | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.type = status, message, type
        self.param, self.code, self.headers = param, code, headers

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param,
                          "code": self.code}}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


def busy_error(e: Busy) -> APIError:
    return APIError(503, str(e), type="server_error", code="server_busy",
                    headers={"Retry-After": "1"})


def bad(param: str | None, message: str, code: str = "invalid_value") -> APIError:
    return APIError(400, message, param=param, code=code)


# -- request parsing -------------------------------------------------------------------------


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, at most `limit` bytes; 413 beyond (a larger body is read to its end first, up
    to 8x the limit, so the client sees the answer rather than a reset connection)."""
    too_large = APIError(413, f"the request is larger than the upload limit of "
                              f"{limit / 2**20:g} MB; send a smaller file",
                         param="file", code="file_too_large")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > 8 * limit:
        raise too_large
    chunks, n = [], 0
    async for chunk in request.stream():
        n += len(chunk)
        if n <= limit:
            chunks.append(chunk)
        elif n > 8 * limit:
            break
    if n > limit:
        raise too_large
    return b"".join(chunks)


async def read_form(request: Request, max_upload: int):
    ctype = request.headers.get("content-type", "")
    if not ctype.startswith("multipart/form-data"):
        raise APIError(415, f"expected a multipart/form-data body with the audio as `file`, "
                            f"got content type {ctype or 'none'!r}", code="unsupported_media_type")
    request._body = await _read_body(request, max_upload + 2**20)  # + room for the fields
    form = await request.form(max_files=1, max_fields=64)
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise bad("file", "missing `file`: send the audio as a multipart file part",
                  "missing_required_parameter")
    data = await upload.read()
    if len(data) > max_upload:
        raise APIError(413, f"the file is {len(data) / 2**20:.1f} MB, over the upload limit "
                            f"of {max_upload / 2**20:g} MB", param="file", code="file_too_large")
    return form, data, upload.filename


def _str(form, name: str, default: str | None = None) -> str | None:
    value = form.get(name)
    if value is None or value == "":
        return default
    if not isinstance(value, str):
        raise bad(name, f"`{name}` must be a text field")
    return value


def _required(value, name: str):
    if value is None or value == "":
        raise bad(name, f"missing required parameter `{name}`", "missing_required_parameter")
    return value


def _float(text: str | None, name: str, lo: float, hi: float, default: float) -> float:
    if text is None:
        return default
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise bad(name, f"`{name}` must be a number, got {text!r}") from None
    if not (lo <= value <= hi) or math.isnan(value):
        raise bad(name, f"`{name}` must be between {lo:g} and {hi:g}, got {value:g}")
    return value


@dataclass(frozen=True)
class STTRequest:
    model: str
    task: str  # transcribe | translate
    language: str | None
    prompt: str | None
    temperature: float
    response_format: str
    granularities: tuple[str, ...]
    stream: bool
    beam_size: int | None


def parse_stt(form, task: str) -> STTRequest:
    model = _required(_str(form, "model"), "model")
    fmt = _str(form, "response_format", "json")
    if fmt not in STT_FORMATS:
        raise bad("response_format", f"response_format {fmt!r} is not one of "
                                     f"{', '.join(STT_FORMATS)}")
    grans = [g for key in ("timestamp_granularities[]", "timestamp_granularities")
             for g in form.getlist(key)]
    for g in grans:
        if g not in GRANULARITIES:
            raise bad("timestamp_granularities", f"timestamp granularity {g!r} is not one of "
                                                 "word, segment")
    if grans and fmt != "verbose_json":
        raise bad("timestamp_granularities", "timestamp_granularities needs response_format "
                                             f"verbose_json (got {fmt!r})")
    stream = (_str(form, "stream", "false") or "false").lower()
    if stream not in ("true", "false"):
        raise bad("stream", f"`stream` must be true or false, got {stream!r}")
    if stream == "true" and fmt not in ("json", "text"):
        raise bad("stream", f"streaming sends text events; use response_format json or text "
                            f"with stream=true (got {fmt!r})")
    beam = _str(form, "beam_size", "5")
    if beam.lower() == "none":
        beam_size = None
    elif beam.isdigit() and 1 <= int(beam) <= 16:
        beam_size = int(beam)
    else:
        raise bad("beam_size", f"`beam_size` must be an integer in [1, 16] or 'none', "
                               f"got {beam!r}")
    language = _str(form, "language")
    if language is not None:
        from mlx_impl.whisper.tokenizer import resolve_language

        try:
            language = resolve_language(language)
        except ValueError as e:
            raise bad("language", str(e)) from None
    return STTRequest(model, task, language, _str(form, "prompt"),
                      _float(_str(form, "temperature"), "temperature", 0.0, 1.0, 0.0), fmt,
                      tuple(dict.fromkeys(grans)), stream == "true", beam_size)


def check_family(entry: Entry, req: STTRequest) -> None:
    """What a model family cannot do, refused before the request queues."""
    if entry.family == "whisper":
        return
    name = f"{entry.id} ({entry.family})"
    if req.task == "translate":
        raise bad("model", f"{name} does not translate; use a multilingual Whisper model")
    if req.prompt is not None:
        raise bad("prompt", f"{name} takes no prompt; drop `prompt`")
    if req.language not in (None, "en"):
        raise bad("language", f"{name} is English-only here; drop `language`")
    if req.temperature != 0:
        raise bad("temperature", f"{name} decodes greedily; temperature must be 0")
    if "word" in req.granularities and entry.family == "voxtral":
        raise bad("timestamp_granularities", f"{name} gives no word timestamps")


def whisper_options(req: STTRequest) -> dict:
    """The CLI's defaults (mlx_impl/whisper/__main__.py) with the request's values."""
    temperature = tuple(np.arange(req.temperature, 1.0 + 1e-6, 0.2).tolist())
    return {"temperature": temperature, "language": req.language, "task": req.task,
            "beam_size": req.beam_size, "best_of": 5, "patience": None,
            "length_penalty": None, "initial_prompt": req.prompt,
            "condition_on_previous_text": True, "compression_ratio_threshold": 2.4,
            "logprob_threshold": -1.0, "no_speech_threshold": 0.6,
            "word_timestamps": "word" in req.granularities,
            "hallucination_silence_threshold": None, "clip_timestamps": "0", "seed": 0,
            "progress": False}


# -- transcription responses ------------------------------------------------------------------


def _language_name(code: str) -> str:
    from mlx_impl.whisper.tokenizer import LANGUAGES

    return LANGUAGES.get(code, code)


def stt_response(result, req: STTRequest, duration: float) -> Response:
    from mlx_impl.whisper import writers

    usage = {"type": "duration", "seconds": math.ceil(duration)}
    if req.response_format == "text":
        return PlainTextResponse(writers.render(result, "txt"))
    if req.response_format in ("srt", "vtt"):
        return PlainTextResponse(writers.render(result, req.response_format))
    if req.response_format == "json":
        return JSONResponse({"text": result.text.strip(), "usage": usage})
    body = {"task": req.task, "language": _language_name(result.language),
            "duration": round(duration, 3), "text": result.text.strip()}
    grans = req.granularities or ("segment",)
    if "segment" in grans:
        body["segments"] = [
            {"id": s.id, "seek": s.seek, "start": s.start, "end": s.end, "text": s.text,
             "tokens": list(s.tokens), "temperature": s.temperature,
             "avg_logprob": s.avg_logprob, "compression_ratio": s.compression_ratio,
             "no_speech_prob": s.no_speech_prob} for s in result.segments]
    if "word" in grans:
        body["words"] = [{"word": w.word.strip(), "start": w.start, "end": w.end}
                         for s in result.segments for w in (s.words or ())]
    body["usage"] = usage
    return JSONResponse(body)


# -- text to speech ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SpeechRequest:
    model: str
    input: str
    voice: str
    response_format: str
    speed: float
    stream_format: str
    seed: int
    max_tokens: int | None


def parse_speech(body) -> SpeechRequest:
    if not isinstance(body, dict):
        raise bad(None, "the body must be a JSON object")
    model = _required(body.get("model"), "model")
    text = _required(body.get("input"), "input")
    if not isinstance(model, str):
        raise bad("model", "`model` must be a string")
    if not isinstance(text, str) or not text.strip():
        raise bad("input", "`input` must be non-empty text")
    if len(text) > MAX_INPUT_CHARS:
        raise bad("input", f"`input` is {len(text)} characters; the limit is {MAX_INPUT_CHARS}",
                  "string_above_max_length")
    voice = _required(body.get("voice"), "voice")
    if isinstance(voice, dict):
        voice = voice.get("id")
    if not isinstance(voice, str) or not voice:
        raise bad("voice", "`voice` must be a voice name or {\"id\": name}")
    if any(c in voice for c in "/\\") or voice.startswith("."):
        raise bad("voice", f"`voice` {voice!r} looks like a path; the server takes voice names "
                           "only", "invalid_voice")
    fmt = body.get("response_format") or "mp3"
    if fmt not in A.FORMATS:
        raise bad("response_format", f"response_format {fmt!r} is not one of "
                                     f"{', '.join(A.FORMATS)}")
    speed = body.get("speed", 1.0)
    if isinstance(speed, bool) or not isinstance(speed, (int, float)):
        raise bad("speed", f"`speed` must be a number, got {speed!r}")
    if not 0.25 <= speed <= 4.0:
        raise bad("speed", f"`speed` must be between 0.25 and 4.0, got {speed:g}")
    if body.get("instructions"):
        raise bad("instructions", f"{model} takes no `instructions` (no model served here "
                                  "follows style instructions); drop the field")
    stream_format = body.get("stream_format") or "audio"
    if stream_format not in ("audio", "sse"):
        raise bad("stream_format", f"stream_format {stream_format!r} is not audio or sse")
    seed, max_tokens = body.get("seed", 0), body.get("max_tokens")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise bad("seed", f"`seed` must be an integer >= 0, got {seed!r}")
    if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int)
                                   or max_tokens < 1):
        raise bad("max_tokens", f"`max_tokens` must be an integer >= 1, got {max_tokens!r}")
    return SpeechRequest(model, text, voice, fmt, float(speed), stream_format, seed, max_tokens)


def model_voices(tts, family: str) -> list[str]:
    """The voice names a TTS takes: its `voices`, else its package's `tokens.VOICES`."""
    voices = getattr(tts, "voices", None)
    if voices is None:
        try:
            voices = getattr(importlib.import_module(f"mlx_impl.{family}.tokens"), "VOICES", None)
        except ImportError:
            voices = None
    return list(voices or ())


def prepare_speech(tts, entry: Entry, req: SpeechRequest):
    """(voice, options, prompt length) after the model's own checks; APIError 400 if bad."""
    voices = model_voices(tts, entry.family)
    if req.voice == "default":
        voice = tts.default_voice
    elif req.voice in voices:
        voice = req.voice
    else:
        raise APIError(400, f"unknown voice {req.voice!r} for {entry.id}; choose one of "
                            f"{', '.join(['default', *voices])}", param="voice",
                       code="invalid_voice")
    options = tts.defaults
    if req.max_tokens is not None:
        options = replace(options, max_tokens=req.max_tokens)
    try:
        prompt = tts.check(req.input, voice, options)
    except ValueError as e:
        raise bad("input", str(e)) from None
    return voice, options, len(prompt)


async def _chunks(data: bytes):
    for i in range(0, len(data), CHUNK_BYTES):
        yield data[i:i + CHUNK_BYTES]


# -- the app ---------------------------------------------------------------------------------


def create_app(config: ServerConfig = ServerConfig()) -> FastAPI:
    catalog = Catalog(config.stt_models, config.aliases)
    worker = InferenceWorker(ModelPool(config.memory_budget, config.idle_ttl), config.max_queue)
    started = int(time.time())

    @contextlib.asynccontextmanager
    async def lifespan(app):
        log.info("serving %s", ", ".join(sorted(catalog.entries())) or "no models")
        yield
        await asyncio.to_thread(worker.stop)

    app = FastAPI(title="mlx-audio-parity", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.state.worker, app.state.catalog, app.state.config = worker, catalog, config

    def get_model(pool, entry: Entry):
        return pool.get(f"{entry.kind}:{entry.family}:{entry.source}",
                        lambda: catalog.load(entry, config.dtype))

    def note(request: Request, **values) -> None:
        request.scope.setdefault("state", {}).setdefault("log", {}).update(values)

    def authorize(request: Request) -> None:
        if config.api_key is None:
            return
        header = request.headers.get("authorization", "")
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not key:
            raise APIError(401, "missing API key: send `Authorization: Bearer <key>` (the "
                                "openai client's api_key)", code="invalid_api_key")
        if not hmac.compare_digest(key.strip().encode(), config.api_key.encode()):
            raise APIError(401, "incorrect API key provided", code="invalid_api_key")

    def lookup(model: str, kind: str) -> Entry:
        try:
            return catalog.get(model, kind)
        except UnknownModel as e:
            raise APIError(404, str(e), param="model", code="model_not_found") from None

    # -- errors ---------------------------------------------------------------------------

    @app.exception_handler(APIError)
    async def _api_error(request, e: APIError):
        return e.response()

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request, e: StarletteHTTPException):
        if e.status_code == 404:
            message = f"invalid URL ({request.method} {request.url.path})"
        else:
            message = str(e.detail)
        return APIError(e.status_code, message, code=None).response()

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request, e: RequestValidationError):
        return bad(None, f"invalid request: {e.errors()}").response()

    @app.exception_handler(Exception)
    async def _internal_error(request, e: Exception):
        log.exception("internal error on %s %s", request.method, request.url.path)
        return APIError(500, f"internal error: {type(e).__name__}: {e}", type="server_error",
                        code="internal_error").response()

    # -- models, health -----------------------------------------------------------------------

    def model_card(model_id: str) -> dict:
        return {"id": model_id, "object": "model", "created": started,
                "owned_by": "mlx-audio-parity"}

    @app.get("/health")
    async def health():
        return {"status": "ok", "worker": worker.stats()}

    @app.get("/v1/models")
    async def list_models(request: Request):
        authorize(request)
        entries = await asyncio.to_thread(catalog.entries)
        return {"object": "list", "data": [model_card(k) for k in sorted(entries)]}

    @app.get("/v1/models/{model_id:path}")
    async def get_model_card(model_id: str, request: Request):
        authorize(request)
        entries = await asyncio.to_thread(catalog.entries)
        if model_id not in entries:
            raise APIError(404, f"the model {model_id!r} does not exist; models here: "
                                f"{', '.join(sorted(entries))}", param="model",
                           code="model_not_found")
        return model_card(model_id)

    # -- speech to text -------------------------------------------------------------------

    async def speech_to_text(request: Request, task: str):
        authorize(request)
        form, data, filename = await read_form(request, config.max_upload_bytes)
        req = parse_stt(form, task)
        entry = lookup(req.model, "stt")
        check_family(entry, req)
        note(request, model=entry.id)
        try:
            samples = await asyncio.to_thread(A.decode_upload, data, filename)
        except ValueError as e:
            raise bad("file", str(e), "invalid_audio") from None
        duration = samples.shape[0] / 16000

        def transcribe(pool, on_segment=None):
            stt = get_model(pool, entry)
            if entry.family != "whisper":
                options = {"word_timestamps": True} if entry.family == "parakeet" else {}
                return stt.transcribe(samples, 16000, **options)
            if task == "translate" and not stt.model.dims.is_multilingual:
                raise bad("model", f"{entry.id} is English-only and cannot translate; use a "
                                   "multilingual Whisper model")
            if "word" in req.granularities and getattr(stt.model, "alignment_heads",
                                                       None) is None:
                raise bad("timestamp_granularities", f"{entry.id} has no alignment heads, so "
                                                     "no word timestamps")
            return stt.transcribe(samples, 16000, on_segment=on_segment,
                                  **whisper_options(req))

        timing: dict = {}
        if not req.stream:
            try:
                result = await worker.run(transcribe, timing)
            except Busy as e:
                raise busy_error(e) from None
            except ValueError as e:
                raise bad(None, str(e)) from None
            finally:
                note(request, **timing)
            return stt_response(result, req, duration)

        def stream_job(pool, emit):
            emit(None)  # the model is loaded and the request checked: headers can go
            result = transcribe(pool, on_segment=lambda s: emit(s["text"]))
            if entry.family != "whisper":
                emit(result.text)
            emit(result)

        try:
            job = worker.open_stream(stream_job)
        except Busy as e:
            raise busy_error(e) from None
        items = worker.stream(job, timing)
        try:
            await items.__anext__()
        except ValueError as e:
            await items.aclose()
            raise bad(None, str(e)) from None

        async def events():
            text = ""
            try:
                async for item in items:
                    if isinstance(item, str):
                        delta = item if text else item.lstrip()
                        text += delta
                        yield {"data": json.dumps({"type": "transcript.text.delta",
                                                   "delta": delta})}
                    else:
                        yield {"data": json.dumps({
                            "type": "transcript.text.done", "text": item.text.strip(),
                            "usage": {"type": "duration", "seconds": math.ceil(duration)}})}
            except Exception as e:  # noqa: BLE001  (after the headers: an error event)
                error = e if isinstance(e, APIError) else APIError(
                    500, f"{type(e).__name__}: {e}", type="server_error", code="internal_error")
                yield {"data": json.dumps(error.body())}
            finally:
                note(request, **timing)
                await items.aclose()

        return EventSourceResponse(events(), ping=15)

    @app.post("/v1/audio/transcriptions")
    async def transcriptions(request: Request):
        return await speech_to_text(request, "transcribe")

    @app.post("/v1/audio/translations")
    async def translations(request: Request):
        return await speech_to_text(request, "translate")

    # -- text to speech -------------------------------------------------------------------

    @app.post("/v1/audio/speech")
    async def speech(request: Request):
        authorize(request)
        ctype = request.headers.get("content-type", "")
        if not ctype.startswith("application/json"):
            raise APIError(415, f"expected a JSON body, got content type {ctype or 'none'!r}",
                           code="unsupported_media_type")
        raw = await _read_body(request, 2**20)
        try:
            body = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise bad(None, f"the body is not valid JSON: {e}", "invalid_json") from None
        req = parse_speech(body)
        entry = lookup(req.model, "tts")
        note(request, model=entry.id)
        fmt, timing = req.response_format, {}
        headers = {"X-Sample-Rate": ""}

        def incremental(tts) -> bool:
            return fmt == "pcm" and req.speed == 1.0 and hasattr(tts, "stream")

        def job(pool, emit):
            tts = get_model(pool, entry)
            voice, options, n_prompt = prepare_speech(tts, entry, req)
            counted = []

            def on_token(step, token):
                counted.append(token)

            emit(tts.sample_rate)  # checked: the response may start
            if incremental(tts):
                kwargs = ({"on_token": on_token}
                          if "on_token" in inspect.signature(tts.stream).parameters else {})
                for chunk in tts.stream(req.input, voice, options=options, seed=req.seed,
                                        **kwargs):
                    emit(A.pcm16(chunk))
                emit({"input_tokens": n_prompt, "output_tokens": len(counted)})
                return
            out = tts.synthesize(req.input, voice, options=options, seed=req.seed)
            emit(out)
            emit({"input_tokens": n_prompt, "output_tokens": int(out.meta.get("n_tokens", 0))})

        try:
            stream = worker.open_stream(job)
        except Busy as e:
            raise busy_error(e) from None
        items = worker.stream(stream, timing)
        try:
            sample_rate = await items.__anext__()
        except ValueError as e:
            await items.aclose()
            raise bad(None, str(e)) from None
        headers["X-Sample-Rate"] = str(sample_rate)

        async def audio_bytes(usage: dict):
            """The response's audio bytes, as they come or once encoded."""
            async for item in items:
                if isinstance(item, bytes):
                    yield item
                elif isinstance(item, dict):
                    usage.update(item, total_tokens=item["input_tokens"] + item["output_tokens"])
                else:  # a whole Speech: speed, encode (ffmpeg/soundfile) off the event loop
                    audio = await asyncio.to_thread(A.change_speed, item.audio,
                                                    item.sample_rate, req.speed)
                    data = await asyncio.to_thread(A.encode, audio, item.sample_rate, fmt)
                    async for chunk in _chunks(data):
                        yield chunk

        async def body_stream():
            try:
                async for chunk in audio_bytes({}):
                    yield chunk
            finally:
                note(request, **timing)
                await items.aclose()

        async def sse_events():
            usage: dict = {}
            try:
                async for chunk in audio_bytes(usage):
                    yield {"data": json.dumps({"type": "speech.audio.delta",
                                               "audio": base64.b64encode(chunk).decode()})}
                yield {"data": json.dumps({"type": "speech.audio.done", "usage": usage})}
            except Exception as e:  # noqa: BLE001  (after the headers: an error event)
                yield {"data": json.dumps(APIError(500, f"{type(e).__name__}: {e}",
                                                   type="server_error").body())}
            finally:
                note(request, **timing)
                await items.aclose()

        if req.stream_format == "sse":
            return EventSourceResponse(sse_events(), ping=15, headers=headers)
        return StreamingResponse(body_stream(), media_type=A.CONTENT_TYPES[fmt], headers=headers)

    # -- middleware -----------------------------------------------------------------------

    if config.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(config.cors_origins),
                           allow_methods=["GET", "POST", "OPTIONS"],
                           allow_headers=["Authorization", "Content-Type"])
    return RequestLog(app)


class RequestLog:
    """ASGI middleware: one log line per request, written when its last byte is sent (so a
    stream's line has the whole stream's time) or when it ends without one (disconnect)."""

    def __init__(self, app: FastAPI):
        self.app = app
        self.state = app.state  # tests and the CLI reach the worker through this

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        t0 = time.perf_counter()
        info = scope.setdefault("state", {}).setdefault("log", {})
        status, sent, logged = [0], [0], [False]

        def write(outcome: str = "") -> None:
            if logged[0]:
                return
            logged[0] = True
            extra = "".join(f" {k.removesuffix('_s')}={v:.3f}s" if isinstance(v, float)
                            else f" {k}={v}" for k, v in info.items())
            client = scope.get("client") or ("-", 0)
            log.info("%s %s %s%s total=%.3fs bytes=%d client=%s%s", scope["method"],
                     scope["path"], status[0], extra, time.perf_counter() - t0, sent[0],
                     client[0], outcome)

        async def send_logged(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            elif message["type"] == "http.response.body":
                sent[0] += len(message.get("body", b""))
                if not message.get("more_body", False):
                    await send(message)
                    write()
                    return
            await send(message)

        try:
            await self.app(scope, receive, send_logged)
        finally:
            write(" (ended early: client gone or error)")
