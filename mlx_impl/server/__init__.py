"""An OpenAI-compatible audio server over the MLX models (speech to text, text to speech).

    python -m mlx_impl.server serve --host 127.0.0.1 --port 8000     (or `make serve`)

`app.py` the endpoints and error shapes, `worker.py` the one inference thread and the model
pool (load on first use, idle unload, memory budget), `catalog.py` the model ids,
`audio.py` upload decoding and speech encoding. Needs the `server` extra (fastapi, uvicorn,
python-multipart, sse-starlette); importing `mlx_impl` never imports this package.
"""
