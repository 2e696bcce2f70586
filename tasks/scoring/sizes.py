"""How many rows scoring handles at a time: the defaults of the tasks and of the run form."""

#: Rows read, typed and validated at a time from a Parquet input: the suite costs about 0.5 s
#: per call on top of its cost per row, so much smaller batches validate slowly.
DEFAULT_BATCH_ROWS = 500_000

#: Rows per call of the model. PyCaret's pipeline copies the frame at each step, and the
#: suite's thread takes the interpreter between calls: 10M rows validated from Parquet
#: (benchmarks/bench_score_parquet.py, three runs within an hour) took 78.2 s in chunks of
#: 50,000, 69.2 s of 100,000 and 67.6 s of 200,000, which hold more (1.71 GB against 1.68).
DEFAULT_CHUNK_ROWS = 100_000
