"""A page for people: the OpenAPI document rendered by Swagger UI at `/docs` (and `/` leads
there). Swagger UI's assets ship with the swagger-ui-bundle package, so the page needs no CDN.
It is a reference, not a console: a browser cannot sign requests with auth-v2, so "Try it out"
is off."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

PATH = "/docs"
_ASSETS = f"{PATH}/assets"
_PAGE = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>isales-campaign: the legacy REST API</title>
<link rel="stylesheet" href="{_ASSETS}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{_ASSETS}/swagger-ui-bundle.js"></script>
<script>
SwaggerUIBundle({{
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  supportedSubmitMethods: [],
  defaultModelsExpandDepth: 0,
}});
</script>
</body>
</html>
"""


async def _page(_request: Request) -> Response:
    return HTMLResponse(_PAGE)


async def _to_page(_request: Request) -> Response:
    return RedirectResponse(PATH)


def routes() -> list[BaseRoute]:
    return [
        Route("/", _to_page, methods=["GET"]),
        Route(PATH, _page, methods=["GET"]),
        Mount(_ASSETS, StaticFiles(directory=str(swagger_ui_path))),
    ]
