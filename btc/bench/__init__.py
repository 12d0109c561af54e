"""Benchmarks of the registered models: parameters, size, FLOPs, throughput, memory."""
