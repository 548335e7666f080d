# The two commands of the README, and the benchmarks. The scripts install what they need.
.PHONY: run test bench

run: ## Build and start Berth with its home in ./.berth-home
	scripts/run.sh

test: ## fmt, clippy and every test against a private Docker Engine and PostgreSQL
	scripts/test.sh

bench: ## Benchmarks against baselines in the same run; figures go to BENCHMARKS.md
	scripts/bench.sh
