"""Reads Kubernetes manifests from files, folders and stdin into plain dicts.

Loading is forgiving by design: one broken document is reported with its file and
index, and every other document is still returned, so a typo in one file never hides
the expiry of a certificate described in another.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TextIO, overload

import yaml

from rotator.model import RawObject, Source

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


_BASE_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when installed: ~10x faster


class _ManifestLoader(_BASE_LOADER):  # type: ignore[misc]
    """SafeLoader that keeps unquoted timestamps as strings.

    Kubernetes' YAML decoder does the same, so ``creationTimestamp: 2024-01-01T00:00:00Z``
    is a valid string field there; a ``datetime`` here would make the object invalid.
    """


def _construct_mapping(self: Any, node: Any, deep: bool = False) -> Any:
    """Duplicate keys are an error, as in kubectl's strict decoding: a server with two
    `tls:` keys would otherwise silently use the second."""
    seen: dict[Any, int] = {}
    for key_node, _value in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue  # `<<:` merges may override, by design
        key = self.construct_object(key_node, deep=True)
        try:
            first = seen.get(key)
        except TypeError:
            continue  # an unhashable key: the base constructor reports it
        if first is not None:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first at line {first + 1})", key_node.start_mark
            )
        seen[key] = key_node.start_mark.line
    return yaml.SafeLoader.construct_mapping(self, node, deep=deep)


_ManifestLoader.construct_mapping = _construct_mapping
_ManifestLoader.add_constructor("tag:yaml.org,2002:map", lambda loader, node: loader.construct_mapping(node, deep=True))

_ManifestLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in _BASE_LOADER.yaml_implicit_resolvers.items()
}


class InputError(Exception):
    """The input as a whole cannot be read (missing path, unreadable file)."""


@dataclass(frozen=True)
class LoadError:
    source: Source
    message: str


@dataclass
class LoadResult:
    objects: list[RawObject] = field(default_factory=list)
    errors: list[LoadError] = field(default_factory=list)


def expand_paths(paths: Iterable[str], exclude: Iterable[str] = ()) -> list[str]:
    """Files as given, folders walked recursively for manifest suffixes, sorted for stable
    output. A walk skips dot-folders (``.git``, ``.venv``) and Helm chart ``templates/``
    (Go templates, not manifests), and whatever ``exclude`` globs match (a path relative
    to the folder, or any part of it); a file named explicitly is always read."""
    import fnmatch

    globs = tuple(exclude)
    out: list[str] = []
    for p in paths:
        if p == "-":
            out.append(p)
            continue
        path = Path(p)
        if path.is_dir():
            found = []
            for f in path.rglob("*"):
                rel = f.relative_to(path)
                parts = rel.parts[:-1]
                if any(part.startswith(".") for part in parts) or _helm_templates(path, rel):
                    continue
                if any(fnmatch.fnmatch(str(rel), g) or any(fnmatch.fnmatch(x, g) for x in rel.parts) for g in globs):
                    continue
                if f.is_file() and f.suffix.lower() in MANIFEST_SUFFIXES:
                    found.append(str(f))
            out.extend(sorted(found))
        elif path.exists():
            out.append(p)
        else:
            raise InputError(f"{p}: no such file or directory")
    return out


def _helm_templates(root: Path, rel: Path) -> bool:
    """Inside a chart's templates/ (a Chart.yaml beside it): Go templates, not manifests."""
    parts = rel.parts
    for i, part in enumerate(parts[:-1]):
        if part == "templates" and (root.joinpath(*parts[:i]) / "Chart.yaml").exists():
            return True
    return False


def load(
    paths: Iterable[str],
    stdin: TextIO | None = None,
    progress: Callable[[str], None] | None = None,
    exclude: Iterable[str] = (),
) -> LoadResult:
    result = LoadResult()
    for p in expand_paths(paths, exclude):
        if p == "-":
            if stdin is None:
                raise InputError("-: standard input is not available")
            text = stdin.read()
            name = "<stdin>"
        else:
            name = os.path.relpath(p) if not os.path.isabs(p) else p
            try:
                raw = Path(p).read_bytes()
            except OSError as exc:
                raise InputError(f"{p}: cannot read: {exc.strerror or exc}") from exc
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                # Content, not access: report this file and go on with the others.
                result.errors.append(
                    LoadError(Source(name, 0), f"not UTF-8 text (byte {exc.start}); the file is skipped")
                )
                if progress is not None:
                    progress(name)
                continue
        parse_text(text, name, result)
        if progress is not None:
            progress(name)
    return result


def parse_text(text: str, name: str, result: LoadResult) -> None:
    """Parse one file's text (YAML stream or JSON) into ``result``."""
    if name.endswith(".json") or text.lstrip().startswith(("{", "[")):
        try:
            doc = json.loads(text)
        except (json.JSONDecodeError, RecursionError):
            pass  # maybe YAML flow style (or absurdly deep); the YAML parser reports it
        else:
            _add_document(doc, Source(name, 0), result)
            return
    for index, doc in _yaml_documents(text, name, result):
        _add_document(doc, Source(name, index), result)


