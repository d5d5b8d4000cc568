"""`lit_ner COMMAND` and `python -m lit_ner COMMAND`: the command table.

LightningCLI's subcommands (`fit`, `validate`, `test`, `predict`) go to `lit_ner.training.cli`. lit_ner's
own commands are typed functions turned into command lines by jsonargparse (`--help` comes from
their signatures and docstrings), each imported only when called, so that `lit_ner evaluate`
loads neither torch nor Lightning. From Python, call the same functions.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

# name -> "module:function" of lit_ner's own commands.
COMMANDS = {
    "evaluate": "lit_ner.evaluate:evaluate",
    "convert": "lit_ner.annotations:convert",
    "tag": "lit_ner.tagging.tag:tag",
    "serve": "lit_ner.tagging.serve:serve",
    "export": "lit_ner.export.command:export",
    "ensemble": "lit_ner.export.ensemble:ensemble",
    "summarize": "lit_ner.training.summary:summarize",
    "debug-data": "lit_ner.training.debug_data:main",
    "search": "lit_ner.training.search:search",
}


def run_command(name: str, args: list[str]) -> Any:
    """Parses `args` against command `name`'s signature and calls it; a `LitNerError` ends the
    process with one line and exit status 2, and an int returned is the exit status."""
    from jsonargparse import auto_cli, set_parsing_settings

    from lit_ner.errors import LitNerError, exit_with

    module, function = COMMANDS[name].split(":")
    command = getattr(importlib.import_module(module), function)
    if name in ("debug-data", "search"):  # parsed as `fit` parses its configs: a LightningCLI of their own
        try:
            return command(args)
        except LitNerError as exc:  # an untested Lightning, refused as the CLI class is made
            exit_with(exc)
    # `lit_ner evaluate GOLD PRED`: a second positional fills the first optional argument.
    set_parsing_settings(parse_optionals_as_positionals=name == "evaluate")
    try:
        result = auto_cli(command, args=bare_flags_set(command, args), prog=f"lit_ner {name}")
    except LitNerError as exc:
        exit_with(exc)
    finally:
        set_parsing_settings(parse_optionals_as_positionals=False)  # a process-wide setting
    if isinstance(result, int) and not isinstance(result, bool) and result:
        sys.exit(result)
    return result


BOOLEAN_WORDS = {"true", "false", "yes", "no"}


def bare_flags_set(command: Any, args: list[str]) -> list[str]:
    """`--json` alone means `--json true`, as every command line tool has it (jsonargparse wants
    the value): a boolean option of `command` not followed by a boolean word gets `true`."""
    import inspect

    parameters = inspect.signature(command).parameters.values()
    # "bool" as a string where the module has `from __future__ import annotations`.
    flags = {f"--{p.name}" for p in parameters if p.annotation in (bool, "bool")}
    filled = []
    for i, arg in enumerate(args):
        filled.append(arg)
        following = args[i + 1].lower() if i + 1 < len(args) else None
        if arg in flags and following not in BOOLEAN_WORDS:
            filled.append("true")
    return filled


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `lit_ner` console script and of `python -m lit_ner`."""
    args = sys.argv[1:] if argv is None else list(argv)
    if args and args[0] in COMMANDS:
        try:
            run_command(args[0], args[1:])
        except BrokenPipeError:  # `lit_ner evaluate ... | head`: the reader has all it wants
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
            sys.exit(1)
        return
    if args and args[0] in ("-h", "--help"):
        # LightningCLI's help lists its own subcommands; lit_ner's come first here.
        print("lit_ner's own commands: " + ", ".join(COMMANDS) + " (lit_ner COMMAND --help)\n")
    from lit_ner.errors import LitNerError, exit_with

    try:  # an untested Lightning is refused as the CLI's class is made (lit_ner.compat)
        from lit_ner.training.cli import cli_main
    except LitNerError as exc:
        exit_with(exc)
    cli_main(argv)  # None: LightningCLI reads sys.argv itself


if __name__ == "__main__":
    main()
