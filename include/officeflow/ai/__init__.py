"""OfficeFlow's AI core: versioned prompt files, personal-data minimisation, framing of user-supplied text,
and the usage/cost ledger with each organization's monthly budget. No network here: the calls go through
``operators/hooks/openai.py`` and the operators in ``operators/ai.py`` (docs/ai.md)."""
