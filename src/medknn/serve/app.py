"""The FastAPI application of ``medknn serve``: the page, its static files and the JSON API."""

from __future__ import annotations

import ipaddress
import secrets
from importlib.resources import files
from typing import Annotated, Any

from fastapi import FastAPI, File, HTTPException, Query, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from medknn.errors import ImageTooLargeError, MedknnError
from medknn.serve.service import CaseService

TOKEN_ENV_VAR = "MEDKNN_SERVE_TOKEN"
STATIC = files("medknn.serve") / "static"
# The page loads nothing from elsewhere (it works offline) and runs no inline script, so an
# escaping slip in a label or file name could not execute.
PAGE_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data: blob:; script-src 'self'; style-src 'self'; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
# Reachable without the token: the page itself holds no data, and health tells the page
# whether to ask for a token.
_OPEN_PATHS = ("/api/health",)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _error(status: int, message: str, **headers: str) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=status, headers=headers or None)


def create_app(service: CaseService, *, token: str | None = None) -> FastAPI:
    """The app for one loaded run; with ``token`` every API call but health needs
    ``Authorization: Bearer <token>``."""
    limits = service.limits
    app = FastAPI(
        title="medknn serve",
        description="Class and nearest training cases of uploaded medical images.",
        version="1",
    )

    @app.middleware("http")
    async def guard(request: Request, call_next: Any) -> Response:
        path = request.url.path
        if token and path.startswith("/api/") and path not in _OPEN_PATHS:
            scheme, _, given = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not secrets.compare_digest(
                given.encode(), token.encode()
            ):
                return _error(
                    401,
                    "this server needs a token: send 'Authorization: Bearer <token>'",
                    **{"WWW-Authenticate": "Bearer"},
                )
        if request.method == "POST":
            # uvicorn stops a body at its Content-Length, so checking the header bounds the read.
            length = request.headers.get("content-length")
            if length is None or not length.isdigit():
                return _error(411, "send the upload with a Content-Length header")
            if int(length) > limits.max_request_bytes:
                return _error(
                    413,
                    f"request of {int(length)} bytes exceeds the limit of "
                    f"{limits.max_request_bytes} bytes; send fewer or smaller images",
                )
        response = await call_next(request)
        if not path.startswith(("/docs", "/redoc")):  # FastAPI's docs pages load Swagger UI
            response.headers.update(PAGE_SECURITY_HEADERS)
        return response

    @app.exception_handler(MedknnError)
    async def unreadable(request: Request, error: MedknnError) -> JSONResponse:
        status = 413 if isinstance(error, ImageTooLargeError) else 422
        return _error(status, str(error))

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(str(STATIC / "index.html"), media_type="text/html")

    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")

    @app.get("/api/health")
    def health() -> dict[str, Any]:
        """Liveness; says whether the API needs a token."""
        return {"status": "ok", "token_required": bool(token)}

    @app.get("/api/info")
    def info() -> dict[str, Any]:
        """The run: method, backbone, classes, number of neighbours, limits."""
        return service.info()

    @app.post("/api/predict")
    def predict(
        files: Annotated[list[UploadFile], File(description="PNG, JPEG or DICOM images")],
        inline: Annotated[bool, Query(description="thumbnails as data URIs as well")] = False,
    ) -> dict[str, Any]:
        """Each image's class, probabilities and nearest training cases (id, label, distance,
        thumbnail URL). Images are recognised by their content, not their names."""
        if len(files) > limits.max_files:
            raise HTTPException(
                413, f"{len(files)} images in one request; send at most {limits.max_files}"
            )
        uploads = [
            (upload.filename or f"image {i + 1}", upload.file.read())
            for i, upload in enumerate(files)
        ]
        return {"predictions": service.predict(uploads, inline=inline)}

    @app.get("/api/cases/image", responses={200: {"content": {"image/png": {}}}})
    def case_image(
        id: Annotated[str, Query(description="a training or test case id", max_length=1000)],
        size: Annotated[int | None, Query(ge=16, le=512)] = None,
    ) -> Response:
        """A case's image as the model saw it, looked up by id among the run's cases only."""
        try:
            png = service.case_png(id, size)
        except KeyError:
            raise HTTPException(404, "no training or test case has this id") from None
        return Response(png, media_type="image/png", headers={"Cache-Control": "private"})

    @app.get("/api/test-cases")
    def test_cases(
        offset: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
        wrong_only: bool = False,
        inline: bool = False,
    ) -> dict[str, Any]:
        """A page of the test split: each case, its prediction, whether it was right, and its
        nearest training cases."""
        return service.test_cases(offset, limit, wrong_only=wrong_only, inline=inline)

    return app


def run_server(
    service: CaseService, *, host: str = "127.0.0.1", port: int = 8000, token: str | None = None
) -> None:
    """Serve until interrupted (uvicorn)."""
    import uvicorn

    uvicorn.run(create_app(service, token=token), host=host, port=port, log_level="info")
