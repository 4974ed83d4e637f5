"""Every program the tests run is one a fresh machine gets: scripts/test's apt list, the venv, or Debian's base.

The tests (and the shell scripts they run) are read, not run: ``subprocess`` argv[0]s, ``shutil.which(...)``
names, device wrappers, absolute paths like ``/usr/bin/chromium`` and the first word of each shell command.
A tool found nowhere is a missing install step that only shows on a machine nobody prepared.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parent.parent
SCRIPTS = REPO / "scripts"
# What scripts/test needs before it can install anything: apt-get installs the rest, sudo is used only when not
# root, python3 makes the venv (scripts/setup says how to get python3-venv).
PREREQUISITES = {"apt-get", "sudo", "python3"}
RUNNERS = {"run", "Popen", "check_output", "check_call", "call", "create_subprocess_exec"}
BIN_PATH = re.compile(r"^/(?:usr/)?s?bin/([\w.+-]+)$")
SHELL_WORDS = {  # keywords and builtins: not programs
    "if", "then", "else", "elif", "fi", "for", "while", "until", "do", "done", "case", "esac", "in", "function",
    "return", "exit", "echo", "printf", "set", "cd", "local", "export", "read", "shift", "test", "[", "[[", "]]",
    "command", "true", "false", "source", ".", "trap", "wait", "unset", "declare", "eval", "break", "continue",
    "getopts", "umask", "!", "time", "type", "pwd",
}
WRAPPERS = {"exec", "env", "sudo", "$sudo"}
PREFIXES = {"if", "then", "else", "elif", "while", "until", "do", "!", "time", *WRAPPERS}
PROGRAM = re.compile(r"^[A-Za-z_./][\w./+-]*$")
QUOTED = re.compile(r'"(?:\\.|[^"\\])*"' + r"|'[^']*'")


def apt_tools() -> set[str]:
    """The tools scripts/test installs with apt (its APT_TOOLS list of tool:package)."""
    block = re.search(r"^APT_TOOLS=\((.*?)^\)", (SCRIPTS / "test").read_text(), re.S | re.M)
    assert block, "scripts/test has no APT_TOOLS=( ... ) list"
    return {Path(entry.split(":", 1)[0]).name for entry in block.group(1).split()}


def in_venv(tool: str) -> bool:
    """A console script of the venv (ruff, mypy, playwright) or a module it can import."""
    if (Path(sys.executable).parent / tool).exists():
        return True
    return "." not in tool and importlib.util.find_spec(tool) is not None


def essential(tools: Iterable[str]) -> set[str]:
    """Those of ``tools`` installed from a package Debian marks Essential (on every Debian system)."""
    paths: dict[str, str] = {}
    for tool in tools:
        found = shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/sbin")
        if found:  # dpkg knows /bin/x on a merged-/usr system, and an alternative by its target's name
            for path in {Path(found), Path(found).resolve()}:
                paths[str(path)] = paths[re.sub(r"^/usr/", "/", str(path))] = tool
    assert shutil.which("dpkg-query"), "dpkg-query (Debian's dpkg) is needed to tell Essential packages apart"
    if not paths:
        return set()
    owners = subprocess.run(["dpkg-query", "-S", *paths], capture_output=True, text=True).stdout
    package_of = {path: line.split(": ", 1)[0].split(":")[0] for line in owners.splitlines()
                  if not line.startswith("diversion") and ": " in line
                  for path in [line.split(": ", 1)[1]] if path in paths}
    if not package_of:
        return set()
    flags = subprocess.run(["dpkg-query", "-W", "-f", "${Package} ${Essential}\n", *set(package_of.values())],
                           capture_output=True, text=True).stdout
    marked = {line.split()[0] for line in flags.splitlines() if line.endswith(" yes")}
    return {paths[path] for path, package in package_of.items() if package in marked}


# --- Python: what the tests call ---

class _Scope:
    """What names may hold in one function (or the module): assigned values and ``for`` loops' sequences."""

    def __init__(self, body: ast.AST, outer: _Scope | None = None) -> None:
        self.outer = outer
        self.bound: dict[str, list[ast.AST]] = {}
        for node in ast.walk(body):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        self.bound.setdefault(target.id, []).append(node.value)
            elif isinstance(node, ast.For) and isinstance(node.target, ast.Name):
                self.bound.setdefault(node.target.id, []).append(node.iter)

    def values(self, name: str) -> list[ast.AST]:
        return self.bound.get(name) or (self.outer.values(name) if self.outer else [])