def _yaml_documents(text: str, name: str, result: LoadResult) -> Iterator[tuple[int, Any]]:
    """Yield (index, document), resynchronising after a broken document.

    PyYAML's stream loader stops at the first syntax error, so split the stream on
    document markers first and parse each piece alone.
    """
    for index, (first_line, chunk) in enumerate(_split_documents(text, with_lines=True)):
        if not chunk.strip():
            continue
        try:
            doc = yaml.load(chunk, Loader=_ManifestLoader)  # a SafeLoader subclass: no arbitrary objects
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            # lines of the file, as an editor shows them (not of the document)
            where = f" (line {first_line + mark.line + 1}, column {mark.column + 1})" if mark else ""
            problem = getattr(exc, "problem", None) or (str(exc).splitlines() or [type(exc).__name__])[0]
            problem = re.sub(
                r"\(first at line (\d+)\)", lambda m, off=first_line: f"(first at line {int(m[1]) + off})", problem
            )
            result.errors.append(LoadError(Source(name, index), f"invalid YAML{where}: {problem}"))
            continue
        except Exception as exc:
            # Explicit tags with bad values (``!!int abc``, ``!!timestamp``) fail inside
            # PyYAML's constructors with arbitrary exceptions whose text quotes the value,
            # which may be key material: report the kind of failure only.
            result.errors.append(
                LoadError(Source(name, index), f"invalid YAML: a value could not be constructed ({type(exc).__name__})")
            )
            continue
        if doc is not None:
            problem = alias_amplification(doc)
            if problem is not None:
                result.errors.append(LoadError(Source(name, index), problem))
                continue
            yield index, doc


# YAML aliases let a small file describe an enormous object ("billion laughs"): PyYAML
# shares the aliased node, but everything downstream walks it as if written out. A
# document whose aliases add more than this many nodes is refused (docs/report-format.md).
MAX_ALIAS_NODES = 100_000


def alias_amplification(doc: Any, limit: int = MAX_ALIAS_NODES) -> str | None:
    """Why the document is refused (aliases expand it past ``limit`` extra nodes, or an
    alias refers to its own ancestor), or None. Linear in the document as written."""
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[Any, bool]] = [(doc, False)]
    while stack:
        node, done = stack.pop()
        if not isinstance(node, dict | list):
            continue
        key = id(node)
        children = list(node.values()) if isinstance(node, dict) else node
        if done:
            on_path.discard(key)
            sizes[key] = 1 + sum(sizes.get(id(c), 1) for c in children)
            continue
        if key in on_path:
            return "refused: a YAML alias refers to a node that contains it (a recursive document)"
        if key in sizes:
            continue  # met again through an alias: its size is known
        on_path.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in children if isinstance(c, dict | list))
    # As written: each distinct container once, with its scalars (a plain 100 MB list of
    # Secrets is large, not amplified); expanded: every path through the aliases.
    written = sum(
        1 + sum(1 for c in (n.values() if isinstance(n, dict) else n) if not isinstance(c, dict | list))
        for n in _distinct(doc)
    )
    expanded = sizes.get(id(doc), 1)
    if expanded - written > limit:
        return (
            f"refused: YAML aliases expand this document by {expanded - written:,} objects (limit "
            f"{limit:,}); write the objects out, or split the file"
        )
    return None


def _distinct(doc: Any) -> list[Any]:
    seen: dict[int, Any] = {}
    stack = [doc]
    while stack:
        node = stack.pop()
        if not isinstance(node, dict | list) or id(node) in seen:
            continue
        seen[id(node)] = node
        stack.extend(node.values() if isinstance(node, dict) else node)
    return list(seen.values())


@overload
def _split_documents(text: str) -> list[str]: ...
@overload
def _split_documents(text: str, with_lines: Literal[True]) -> list[tuple[int, str]]: ...


def _split_documents(text: str, with_lines: bool = False) -> list[str] | list[tuple[int, str]]:
    """The documents of a stream; ``with_lines``: each with the 0-based file line its text
    starts on (a document on the marker line starts there, else on the next)."""
    chunks: list[list[str]] = [[]]
    starts = [0]
    for number, line in enumerate(text.splitlines(keepends=True)):
        if line.startswith("---") and (len(line) == 3 or line[3] in " \t\r\n"):
            inline = line[3:].strip()
            chunks.append([line[3:].lstrip(" \t")] if inline else [])
            starts.append(number if inline else number + 1)
            continue
        chunks[-1].append(line)
    # A leading '---' creates a first chunk of nothing but blank lines, comments (a licence
    # header) or directives; it belongs to the next document, so drop it to keep indices
    # aligned with the documents of the stream.
    if len(chunks) > 1 and all(not ln.strip() or ln.lstrip().startswith(("#", "%")) for ln in chunks[0]):
        chunks, starts = chunks[1:], starts[1:]
    texts = ["".join(c) for c in chunks]
    return list(zip(starts, texts, strict=True)) if with_lines else texts


def _add_document(doc: Any, source: Source, result: LoadResult) -> None:
    if not isinstance(doc, dict):
        result.errors.append(LoadError(source, f"expected a Kubernetes object (a mapping), got {_kind_of(doc)}"))
        return
    kind = doc.get("kind")
    if isinstance(kind, str) and kind.endswith("List") and isinstance(doc.get("items"), list):
        for i, item in enumerate(doc["items"]):
            if isinstance(item, dict):
                result.objects.append(RawObject(source, item))
            else:
                result.errors.append(
                    LoadError(source, f"{kind} item {i}: expected a Kubernetes object, got {_kind_of(item)}")
                )
        return
    result.objects.append(RawObject(source, doc))


def _kind_of(value: Any) -> str:
    return {list: "a list", str: "a string", int: "a number", float: "a number", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )
