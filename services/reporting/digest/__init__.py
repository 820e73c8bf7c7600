"""Daily and weekly per-site digests: figures (`figures`, no I/O), charts (`charts`), HTML and PDF (`render`),
e-mail (`mail`), the schedule that sends them once per period (`sender`), and `python -m
services.reporting.digest` to render one by hand. The SQL is in `adapters/digest_repository.py`."""
