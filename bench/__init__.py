"""Side-by-side benchmarks of sendoff against its peers (``make bench``)."""
