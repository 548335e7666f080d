#!/usr/bin/env bash
# The docs tell the truth, or the build fails (`make test` runs this; run it alone with
# `scripts/doc-check.sh`). Every failure is printed as FILE:LINE: what is wrong.
#
# 1. Links. Every relative link in README.md, CONTRIBUTING.md and docs/*.md, inline
#    (`[x](path)`, `[x](path#anchor)`, `![x](image)`) or by reference (`[x]: path`), outside
#    code, names a file or directory of the repository; an `#anchor` (also `(#anchor)` within a
#    page) names a heading of the target Markdown file by GitHub's slug rules (the heading's
#    text lowercased, punctuation but `-` and `_` dropped, spaces made `-`, `-1`, `-2`, ... for
#    repeats). External links are not fetched (the tests run offline): an http(s) link must
#    only parse as a URL with a host; other schemes but mailto: are refused.
#
# 2. YAML examples. Every ```yaml block of the same files is sorted by its top-level
#    keys (read from `berth config schema`):
#      - only `users:`                                 users.yaml
#      - only `templates:`                             containers.yaml
#      - only keys of a users.d file (max_workspaces, templates, memory, cpus), not only
#        `templates:`                                  users.d/alice.yaml
#      - any key of main.yaml                          main.yaml (so a misspelt key beside
#                                                      valid ones fails instead of being skipped)
#    and is then checked by `berth config check` on a temporary home holding the block as that
#    file and, as the other files, the context below (templates base, python and gpu, the user
#    alice, bind mounts allowed under /srv/datasets), so references between files are checked
#    too. Blocks that are not Berth configuration files are skipped by these rules, written down
#    here so nothing is skipped by accident:
#      - docs/kubernetes.md: Helm values of the chart (scripts/helm-check.sh lints and renders
#        them against values.schema.json);
#      - the fleet inventory, top-level `machines:` (links.yaml) or `scripts:` (scripts.yaml):
#        Berth has no offline command that validates them; the fleet crate's tests do;
#      - the CLI's own config.yaml (`server:`, `token:`, ...), kubeconfigs (`apiVersion:`)
#        and CI files (`jobs:`, `steps:`, `on:`).
#    Any other ```yaml block is an error: say what it is by one of the rules, or mark it.
#    A block preceded by `<!-- doc-check: invalid -->` (blank lines between allowed) is an
#    example of what Berth refuses: it must fail the check. `<!-- doc-check: skip -->` skips a
#    block, and must say why on the same line after the word skip.
#
# 3. Commands. Every `berth ...` command in ```sh (and ```bash, ```shell) blocks of README.md,
#    CONTRIBUTING.md and docs/*.md is "run" through the CLI's own parser without doing anything:
#    for each command path (`berth cluster create`) `berth PATH -h` must succeed, each word of
#    the path must be a subcommand listed by its parent's help (aliases included), each
#    `--flag` and `-f` must be an option in that help (taking a value when the help shows one),
#    and the positional arguments must fit the help's Arguments (not too many, none required
#    missing). Values are not parsed, so placeholders (NAME, ID, `…`, SHA256:…) are fine;
#    `[...]` around words is the docs' notation for "optional" and is dropped. Commands are
#    found after `|`, `&&`, `||`, `;`, inside `$(...)`, after `sudo` and `runuser` (and their
#    options), `exec`, `env` and `VAR=value`;
#    redirections and comments are dropped. `make run` and `make test` of the README are not
#    run here (CI runs `make test` itself).
#
# Before the repository, the check runs on a fixture of its own (FIXTURE below: one right and
# one wrong case of each rule) and fails (status 2) unless it reports exactly the wrong ones,
# so a check that quietly stopped finding problems fails the build as well.
#
# The berth binary: $BERTH_BIN when set, else `cargo build -p berth` (a no-op once built).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
command -v python3 >/dev/null || ensure_packages python3

