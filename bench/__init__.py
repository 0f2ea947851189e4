"""Benchmarks behind ``eldercare bench …``; may import every package, and nothing imports it."""
