"""Changing OFFICEFLOW_* variables in a test while the settings cache follows (the ``settings_env`` fixture)."""

from __future__ import annotations

import pytest


class SettingsEnv:
    """``monkeypatch`` for OFFICEFLOW_* variables that also refreshes the settings cache, race-free.

    The dispatcher thread calls ``get_settings()`` at any time; a load that read the environment
    before a change could land in the cache after a plain ``cache_clear()``, so each change is
    followed by clearing until the cached settings equal a fresh load.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self._monkeypatch = monkeypatch

    @staticmethod
    def settle() -> None:
        from include.officeflow.settings import ConfigurationError, get_settings, load_settings

        for _ in range(100):
            get_settings.cache_clear()
            try:
                if get_settings() == load_settings():
                    return
            except ConfigurationError:
                get_settings.cache_clear()
                return

    def setenv(self, name: str, value: str) -> None:
        self._monkeypatch.setenv(name, value)
        self.settle()

    def delenv(self, name: str, raising: bool = True) -> None:
        self._monkeypatch.delenv(name, raising=raising)
        self.settle()

    def undo(self) -> None:
        self._monkeypatch.undo()
        self.settle()
