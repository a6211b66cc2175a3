"""snnedu's benchmarks (run on demand, never in the unit tests): ``python -m benchmarks.run``."""
