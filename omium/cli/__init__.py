from omium.cli import _demo as _demo  # registers demo on the app
from omium.cli import _project as _project  # registers project/replay on the app
from omium.cli import _relay as _relay  # registers relay on the app
from omium.cli import _stack as _stack  # registers up/down/status on the app
from omium.cli import _token as _token  # registers token/gateway on the app
from omium.cli import _worker as _worker  # registers worker on the app
from omium.cli._app import app

__all__ = ["app"]