if [ -z "${BERTH_BIN:-}" ]; then
  BERTH_BIN=$(cargo build --locked -q -p berth --bin berth --message-format=json |
    python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "berth":
        print(m["executable"])')
fi
if [ ! -x "$BERTH_BIN" ]; then
  echo "doc-check: no berth binary at ${BERTH_BIN:-?}" >&2
  exit 1
fi
export BERTH_BIN

exec python3 - "$@" <<'PYTHON'
import html
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import urllib.parse
from pathlib import Path

BERTH = os.environ["BERTH_BIN"]
ROOT = Path.cwd()
failures = []
counts = {"links": 0, "yaml": 0, "commands": 0}


def fail(path, line, message):
    failures.append(f"{path}:{line}: {message}")


def rel(path):
    return str(Path(path).relative_to(ROOT)) if Path(path).is_absolute() else str(path)


# A clean environment for berth: no BERTH_* of the caller, no colour.
ENV = {k: v for k, v in os.environ.items() if not k.startswith("BERTH_") and k != "DOCKER_HOST"}
ENV["NO_COLOR"] = "1"

LINK_FILES = YAML_FILES = COMMAND_FILES = []


def use_root(root):
    """Checks the tree at `root` from now on, with nothing found yet."""
    global ROOT, LINK_FILES, YAML_FILES, COMMAND_FILES
    ROOT = root.resolve()
    files = sorted({ROOT / "README.md", ROOT / "CONTRIBUTING.md", *ROOT.glob("docs/*.md")})
    LINK_FILES = YAML_FILES = COMMAND_FILES = [p for p in files if p.exists()]
    failures.clear()
    counts.update(links=0, yaml=0, commands=0)
    _anchors.clear()


# ---------------------------------------------------------------- Markdown structure

FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*([\w+-]*)")


def blocks(path):
    """Fenced code blocks: (language, first line number of the content, lines, lines before)."""
    lines = path.read_text(encoding="utf-8").split("\n")
    out = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence, lang = m.group(1), m.group(2), m.group(3).lower()
        start = i + 1
        j = start
        while j < len(lines) and not lines[j].strip().startswith(fence[0] * len(fence)):
            j += 1
        body = [l[len(indent):] if l.startswith(indent) else l.lstrip() for l in lines[start:j]]
        out.append((lang, start + 1, body, lines[:i]))
        i = j + 1
    return out


def prose_lines(path):
    """(line number, text) outside fenced code, with inline code spans blanked."""
    for n, line in prose_lines_raw(path):
        yield n, re.sub(r"(`+)(.+?)\1", lambda s: " " * len(s.group(0)), line)


def slug(text):
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)  # links keep their text
    text = html.unescape(re.sub(r"<[^>]+>", "", text))  # tags dropped, entities decoded
    text = text.replace("`", "").replace("*", "")
    text = text.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


_anchors = {}


def anchors(path):
    if path not in _anchors:
        seen = {}
        found = set()
        for _, line in prose_lines_raw(path):
            m = re.match(r"^(#{1,6})\s+(.*?)\s*#*\s*$", line)
            if not m:
                continue
            base = slug(m.group(2))
            k = seen.get(base, 0)
            seen[base] = k + 1
            found.add(base if k == 0 else f"{base}-{k}")
        for m in re.finditer(r'<a\s+(?:name|id)="([^"]+)"', path.read_text(encoding="utf-8")):
            found.add(m.group(1))
        _anchors[path] = found
    return _anchors[path]


def prose_lines_raw(path):
    """(line number, text) outside fenced code, inline code kept (headings use it)."""
    inside = None
    for n, line in enumerate(path.read_text(encoding="utf-8").split("\n"), 1):
        m = FENCE.match(line)
        if m:
            if inside is None:
                inside = m.group(2)[0] * len(m.group(2))
                continue
            if line.strip().startswith(inside):
                inside = None
                continue
        if inside is None:
            yield n, line


# ---------------------------------------------------------------- 1. links

INLINE = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$")
AUTOLINK = re.compile(r"<(https?://[^>\s]+)>")


