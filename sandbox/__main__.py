"""``python -m sandbox --port 8900 [--tls-port 8943] --credentials FILE``: see :mod:`sandbox.server`."""

from sandbox.server import main

main()
