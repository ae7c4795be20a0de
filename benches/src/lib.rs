//! Benchmarks live in benches/; see the README for what each measures.
