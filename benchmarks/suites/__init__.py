"""The suites that ship with ganzoo (TOML files beside this one); see benchmarks/README.md."""
