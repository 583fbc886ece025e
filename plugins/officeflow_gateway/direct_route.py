"""A FastAPI route whose endpoint gets the request as it is: no dependency solving, no response model validation.

For the delivery route, the gateway's hottest path (bench/gateway_bench.py): FastAPI's per-request work for a
route with one path parameter (``solve_dependencies``, the query string and headers parsed into multidicts,
the response checked against ``response_model``) was ~20% of an edge worker's CPU (docs/BENCHMARKS.md). The
route keeps its place in the OpenAPI document, which FastAPI builds from the endpoint's signature and
``response_model`` as for any route; only the request handler differs.

The endpoint must be ``async def endpoint(<path params as str>, request: Request) -> Response``: the path
parameters come converted by the path's convertors (``{name}`` is a ``str``), nothing else is injected, and the
endpoint builds its own response (its answers are already the model's shape).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import request_response


class DirectRoute(APIRoute):
    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        # Starlette's request/response wrapper: FastAPI's opens two exit stacks per request for dependencies
        # with ``yield``, which this route has none of.
        self.app = request_response(self.get_route_handler())

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        endpoint = self.endpoint

        async def handler(request: Request) -> Response:
            response: Response = await endpoint(request=request, **request.path_params)
            return response

        return handler
