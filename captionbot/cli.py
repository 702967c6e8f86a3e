"""The `captionbot` command. Each group of subcommands lives in its own module and registers
itself here, so this file reads as the list of what the command can do."""
from __future__ import annotations

import argparse
import sys

from captionbot import ml_commands, model_commands, service_commands
from captionbot.log_setup import configure_logging, configured_tokens


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="captionbot", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", required=True)
    ml_commands.register(commands)  # train
    ml_commands.register_evaluate(commands)
    ml_commands.register_caption(commands)
    ml_commands.register_length_penalty(commands)
    service_commands.register(commands)  # up, bot, worker, migrate, sandbox
    model_commands.register(commands)  # retrain, models, model activate
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Before any subcommand runs: `captionbot up`'s children are this command too, so they share it.
    configure_logging([*configured_tokens(), getattr(args, "token", None)], verbose=args.verbose)
    return int(args.handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
