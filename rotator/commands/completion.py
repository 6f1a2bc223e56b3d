"""Shell completion scripts, generated from the argument parser itself so they never
drift from the options rotator has (like kubectl and cmctl's ``completion`` command)."""

from __future__ import annotations

import argparse


def _commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _options(parser: argparse.ArgumentParser) -> list[str]:
    return sorted({o for a in parser._actions for o in a.option_strings if o.startswith("--")})


def _choices(parser: argparse.ArgumentParser) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for a in parser._actions:
        if a.choices and a.option_strings:
            for o in a.option_strings:
                out[o] = [str(c) for c in a.choices]
    return out


def script(parser: argparse.ArgumentParser, shell: str) -> str:
    commands = _commands(parser)
    top = _options(parser)
    if shell == "fish":
        lines = [f"complete -c rotator -n '__fish_use_subcommand' -a '{' '.join(commands)}'"]
        for name, sub in commands.items():
            for opt in _options(sub):
                values = _choices(sub).get(opt)
                extra = f" -xa '{' '.join(values)}'" if values else ""
                lines.append(f"complete -c rotator -n '__fish_seen_subcommand_from {name}' -l {opt[2:]}{extra}")
        return "\n".join(lines) + "\n"
    cases = []
    for name, sub in commands.items():
        words = " ".join(_options(sub) + [o for o in top if o not in _options(sub)])
        cases.append(f'    {name}) opts="{words}" ;;')
    merged: dict[str, list[str]] = {}  # an option's values across commands (-o differs per command)
    for sub in [parser, *commands.values()]:
        for opt, choices in _choices(sub).items():
            merged.setdefault(opt, [])
            merged[opt] += [c for c in choices if c not in merged[opt]]
    values = [f'    {opt}) COMPREPLY=($(compgen -W "{" ".join(v)}" -- "$cur")); return ;;' for opt, v in merged.items()]
    body = f"""_rotator() {{
  local cur prev cmd opts i
  cur="${{COMP_WORDS[COMP_CWORD]}}"
  prev="${{COMP_WORDS[COMP_CWORD-1]}}"
  case "$prev" in
{chr(10).join(sorted(set(values)))}
  esac
  cmd=""
  for ((i = 1; i < COMP_CWORD; i++)); do
    case "${{COMP_WORDS[i]}}" in -*) ;; *) cmd="${{COMP_WORDS[i]}}"; break ;; esac
  done
  if [ -z "$cmd" ]; then
    COMPREPLY=($(compgen -W "{" ".join(commands)} {" ".join(top)}" -- "$cur"))
    return
  fi
  case "$cmd" in
{chr(10).join(cases)}
    *) opts="" ;;
  esac
  if [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
  else
    COMPREPLY=($(compgen -f -- "$cur"))
  fi
}}
complete -F _rotator rotator
"""
    if shell == "zsh":
        return "autoload -U +X bashcompinit && bashcompinit\n" + body
    return body