def _programs(node: ast.AST | None, scope: _Scope, first_only: bool = True, depth: int = 0) -> Iterator[str]:
    """The programs an argv (or a name bound to one) starts with; wrappers add theirs."""
    if node is None or depth > 6:
        return
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        match = BIN_PATH.match(node.value)
        if match or re.fullmatch(r"[\w.+-]+", node.value):
            yield match.group(1) if match else node.value
    elif isinstance(node, ast.List | ast.Tuple):
        for item in node.elts:
            if isinstance(item, ast.Starred):  # a wrapper list in front: its programs, then go on
                yield from _programs(item.value, scope, True, depth + 1)
                continue
            yield from _programs(item, scope, True, depth + 1)
            if first_only:
                return
    elif isinstance(node, ast.Name):
        for value in scope.values(node.id):
            yield from _programs(value, scope, first_only, depth + 1)
    elif isinstance(node, ast.BoolOp):
        for value in node.values:
            yield from _programs(value, scope, first_only, depth + 1)
    elif isinstance(node, ast.IfExp):
        yield from _programs(node.body, scope, first_only, depth + 1)
        yield from _programs(node.orelse, scope, first_only, depth + 1)
    elif isinstance(node, ast.Call) and _name(node.func) == "which" and node.args:
        yield from _programs(node.args[0], scope, False, depth + 1)


def _name(func: ast.AST) -> str:
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def python_tools(path: Path) -> Iterator[tuple[str, str]]:
    """(program, where) for each program a Python test file runs or looks up."""
    tree = ast.parse(path.read_text(), str(path))
    module = _Scope(tree)
    scopes = {id(f): _Scope(f, module) for f in ast.walk(tree) if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)}

    def visit(node: ast.AST, scope: _Scope) -> Iterator[tuple[str, str]]:
        scope = scopes.get(id(node), scope)
        where = f"{_shown(path)}:{getattr(node, 'lineno', 0)}"
        argvs: list[ast.AST] = []
        if isinstance(node, ast.Call):
            if _name(node.func) == "which" and node.args:
                argvs.append(node)
            elif _name(node.func) in RUNNERS and node.args:
                argvs.append(node.args[0])
            argvs += [k.value for k in node.keywords if k.arg in ("wrapper", "executable_path")]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and BIN_PATH.match(node.value):
            argvs.append(node)
        for argv in argvs:
            for program in _programs(argv, scope):
                yield program, where
        for child in ast.iter_child_nodes(node):
            yield from visit(child, scope)

    yield from visit(tree, module)


# --- shell: the scripts the tests run ---

def _commands(line: str) -> Iterator[list[str]]:
    """The words of each simple command on one logical line, command substitutions included."""
    inner = re.findall(r"\$\(([^()]*)\)?|`([^`]*)`", line)
    line = re.sub(QUOTED, " @ ", line)  # quoted text is data
    line = re.sub(r"(^|\s)#.*$", "", line)
    for part in [line, *(a or b for a, b in inner)]:
        part = re.sub(QUOTED, " @ ", part)
        for command in re.split(r";;?|&&|\|\|?|\$\(|[(){}`]", part):
            yield command.split()


