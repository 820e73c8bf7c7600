"""Development-only code: the local stack `make run` starts and the SQS/S3 emulator it, the tests and the
benchmarks use. No service image copies this package (tests/unit/deploy/test_dockerfiles.py); what a
deployment runs (provisioning, generated secrets) lives in shared/ (shared/provision.py, shared/local_secrets.py).
"""
