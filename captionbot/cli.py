"""The `captionbot` command. Each group of subcommands lives in its own module and registers
itself here, so this file reads as the list of what the command can do."""
from __future__ import annotations

import argparse
import sys

from captionbot import ml_commands, model_commands, service_commands
from captionbot.errors import one_line
from captionbot.log_setup import configure_logging, configured_tokens
from captionbot.quiet_tensorflow import import_tensorflow_quietly, loads_tensorflow


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="captionbot", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="debug logging, TensorFlow's and Alembic's start-up messages, and the traceback of a failure")
    commands = parser.add_subparsers(dest="command", required=True)
    ml_commands.register(commands)  # train
    ml_commands.register_evaluate(commands)
    ml_commands.register_caption(commands)
    ml_commands.register_length_penalty(commands)
    service_commands.register(commands)  # up, bot, worker, migrate, sandbox
    model_commands.register(commands)  # retrain, models, model activate
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand; a failure is one line on stderr and status 1 (with -v, its traceback)."""
    from pydantic import ValidationError

    try:
        parser = build_parser()  # reads the settings for its defaults
    except ValidationError as error:
        print(f"captionbot: {settings_problem(error)}", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    # Before any subcommand runs: `captionbot up`'s children are this command too, so they share it.
    configure_logging([*configured_tokens(), getattr(args, "token", None)], verbose=args.verbose)
    try:
        if not args.verbose and loads_tensorflow(args.command, getattr(args, "queues", None), getattr(args, "action", None)):
            import_tensorflow_quietly()
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        return 130
    except Exception as error:
        if args.verbose:
            raise
        print(one_line(args.command, error), file=sys.stderr)
        return 1


# Settings whose value a message must not repeat.
SECRET_SUFFIXES = ("_TOKEN", "_SECRET", "_PASSWORD")


def settings_problem(error) -> str:
    """A pydantic ValidationError of the settings as one line: which variable, what it holds, what is wrong."""
    first = error.errors()[0]
    variable = "_".join(str(part) for part in first["loc"]).upper()
    more = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
    shown = "<hidden>" if variable.endswith(SECRET_SUFFIXES) else repr(first.get("input"))
    return f"{variable}={shown} is not a valid setting: {first['msg']}{more}"


if __name__ == "__main__":
    sys.exit(main())
