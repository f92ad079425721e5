"""Model specs for the parity harness; one module per model family."""
