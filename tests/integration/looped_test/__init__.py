"""Looped's integration-test helpers: see conftest.py for what each module does."""
