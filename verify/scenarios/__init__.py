"""One module per scenario; each has ``NAME``, ``SUMMARY``, ``NEEDS`` and ``run(ctx)``."""
