"""``tollway admin ...``: provisioning for operators and scripts (a published interface)."""

from __future__ import annotations

import typer

from tollway.cli import money_cmds
from tollway.cli.account_cmds import account_app, key_app
from tollway.cli.catalog_cmds import group_app, model_app
from tollway.cli.channel_cmds import channel_app
from tollway.cli.codes_cmds import codes_app
from tollway.cli.order_cmds import order_app
from tollway.cli.refund_cmds import refund_app
from tollway.cli.voucher_cmds import voucher_app

app = typer.Typer(
    help="Provision groups, models, channels, accounts, keys and credit.",
    no_args_is_help=True,
)
app.add_typer(group_app, name="group")
app.add_typer(model_app, name="model")
app.add_typer(channel_app, name="channel")
app.add_typer(account_app, name="account")
app.add_typer(key_app, name="key")
money_cmds.register(app)
app.add_typer(order_app, name="order")
app.add_typer(codes_app, name="codes")
app.add_typer(voucher_app, name="voucher")
app.add_typer(refund_app, name="refund")
