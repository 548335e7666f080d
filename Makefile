# The two commands of the README, the benchmarks and the Debian package. The scripts install
# what they need.
.PHONY: run test bench deb

run: ## Build and start Berth with its home in ./.berth-home
	scripts/run.sh

test: ## fmt, clippy and every test against a private Docker Engine and PostgreSQL
	scripts/test.sh

bench: ## Benchmarks against baselines in the same run; figures go to BENCHMARKS.md
	scripts/bench.sh

deb: ## Debian package target/debian/berth_VERSION_ARCH.deb from a release build (docs/install.md)
	scripts/deb.sh
