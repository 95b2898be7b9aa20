"""Labrador training side: teachers, synthetic data generation and training."""
