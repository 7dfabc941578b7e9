"""One module per `aop` sub-command; each exposes `register(subparsers)`.

A command's handler takes the parsed arguments and returns an exit code; it raises `AopError`
for failures an operator can act on, which `aop.cli.entry` prints as one line (exit 2).
"""
