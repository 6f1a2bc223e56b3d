"""The CLI's commands, one module each; ``rotator/cli.py`` parses and dispatches, and
imports a command's module only when that command runs (``rotator --help`` stays fast)."""
