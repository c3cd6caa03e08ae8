"""``python -m omium.gateway [serve|routes]``: serve the API, or print its access-rule table."""

from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> None:
    """Entry point: ``serve`` (default) runs uvicorn; ``routes`` prints the docs/api.md table."""
    parser = argparse.ArgumentParser(prog="python -m omium.gateway")
    parser.add_argument("action", nargs="?", choices=["serve", "routes"], default="serve")
    args = parser.parse_args(argv)
    if args.action == "routes":
        from omium.gateway._app import create_app
        from omium.gateway._policy import access_matrix
        from omium.gateway._services import in_memory_services
        from omium.kernel.settings import load_settings

        settings = load_settings()
        print(access_matrix(create_app(settings, services=in_memory_services(settings))), end="")
        return
    from omium.gateway._app import serve
    from omium.kernel.settings import load_settings

    serve(load_settings())


if __name__ == "__main__":
    main()