def shell_tools(path: Path, seen: set[Path] | None = None) -> Iterator[tuple[str, str]]:
    """(program, where) for the first word of each command of a shell script, and of the repo scripts it runs."""
    seen = seen if seen is not None else set()
    if path in seen:
        return
    seen.add(path)
    text = path.read_text()
    functions = set(re.findall(r"^\s*([\w-]+)\s*\(\)", text, re.M))
    logical: list[tuple[int, str]] = []  # a line ending in a backslash goes on in the next one
    for number, line in enumerate(text.splitlines(), 1):
        if logical and logical[-1][1].endswith("\\"):
            logical[-1] = (logical[-1][0], logical[-1][1][:-1] + " " + line)
        elif not line.lstrip().startswith("#"):
            logical.append((number, line))
    for number, line in logical:
        for words in _commands(line):
            while words and (words[0] in PREFIXES or re.match(r"^\w+=", words[0])):
                if words.pop(0) in WRAPPERS:  # keywords, VAR=value and wrappers in front of the program
                    while words and words[0].startswith("-"):
                        words.pop(0)
            if not words or words[0] in SHELL_WORDS or words[0] in functions or not PROGRAM.match(words[0]):
                continue
            program, where = words[0], f"{_shown(path)}:{number}"
            if program.startswith("scripts/"):
                yield from shell_tools(REPO / program, seen)
            elif program.startswith(".venv/bin/"):
                yield program.removeprefix(".venv/bin/"), where
            elif "/" not in program or BIN_PATH.match(program):
                yield Path(program).name, where


def _shown(path: Path) -> str:
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def scripts_run_by(files: Iterable[Path]) -> set[Path]:
    """The repo's scripts the test files run, which they name as a path: the folder, then the file name."""
    found = set()
    for path in files:
        found |= {SCRIPTS / name for name in re.findall(r'"scripts"\s*/\s*"([\w.-]+)"', path.read_text())}
    return {script for script in found if script.is_file()}


def unlisted_tools(files: Iterable[Path]) -> dict[str, list[str]]:
    """Programs the tests need that no install step provides, with where each is used."""
    files = list(files)
    used: dict[str, list[str]] = {}
    for path in files:
        for program, where in python_tools(path):
            used.setdefault(program, []).append(where)
    for script in sorted(scripts_run_by(files)):
        for program, where in shell_tools(script):
            used.setdefault(program, []).append(where)
    python = {"python", Path(sys.executable).name}
    candidates = {t for t in used if t not in apt_tools() | PREREQUISITES | python and not in_venv(t)}
    return {tool: sorted(set(used[tool])) for tool in sorted(candidates - essential(candidates))}


def test_every_program_the_tests_run_is_installed_by_scripts_test_or_the_venv() -> None:
    missing = unlisted_tools(sorted((REPO / "tests").glob("*.py")))
    assert not missing, ("programs the tests run that scripts/test does not install (add them to its APT_TOOLS), "
                         f"the venv does not hold, and Debian's Essential packages do not bring: {missing}")


def test_the_scan_finds_a_program_the_list_lacks(tmp_path: Path) -> None:
    """The check above can fail: a test calling tools nobody installs is reported, with the line."""
    # a made-up program no machine has; its name is put together here so that no scan of this file (ours or
    # anyone's) takes the sample text for a lookup this test makes
    unknown = "-".join(("dogmon", "no", "such", "encoder"))
    lines = ["import shutil, subprocess, sys",
             "def test_x(start_device):",
             '    subprocess.run(["openssl", "version"], check=True)',
             f'    codec = shutil.which("{unknown}") or "/usr/bin/{unknown}"',
             '    wrap = ["tcpdump", "-i", "lab"]',
             "    start_device({}, wrapper=[*wrap, sys.executable])",
             '    subprocess.run([sys.executable, "-m", "pytest"])',
             '    subprocess.run(["mosquitto", "-h"])']
    fake = tmp_path / "test_probe.py"
    fake.write_text("\n".join(lines) + "\n")
    found = unlisted_tools([fake])
    assert found == {"openssl": [f"{fake}:3"], unknown: [f"{fake}:4"], "tcpdump": [f"{fake}:6"]}, found
