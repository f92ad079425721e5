"""Speed and memory of our MLX models against the peer engines, and the success-metric report.

`python -m benchmarks run MODEL` (make bench MODEL=...): runner.py starts one fresh worker
process per engine (worker.py; engines in engines.py, weight layouts in prepare.py, the clip in
clips.py) and writes reports/bench/<model>.{json,md}. `python -m benchmarks.report`
(make report): report.py writes reports/success-metrics.{md,json} and reports/plots/*.png.
"""