def check_link(path, n, target):
    counts["links"] += 1
    if not target:
        fail(rel(path), n, "empty link target")
        return
    scheme = urllib.parse.urlsplit(target).scheme
    if scheme in ("http", "https"):
        parts = urllib.parse.urlsplit(target)
        if not parts.netloc or " " in target:
            fail(rel(path), n, f"malformed URL {target!r}")
        return
    if scheme == "mailto":
        return
    if scheme:
        fail(rel(path), n, f"link with the scheme {scheme!r}: {target!r}")
        return
    file_part, _, anchor = target.partition("#")
    file_part = urllib.parse.unquote(file_part)
    if file_part.startswith("/"):
        fail(rel(path), n, f"absolute link {target!r}: make it relative to {rel(path)}")
        return
    dest = (path.parent / file_part).resolve() if file_part else path
    if not dest.exists():
        fail(rel(path), n, f"broken link {target!r}: {rel(dest)} does not exist")
        return
    if anchor and dest.suffix == ".md":
        if anchor not in anchors(dest):
            fail(rel(path), n, f"broken anchor {target!r}: no heading #{anchor} in {rel(dest)}")


def check_links():
    for path in LINK_FILES:
        for n, line in prose_lines(path):
            for m in INLINE.finditer(line):
                check_link(path, n, m.group(1))
            m = REFERENCE.match(line)
            if m:
                check_link(path, n, m.group(1))
            for m in AUTOLINK.finditer(line):
                check_link(path, n, m.group(1))


# ---------------------------------------------------------------- 2. YAML examples

def berth(*args, **kw):
    return subprocess.run([BERTH, *args], capture_output=True, text=True, env=ENV, stdin=subprocess.DEVNULL, **kw)


schema = json.loads(berth("config", "schema").stdout)
MAIN_KEYS = set(schema["$defs"]["MainConfig"]["properties"])
USERS_D_KEYS = set(schema["$defs"]["UserOverrides"]["properties"])

CONTEXT = {
    "main.yaml": "runtime:\n  allowed_bind_mounts: [/srv/datasets]\n",
    "containers.yaml": "templates:\n"
    + "".join(f"  - name: {t}\n    image: berth-test/base\n" for t in ("base", "python", "gpu")),
    "users.yaml": "users:\n  - username: alice\n    id: 6f1c2a9e-8d4b-4c47-9a53-0b1d2e3f4a5b\n",
}
NOT_BERTH = [
    ({"machines"}, "links.yaml"),
    ({"scripts"}, "scripts.yaml"),
    ({"server", "token", "client_id", "token_client_id", "username", "ca", "insecure_http"}, "the CLI's config.yaml"),
    ({"apiVersion", "kind", "clusters", "contexts", "users", "current-context"}, "Kubernetes"),
    ({"jobs", "steps", "on", "name"}, "CI"),
]


def top_keys(body):
    keys = []
    for line in body:
        m = re.match(r"^([A-Za-z_][\w.-]*|\"[^\"]+\")\s*:(\s|$)", line)
        if m:
            keys.append(m.group(1).strip('"'))
        elif line.startswith("{}"):
            keys.append("{}")
    return keys


def classify(keys):
    ks = set(keys)
    if "apiVersion" in ks:
        return None, "Kubernetes"  # before main.yaml: a kubeconfig has `clusters:` too
    if ks == {"users"}:
        return "users.yaml"
    if ks == {"templates"}:
        return "containers.yaml"
    if ks and ks <= USERS_D_KEYS:
        return "users.d/alice.yaml"
    if ks & MAIN_KEYS or ks == {"{}"}:
        return "main.yaml"
    for names, what in NOT_BERTH:
        if ks and ks <= names:
            return None, what
    return None, None


def marker(before):
    for line in reversed(before):
        if not line.strip():
            continue
        m = re.match(r"\s*<!--\s*doc-check:\s*(\w+)(.*?)-->", line)
        return (m.group(1), m.group(2).strip()) if m else (None, "")
    return None, ""


def config_check(file, body):
    with tempfile.TemporaryDirectory(prefix="berth-doc-check-") as home:
        config = Path(home, "config")
        (config / "users.d").mkdir(parents=True)
        for name, text in CONTEXT.items():
            (config / name).write_text(text)
        if file is not None:
            (config / file).write_text("\n".join(body) + "\n")
        result = berth("config", "check", "--home", home)
        out = (result.stdout + result.stderr).replace(str(config) + "/", "").replace(str(config), "config")
        return result.returncode == 0, out.strip()


def check_yaml():
    ok, out = config_check(None, [])
    if not ok:
        fail("scripts/doc-check.sh", 1, f"the YAML context of the check is invalid:\n{out}")
        return
    for path in YAML_FILES:
        if not path.exists():
            continue
        for lang, first, body, before in blocks(path):
            if lang not in ("yaml", "yml"):
                continue
            mark, why = marker(before)
            if mark == "skip":
                if not why:
                    fail(rel(path), first, "`doc-check: skip` must say why")
                continue
            if mark not in (None, "invalid"):
                fail(rel(path), first - 1, f"unknown doc-check marker {mark!r} (invalid, skip)")
                continue
            if path.name == "kubernetes.md":
                continue  # Helm values: scripts/helm-check.sh
            kind = classify(top_keys(body))
            if isinstance(kind, tuple):
                if kind[1] is None:
                    fail(rel(path), first, f"a YAML block that is no Berth file (keys {sorted(set(top_keys(body)))}): "
                         "say what it is in scripts/doc-check.sh or mark it `<!-- doc-check: skip WHY -->`")
                continue
            counts["yaml"] += 1
            ok, out = config_check(kind, body)
            if mark == "invalid":
                if ok:
                    fail(rel(path), first, f"marked invalid, but berth config check accepts it as {kind}")
            elif not ok:
                detail = "\n".join("    " + l for l in out.splitlines())
                fail(rel(path), first, f"this {kind} example is refused by berth config check:\n{detail}")


# ---------------------------------------------------------------- 3. commands

_helps = {}


def help_of(path):
    """The parsed `berth PATH -h`, or None when it fails."""
    key = tuple(path)
    if key not in _helps:
        result = berth(*path, "-h")
        _helps[key] = parse_help(result.stdout) if result.returncode == 0 else None
    return _helps[key]


def parse_help(text):
    commands, options, args = {}, {}, []
    section = None
    entry = None
    for line in text.split("\n"):
        if re.match(r"^[A-Z][\w ]*:\s*$", line):
            section = line.strip().rstrip(":")
            entry = None
            continue
        if not line.strip():
            entry = None
            continue
        if section == "Commands":
            m = re.match(r"^  (\S+)(\s+(.*))?$", line)
            if m and not line.startswith("   "):
                entry = m.group(1)
                commands[entry] = entry
                line = m.group(3) or ""
            for am in re.finditer(r"\[aliases?: ([^\]]+)\]", line):
                for alias in am.group(1).split(","):
                    commands[alias.strip()] = entry
        elif section in ("Options", "Arguments"):
            if section == "Options":
                m = re.match(r"^ {2}(?:-(\w))?(?:, )?(?: {0,4}--([\w-]+))?(?:[ =]<([^>]+)>|\s\[<([^>]+)>\])?", line)
                if m and (m.group(1) or m.group(2)) and re.match(r"^ {2,6}-", line):
                    takes = bool(m.group(3) or m.group(4))
                    if m.group(1):
                        options["-" + m.group(1)] = takes
                    if m.group(2):
                        options["--" + m.group(2)] = takes
            else:
                m = re.match(r"^ {2}(<[^>]+>|\[[^\]]+\])(\.\.\.)?", line)
                if m:
                    args.append((m.group(1).startswith("<"), bool(m.group(2))))
    return {"commands": commands, "options": options, "args": args}


SHELL_WORDS = {"sudo", "runuser", "exec", "time", "env", "nohup", "command"}


def commands_in(text):
    """The argument lists of every `berth` command in one logical shell line."""
    found = []
    # $(...) first, innermost out: each is a command of its own.
    while True:
        m = re.search(r"\$\(([^()]*)\)", text)
        if not m:
            break
        found += commands_in(m.group(1))
        text = text[: m.start()] + "…" + text[m.end():]
    lexer = shlex.shlex(text, posix=True, punctuation_chars=";&|<>()")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    words = list(lexer)
    simple = []
    for w in words + [";"]:
        if w and set(w) <= set(";&|()"):
            found += berth_args(simple)
            simple = []
        else:
            simple.append(w)
    return found


