"""Growth detectors: pure functions over sampled metric series."""
