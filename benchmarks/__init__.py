"""Speed and memory of our MLX models against the peer engines, and the success-metric report.

`python -m benchmarks run MODEL` (make bench MODEL=...): runner.py resolves the model's BenchSpec
(the spec's own, or Whisper's four peers in engines.py; weight layouts in prepare.py, the clip in
clips.py), starts one fresh worker process per engine (worker.py) and writes
reports/bench/<model>.{json,md}. `python -m benchmarks.gpu`: the same runner per precision on a
CUDA machine. `python -m benchmarks.report` (make report): report.py writes
reports/success-metrics.{md,json} and reports/plots/*.png.
"""