def berth_args(words):
    # Redirections and their targets go.
    out, skip = [], False
    for w in words:
        if skip:
            skip = False
            continue
        if re.fullmatch(r"\d*[<>]+&?\d*", w):
            skip = not re.fullmatch(r"\d*[<>]&\d+", w)
            continue
        out.append(w)
    while out and (out[0] in SHELL_WORDS or re.fullmatch(r"[A-Za-z_]\w*=.*", out[0])):
        if out.pop(0) in ("sudo", "runuser"):
            # Their own options: `sudo -u berth -E berth …`, `runuser -u berth -- berth …`.
            while out and out[0].startswith("-"):
                option = out.pop(0)
                if option == "--":
                    break
                if option in ("-u", "-g", "-C", "-D", "-h", "-p", "-U", "-r", "-t", "-s") and out:
                    out.pop(0)
    if not out or out[0] != "berth":
        return []
    args = []
    for w in out[1:]:
        w = w.strip("[]") if w.startswith("[") or w.endswith("]") else w
        if w:
            args.append(w)
    return [args]


def check_command(file, n, args, shown):
    counts["commands"] += 1
    path = []
    h = help_of(path)
    positionals = 0
    i = 0
    if args[:1] == ["help"]:
        args = args[1:] + ["-h"]
    while i < len(args):
        a = args[i]
        i += 1
        if a in ("-h", "--help", "-V", "--version"):
            continue
        if a.startswith("--"):
            name, eq, _ = a.partition("=")
            if name not in h["options"]:
                fail(file, n, f"`{shown}`: {' '.join(['berth', *path])} has no option {name}")
                return
            if h["options"][name] and not eq:
                i += 1
            continue
        if a.startswith("-") and len(a) > 1 and not re.fullmatch(r"-\d+", a):
            for k, c in enumerate(a[1:]):
                if "-" + c not in h["options"]:
                    fail(file, n, f"`{shown}`: {' '.join(['berth', *path])} has no option -{c}")
                    return
                if h["options"]["-" + c]:
                    if k == len(a) - 2:
                        i += 1
                    break
            continue
        if h["commands"] and positionals == 0 and a in h["commands"]:
            path.append(h["commands"][a])
            h = help_of(path)
            if h is None:
                fail(file, n, f"`{shown}`: `berth {' '.join(path)} -h` fails")
                return
            continue
        if h["commands"] and not h["args"]:
            fail(file, n, f"`{shown}`: {' '.join(['berth', *path])} has no subcommand {a!r}")
            return
        positionals += 1
    spec = h["args"]
    if not any(var for _, var in spec) and positionals > len(spec):
        fail(file, n, f"`{shown}`: {' '.join(['berth', *path])} takes at most {len(spec)} argument(s), {positionals} given")
    required = sum(1 for req, _ in spec if req)
    if positionals < required and not h["commands"]:
        fail(file, n, f"`{shown}`: {' '.join(['berth', *path])} needs {required} argument(s), {positionals} given")


def check_commands():
    if help_of([]) is None:
        fail("scripts/doc-check.sh", 1, f"`{BERTH} -h` fails")
        return
    for path in COMMAND_FILES:
        for lang, first, body, _ in blocks(path):
            if lang not in ("sh", "bash", "shell", "console"):
                continue
            logical, start = "", None
            for k, line in enumerate(body):
                if start is None:
                    start = first + k
                line = re.sub(r"^\$ ", "", line) if not logical else line
                logical += line + "\n"
                if line.endswith("\\"):
                    logical = logical[:-2] + " "
                    continue
                try:
                    found = commands_in(logical)
                except ValueError:
                    continue  # an open quote: the command goes on on the next line
                for args in found:
                    check_command(rel(path), start, args, " ".join(["berth", *args]))
                logical, start = "", None
            if logical.strip():
                fail(rel(path), start, "a shell line that never ends (an unclosed quote?)")


# ---------------------------------------------------------------- the check's own test

