"""Classifying many files: discovery, the pipeline, the results store."""
