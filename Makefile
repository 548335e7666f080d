# The two commands of the README, the benchmarks, the Debian package and the coverage report.
# The scripts install what they need.
.PHONY: run test bench deb coverage

run: ## Build and start Berth with its home in ./.berth-home
	scripts/run.sh

test: ## fmt, clippy and every test against a private Docker Engine and PostgreSQL
	scripts/test.sh

bench: ## Benchmarks against baselines in the same run; figures go to BENCHMARKS.md
	scripts/bench.sh

deb: ## Debian package target/debian/berth_VERSION_ARCH.deb from a release build (docs/install.md)
	scripts/deb.sh

coverage: ## Every Rust test under cargo llvm-cov; per-crate lines % in target/coverage/summary.txt
	scripts/coverage.sh
