"""The ``tradecast`` command. Each sub-command group lives in its own module here."""

from __future__ import annotations

import typer

from tradecast.cli.chat_sim import chat_sim
from tradecast.cli.common import cli_context
from tradecast.cli.desk import run, tick
from tradecast.cli.doctor import doctor
from tradecast.cli.eval import eval_app
from tradecast.cli.eval_walkforward import walk_forward_command
from tradecast.cli.market import market_app
from tradecast.cli.serve import serve

app = typer.Typer(
    name="tradecast",
    help="A multi-agent LLM trading desk that runs on local hardware and broadcasts itself.",
    no_args_is_help=True,
    add_completion=False,
)
app.callback()(cli_context)
app.command()(doctor)
app.command()(serve)
app.command()(tick)
app.command()(run)
app.command("chat-sim")(chat_sim)
app.add_typer(market_app, name="market")
eval_app.command("walk-forward")(walk_forward_command)
app.add_typer(eval_app, name="eval")

__all__ = ["app"]
