"""Side-by-side benchmarks of jupyter-repro against its peers; `make bench` runs them all."""
