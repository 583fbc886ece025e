"""Local stand-ins for external services in dev mode and tests (real protocols, local state)."""
