# bench.mk — `make bench`: start-up benchmark (scripts/bench). Not a test: it
# measures, prints a table and records it in docs/performance.md; it fails only
# when it cannot measure. BENCH_N=50 make bench for a quick run (default 200).

.PHONY: bench
bench:
	scripts/bench
