"""The OfficeFlow store's commands (``./run.sh migrate``, ``db-reset`` and ``migration`` call them).

    python -m include.officeflow.store migrate            upgrade to the latest schema
    python -m include.officeflow.store current            print the store's revision
    python -m include.officeflow.store reset --yes        drop everything, then migrate (all rows lost)
    python -m include.officeflow.store revision NAME      autogenerate the next migration from the models
"""

from __future__ import annotations

import argparse
import sys

from include.officeflow.settings import ConfigurationError, get_settings
from include.officeflow.store.db import current_revision, migrate, new_revision, reset


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m include.officeflow.store")
    parser.add_argument("command", choices=["migrate", "current", "reset", "revision"])
    parser.add_argument("name", nargs="?", help="revision: what the migration does, e.g. add_teams")
    parser.add_argument("--url", help="store URL (default: OFFICEFLOW_DB_URL / settings)")
    parser.add_argument("--yes", action="store_true", help="reset: do it (every row of the store is lost)")
    args = parser.parse_args(argv)
    if args.command == "revision":
        if not args.name:
            parser.error("revision needs a NAME, e.g. `revision add_teams`")
        print(f"wrote {new_revision(args.name)}")
        return 0
    try:
        url = args.url or get_settings().db_url
    except ConfigurationError as exc:
        print(exc, file=sys.stderr)
        return 2
    if args.command == "reset":
        if not args.yes:
            parser.error("reset deletes every row of the store: pass --yes")
        reset(url)
    elif args.command == "migrate":
        migrate(url)
    print(f"officeflow store at revision {current_revision(url)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
