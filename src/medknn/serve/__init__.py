"""``medknn serve``: a web page and JSON API answering an uploaded image with its class and the
nearest training cases of a finished run (FastAPI on uvicorn)."""

from medknn.serve.app import TOKEN_ENV_VAR, create_app, is_loopback, run_server
from medknn.serve.service import CaseService, Limits

__all__ = ["TOKEN_ENV_VAR", "CaseService", "Limits", "create_app", "is_loopback", "run_server"]
