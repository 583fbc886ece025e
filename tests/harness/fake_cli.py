"""Stand-ins for command-line tools (docker, helm, kubectl, trivy) put first on PATH, so a script's
argument handling and the exact commands it would run can be tested where those tools can't act (no
Docker engine here). Each call is recorded; a reply (stdout, exit code) can be set per argv prefix.
Scripts are also run against the real tools where they can be (tests/deploy)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

_STUB = """#!/usr/bin/env python3
import json, os, sys
calls = os.path.join(os.environ["FAKE_CLI_DIR"], "calls.jsonl")
argv = [os.path.basename(sys.argv[0])] + sys.argv[1:]
with open(calls, "a") as f:
    f.write(json.dumps(argv) + "\\n")
replies = json.load(open(os.path.join(os.environ["FAKE_CLI_DIR"], "replies.json")))
best = None
for reply in replies:
    prefix = reply["argv"]
    if argv[:len(prefix)] == prefix and (best is None or len(prefix) > len(best["argv"])):
        best = reply
if best:
    sys.stdout.write(best.get("stdout", ""))
    sys.stderr.write(best.get("stderr", ""))
    sys.exit(best.get("exit", 0))
"""


@dataclass
class FakeCli:
    """A directory of recording stubs. ``reply(["docker", "info"], exit=1)`` sets what a call prints and
    returns (the longest matching argv prefix wins; the default is no output and exit 0)."""

    directory: Path
    names: tuple[str, ...]
    _replies: list[dict] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        for name in self.names:
            path = self.directory / name
            path.write_text(_STUB)
            path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        self._save()

    def reply(self, argv: list[str], stdout: str = "", exit: int = 0, stderr: str = "") -> None:
        self._replies.append({"argv": argv, "stdout": stdout, "exit": exit, "stderr": stderr})
        self._save()

    def _save(self) -> None:
        (self.directory / "replies.json").write_text(json.dumps(self._replies))

    @property
    def calls(self) -> list[list[str]]:
        path = self.directory / "calls.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def calls_to(self, name: str) -> list[list[str]]:
        return [c for c in self.calls if c[0] == name]

    def env(self, **extra: str) -> dict[str, str]:
        """The environment to run a script in: the stubs first on PATH."""
        env = dict(os.environ)
        env.update(extra)
        env["FAKE_CLI_DIR"] = str(self.directory)
        env["PATH"] = f"{self.directory}:{env['PATH']}"
        return env

    def run(self, *argv: str | Path, cwd: Path | None = None, **extra_env: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(a) for a in argv], capture_output=True, text=True, cwd=cwd,
                              env=self.env(**extra_env), timeout=120)