# A small tree with one right and one wrong case of everything the check looks at: each wrong
# one must be reported (at its line), and nothing else. `make test` runs it before the real
# check, so a check that stopped finding problems fails the build too.
FIXTURE = {
    "README.md": """# Fixture

[good](docs/a.md) [good anchor](docs/a.md#the-cli-berth-ls) [bad](docs/missing.md)
[bad anchor](docs/a.md#nowhere) [web](https://example.com/x) [bad web](http://)
`[not a link](nowhere.md)`
""",
    "docs/a.md": """# A

## The CLI: `berth ls`

[up](../README.md#fixture) [here](#a)

```yaml
logging:
  files_kept: 3
```

```yaml
logging:
  files_kept: 0
```

<!-- doc-check: invalid -->
```yaml
logging:
  files_kep: 3
```

<!-- doc-check: invalid -->
```yaml
logging:
  level: info
```

```yaml
users:
  - username: bob
    id: 0b6f3c1e-2f7a-4d8e-9c1b-5a4d3e2f1a0b
    templates: [base, nosuch]
```

```yaml
machines: []
```

```yaml
listen: 127.0.0.1:8080
lissen: 127.0.0.1:8080
```

```yaml
what: ever
```

```sh
berth ls --json                       # fine
echo x | berth cluster create dev --ttl 2h --wait && berth cluster ls
age -r "$(berth fleet secrets-key)" -o x y
sudo -u berth berth config check --home /var/lib/berth
berth ls --jsn
berth cluster creat dev
berth share WORKSPACE USER EXTRA
berth login
berth cluster kubeconfig dev \\
  -o FILE --forse
berth fleet secrets-keys > x
```
""",
}
EXPECTED = [
    "README.md:3: broken link 'docs/missing.md'",
    "README.md:4: broken anchor 'docs/a.md#nowhere'",
    "README.md:4: malformed URL 'http://'",
    "docs/a.md:13: this main.yaml example is refused",
    "docs/a.md:25: marked invalid, but berth config check accepts it",
    "docs/a.md:30: this users.yaml example is refused",
    "docs/a.md:41: this main.yaml example is refused",
    "docs/a.md:46: a YAML block that is no Berth file",
    "docs/a.md:54: berth ls has no option --jsn",
    "docs/a.md:55: berth cluster has no subcommand 'creat'",
    "docs/a.md:56: berth share takes at most 2 argument(s), 3 given",
    "docs/a.md:57: berth login needs 1 argument(s), 0 given",
    "docs/a.md:58: berth cluster kubeconfig has no option --forse",
    "docs/a.md:60: berth fleet has no subcommand 'secrets-keys'",
]


def self_test():
    with tempfile.TemporaryDirectory(prefix="berth-doc-check-test-") as tmp:
        for name, text in FIXTURE.items():
            Path(tmp, name).parent.mkdir(parents=True, exist_ok=True)
            Path(tmp, name).write_text(text)
        use_root(Path(tmp))
        run_checks()
        found = list(failures)
    missed = [e for e in EXPECTED if not any(f.startswith(e.split(": ", 1)[0] + ":") and e.split(": ", 1)[1] in f for f in found)]
    extra = [f for f in found if not any(f.startswith(e.split(": ", 1)[0] + ":") and e.split(": ", 1)[1] in f for e in EXPECTED)]
    for e in missed:
        print(f"doc-check self-test: not reported: {e}", file=sys.stderr)
    for f in extra:
        print(f"doc-check self-test: reported but right: {f}", file=sys.stderr)
    return not missed and not extra


def run_checks():
    check_links()
    check_yaml()
    check_commands()


if not self_test():
    print("doc-check: its self-test failed: the check itself is broken", file=sys.stderr)
    sys.exit(2)
use_root(Path.cwd())
run_checks()
for f in failures:
    print(f, file=sys.stderr)
if failures:
    print(f"doc-check: {len(failures)} problem(s) ({counts['links']} links, {counts['yaml']} YAML examples, "
          f"{counts['commands']} berth commands checked)", file=sys.stderr)
    sys.exit(1)
print(f"doc-check: {counts['links']} links, {counts['yaml']} YAML examples and {counts['commands']} berth commands "
      f"in {len(LINK_FILES)} files are right (and its self-test finds the {len(EXPECTED)} broken ones of its fixture)")
PYTHON
