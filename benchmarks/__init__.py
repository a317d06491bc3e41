"""benchmarks package (grows with later work)."""
