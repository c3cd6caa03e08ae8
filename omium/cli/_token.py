"""``omium token`` (mint a local development JWT) and ``omium gateway`` (serve the API)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer
from rich.console import Console

from omium.cli._app import app
from omium.kernel.errors import ConfigurationError
from omium.kernel.settings import load_settings

err_console = Console(stderr=True, highlight=False)


class RoleChoice(StrEnum):
    """The gateway's roles, weakest first."""

    viewer = "viewer"
    developer = "developer"
    operator = "operator"
    admin = "admin"


@app.command()
def token(
    sub: Annotated[str, typer.Option("--sub", help="Subject (user name) of the token.")],
    tenant: Annotated[str, typer.Option("--tenant", help="Tenant the token acts for.")],
    role: Annotated[
        list[RoleChoice],
        typer.Option("--role", help="Role to grant; repeat for several."),
    ],
    ttl: Annotated[int, typer.Option("--ttl", help="Lifetime in seconds.", min=1)] = 3600,
) -> None:
    """Mint an HS256 development token for the local gateway and print it.

    Signed with OMIUM_GATEWAY__AUTH__JWT_SECRET (or the development secret); refused when
    OMIUM_ENVIRONMENT=production. Use it as `Authorization: Bearer <token>`.
    """
    from omium.gateway import mint_token

    try:
        minted = mint_token(
            load_settings(),
            subject=sub,
            tenant_id=tenant,
            roles=[choice.value for choice in role],
            ttl_s=ttl,
        )
    except ConfigurationError as exc:
        err_console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(code=1) from None
    typer.echo(minted)


@app.command()
def gateway(
    host: Annotated[str | None, typer.Option(help="Bind address (default: settings).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: settings).")] = None,
) -> None:
    """Serve the gateway API with uvicorn (settings from OMIUM_* environment variables)."""
    from omium.gateway import serve

    serve(load_settings(), host=host, port=port)
