"""OfficeFlow core: settings, the OfficeFlow store and its migrations, templating."""

__version__ = "0.1.0"  # the release; pyproject.toml has the same (tests/unit/include/test_structured_logs.py)
