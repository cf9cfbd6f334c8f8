"""Readers that turn provider products into `Product` objects."""
