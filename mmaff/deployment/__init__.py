"""Deployment: end-to-end export wrappers and runtime helpers."""
