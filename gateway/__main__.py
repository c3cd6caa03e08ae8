"""``python -m gateway [serve|routes]``: serve the API, or print its access-rule table."""

from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> None:
    """Entry point: ``serve`` (default) runs uvicorn; ``routes`` prints the docs/api.md table."""
    parser = argparse.ArgumentParser(prog="python -m gateway")
    parser.add_argument("action", nargs="?", choices=["serve", "routes"], default="serve")
    args = parser.parse_args(argv)
    if args.action == "routes":
        from gateway._app import create_app
        from gateway._policy import access_matrix
        from gateway._services import in_memory_services
        from omium.kernel.settings import load_settings

        settings = load_settings()
        print(access_matrix(create_app(settings, services=in_memory_services(settings))), end="")
        return
    from omium.cli._token import gateway

    gateway(host=None, port=None)


if __name__ == "__main__":
    main()
