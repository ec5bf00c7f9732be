"""Stage 1, package: read a Frictionless descriptor safely and know its schemas.

Refuses unsafe paths (absolute, URLs, ``..``, symlinks), custom profiles and oversize files
before anything is read, and hands typed resources to the later stages; writes output
folders atomically and never over a user's folder (``atomic``).
May import: ``trialpool.errors`` only (and ``trialpool.__version__``, for marker files).
"""
