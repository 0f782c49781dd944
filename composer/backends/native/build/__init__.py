"""Dockerfile builds without a daemon: parser, context, cache and the builder."""
