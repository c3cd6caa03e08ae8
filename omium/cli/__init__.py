from omium.cli._app import app

__all__ = ["app"]
