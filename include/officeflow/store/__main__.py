"""``python -m include.officeflow.store migrate`` upgrades the OfficeFlow store to the latest schema."""

from __future__ import annotations

import argparse
import sys

from include.officeflow.settings import ConfigurationError, get_settings
from include.officeflow.store.db import current_revision, migrate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m include.officeflow.store")
    parser.add_argument("command", choices=["migrate", "current"])
    parser.add_argument("--url", help="store URL (default: OFFICEFLOW_DB_URL / settings)")
    args = parser.parse_args(argv)
    try:
        url = args.url or get_settings().db_url
    except ConfigurationError as exc:
        print(exc, file=sys.stderr)
        return 2
    if args.command == "migrate":
        migrate(url)
    print(f"officeflow store at revision {current_revision(url)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
