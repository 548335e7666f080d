# The two commands of the README. The scripts install what they need.
.PHONY: run test

run: ## Build and start Berth with its home in ./.berth-home
	scripts/run.sh

test: ## fmt, clippy and every test against a private Docker Engine and PostgreSQL
	scripts/test.sh

