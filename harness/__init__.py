"""Sweep orchestration, trials, data, training, methods, tracking, gate and release."""
