"""The benchmark: variants, scenarios and the runner that returns a typed run."""
