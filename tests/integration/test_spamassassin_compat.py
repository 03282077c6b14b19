"""mailgate's rule engine next to SpamAssassin, on SpamAssassin's own rules (issue 5).

Every `.cf` file of Debian's spamassassin package (/usr/share/spamassassin) is copied to a
temporary folder, DIR. `mailgate rules lint DIR` must load it (exit 0) and report, each with its
file:line, what it skipped: eval: tests, settings of Perl plugins, header rules on SpamAssassin's
relay pseudo-headers, blocks for plugins mailgate does not have, ...

Then every message in tests/data/rules/compat/ is checked twice:

  mailgate      `mailgate check --json --config CFG MESSAGE`, CFG having one rules stage on DIR
  SpamAssassin  `spamassassin -t -L -x -p /dev/null -C DIR --siteconfigpath SITE` with HOME a
                temporary folder: exactly the rules of DIR, local tests only (no DNS, no
                network), no user preferences, no Bayes; SITE loads exactly the plugins mailgate
                has built in (Check, which runs the rules, ReplaceTags, MIMEHeader), so `ifplugin`
                blocks are on or off alike on both sides, and adds a header listing the hits.

and the rules each hits must be the same, on the rules both run. Compared are the rules defined in
DIR that mailgate loaded, i.e. all but:

  1. rules defined on a line the linter reported (skipped, or never matching), or anywhere inside
     an if/ifplugin block whose opening line it reported: mailgate skipped that block (a plugin or
     feature it lacks, such as capture rules) while SpamAssassin may run it or its `else` part;
  2. header rules on EnvelopeFrom: mailgate reads the SMTP MAIL FROM, which `mailgate check` is
     not given, while SpamAssassin guesses it from the message's headers;
  3. sub-rules (`__…`): neither lists them;
  4. metas that read, directly or through other metas, a rule excluded by 1 or 2 (an eval: test
     that SpamAssassin may run reads as 0 in mailgate). A meta may read a name defined nowhere in
     DIR: both read that as 0, so it does not exclude the meta.

No other difference is allowed: on the compared rules the two sets of hits must be equal.

Skipped when SpamAssassin is not installed (scripts/install-deps.sh --test installs it).
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

SPAMASSASSIN = shutil.which("spamassassin") or "/usr/bin/spamassassin"
SA_RULES = Path("/usr/share/spamassassin")
MESSAGES = Path(__file__).resolve().parents[1] / "data" / "rules" / "compat"
MESSAGE_FILES = sorted(MESSAGES.glob("*.eml"))

# SpamAssassin's site folder. The plugins: those mailgate has built in (rules/rule_file_reader.cpp,
# RuleFileReader::hasPlugin), plus Check, without which SpamAssassin runs no rule at all. A header
# listing the hits (X-Spam-Compat-Tests), whatever DIR's own add_header lines say. No Bayes.
SA_SITE_PRE = """loadplugin Mail::SpamAssassin::Plugin::Check
loadplugin Mail::SpamAssassin::Plugin::ReplaceTags
loadplugin Mail::SpamAssassin::Plugin::MIMEHeader
"""
SA_SITE_CF = """add_header all Compat-Tests _TESTS(,)_
use_bayes 0
"""

SPAMASSASSIN_SECONDS = 120  # one `spamassassin -t` (about 3 s here: it compiles DIR each time)

# "FILE:LINE: text", wherever the line puts it (the linter may prefix a category).
REPORTED = re.compile(r"(?P<file>[^\s:]+\.cf):(?P<line>\d+):\s*(?P<text>.*)$")
DEFINITION = re.compile(r"^\s*(?P<kind>header|body|rawbody|uri|full|mimeheader|meta)\s+"
                        r"(?P<name>[A-Za-z0-9_]+)\s+(?P<rest>.*)$")
BLOCK_OPEN = re.compile(r"^\s*(?:if|ifplugin)\s")
BLOCK_ELSE = re.compile(r"^\s*else\b")
BLOCK_END = re.compile(r"^\s*endif\b")
META_NAME = re.compile(r"\b[A-Za-z_][A-Za-z0-9_]*\b")
RULES_MATCHING = re.compile(r"rules_matching\(\s*([^)\s]+)\s*\)")

# Header fields whose meaning differs by design (see 2 above).
ENVELOPE_FIELDS = {"envelopefrom"}


def strip_comment(line: str) -> str:
    """SpamAssassin's rule files: '#' starts a comment unless escaped."""
    return re.sub(r"(?<!\\)#.*", "", line).rstrip()


@dataclass
class Definition:
    name: str
    kind: str
    file: str
    line: int
    rest: str
    blocks: tuple  # (file, line) of each enclosing if/ifplugin


@dataclass
class Folder:
    """The rule definitions of DIR, with the blocks each sits in."""
    definitions: list = field(default_factory=list)

    @classmethod
    def read(cls, directory: Path) -> "Folder":
        folder = cls()
        for path in sorted(directory.glob("*.cf")):
            stack = []
            for number, raw in enumerate(path.read_text(encoding="latin-1").splitlines(), 1):
                line = strip_comment(raw)
                if BLOCK_OPEN.match(line):
                    stack.append((path.name, number))
                elif BLOCK_END.match(line):
                    if stack:
                        stack.pop()
                elif BLOCK_ELSE.match(line):
                    pass  # the else part belongs to the same block (same opening line)
                else:
                    m = DEFINITION.match(line)
                    if m:
                        folder.definitions.append(Definition(m["name"], m["kind"], path.name, number,
                                                             m["rest"], tuple(stack)))
        return folder

    def names(self) -> set:
        return {d.name for d in self.definitions}


@dataclass
class Lint:
    returncode: int
    output: str
    reported: list  # (file name, line, text) of every file:line the linter printed

    @property
    def reported_lines(self) -> set:
        return {(file, line) for file, line, _ in self.reported}


def comparable_rules(folder: Folder, lint: Lint) -> set:
    """The rules whose hits must be equal (see the module's docstring)."""
    reported = lint.reported_lines
    excluded, metas = set(), {}
    for d in folder.definitions:
        if (d.file, d.line) in reported or any(block in reported for block in d.blocks):
            excluded.add(d.name)  # 1: skipped by mailgate, or in a block it skipped
        elif d.kind == "header":
            field_name = d.rest.split()[0] if d.rest.split() else ""
            field_name = field_name.removeprefix("exists:").split(":")[0].lower()
            if field_name in ENVELOPE_FIELDS:
                excluded.add(d.name)  # 2
        if d.kind == "meta":
            metas.setdefault(d.name, set()).add(d.rest)
    defined = folder.names()
    uses = {}
    for name, expressions in metas.items():
        names = set()
        for expression in expressions:
            for glob in RULES_MATCHING.findall(expression):
                names |= {other for other in defined if other != name and fnmatch.fnmatchcase(other, glob)}
            names |= set(META_NAME.findall(RULES_MATCHING.sub(" ", expression)))
        uses[name] = names & defined  # names defined nowhere read 0 on both sides
    while True:  # 4, transitively
        more = {name for name, used in uses.items() if name not in excluded and used & excluded}
        if not more:
            break
        excluded |= more
    return {name for name in defined - excluded if not name.startswith("__")}  # 3


pytestmark = pytest.mark.skipif(
    not (os.path.exists(SPAMASSASSIN) and SA_RULES.is_dir()),
    reason="SpamAssassin is not installed (apt-get install spamassassin; "
           "scripts/install-deps.sh --test installs it)")


# ------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def rules_dir(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("sa-rules")
    for path in sorted(SA_RULES.glob("*.cf")):
        shutil.copy(path, directory / path.name)
    assert len(list(directory.glob("*.cf"))) >= 20, "Debian's spamassassin ships some 60 rule files"
    return directory


@pytest.fixture(scope="module")
def sa_site(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("sa-site")
    (directory / "init.pre").write_text(SA_SITE_PRE)
    (directory / "compat.cf").write_text(SA_SITE_CF)
    return directory


@pytest.fixture(scope="module")
def sa_home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("sa-home")


@pytest.fixture(scope="module")
def folder(rules_dir) -> Folder:
    return Folder.read(rules_dir)


@pytest.fixture(scope="module")
def lint(mailgate_bin, rules_dir) -> Lint:
    run = subprocess.run([mailgate_bin, "rules", "lint", str(rules_dir)], capture_output=True, text=True,
                         timeout=120)
    output = run.stdout + run.stderr
    reported = [(Path(m["file"]).name, int(m["line"]), m["text"])
                for m in map(REPORTED.search, output.splitlines()) if m]
    return Lint(run.returncode, output, reported)


@pytest.fixture(scope="module")
def comparable(folder, lint) -> set:
    assert lint.returncode == 0, f"mailgate rules lint exited {lint.returncode}:\n{lint.output[-4000:]}"
    return comparable_rules(folder, lint)


@pytest.fixture(scope="module")
def check_config(tmp_path_factory, rules_dir) -> Path:
    directory = tmp_path_factory.mktemp("mailgate-check")
    config = directory / "mailgate.toml"
    config.write_text(f"""[server]
listen = ["127.0.0.1:2525"]
hostname = "mx.test.example"
domains = ["example.org", "example.net"]

[maildir]
path = "{directory}/maildir"

[spool]
path = "{directory}/spool"

[log]
path = "{directory}/decisions.jsonl"

[[stage]]
type = "rules"
paths = ["{rules_dir}"]
""")
    return config


# ------------------------------------------------------------------------------- helpers
def mailgate_hits(mailgate_bin: str, config: Path, message: Path) -> dict:
    run = subprocess.run([mailgate_bin, "check", "--json", "--config", str(config), str(message)],
                         capture_output=True, text=True, timeout=60)
    # `mailgate check` exits 0 whatever the verdict (1: it could not check, 2: usage).
    assert run.returncode == 0 and run.stdout.strip(), f"mailgate check exit {run.returncode}: {run.stderr[-2000:]}"
    result = json.loads(run.stdout)
    assert isinstance(result.get("score"), (int, float)), result
    return {hit["rule"]: hit for hit in result["hits"]}


def spamassassin_hits(rules_dir: Path, site: Path, home: Path, message: Path) -> set:
    env = {"HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C", "LC_ALL": "C",
           "TZ": "UTC"}
    run = subprocess.run([SPAMASSASSIN, "-t", "-L", "-x", "-p", "/dev/null", "-C", str(rules_dir),
                          "--siteconfigpath", str(site)],
                         input=message.read_bytes(), capture_output=True, timeout=SPAMASSASSIN_SECONDS, env=env)
    assert run.returncode == 0, run.stderr.decode(errors="replace")[-4000:]
    head = re.split(rb"\r?\n\r?\n", run.stdout, maxsplit=1)[0].decode("latin-1")
    # The header is folded at commas: take it with its continuation lines, drop all white space.
    m = re.search(r"^X-Spam-Compat-Tests:((?:.*)(?:\r?\n[ \t].*)*)", head, re.M)
    assert m, f"no X-Spam-Compat-Tests in SpamAssassin's output:\n{head[-4000:]}"
    tests = re.sub(r"\s+", "", m[1])
    return set() if tests in ("", "none") else set(tests.split(","))


@pytest.fixture(scope="module")
def sa_results(rules_dir, sa_site, sa_home) -> dict:
    """SpamAssassin's hits per message, computed once (each run compiles DIR: about 3 s)."""
    return {}


def sa_hits_of(sa_results, rules_dir, sa_site, sa_home, message: Path) -> set:
    if message not in sa_results:
        sa_results[message] = spamassassin_hits(rules_dir, sa_site, sa_home, message)
    return sa_results[message]


# ------------------------------------------------------------------------------- tests
@pytest.mark.time_limit(120)
def test_lint_loads_real_spamassassin_rules_and_reports_what_it_skips(lint, folder, rules_dir):
    assert lint.returncode == 0, f"mailgate rules lint exited {lint.returncode}:\n{lint.output[-4000:]}"
    # What was loaded: SpamAssassin's folder holds well over a thousand regex and meta rules.
    counts = [int(n) for n in re.findall(r"(\d+)\s+rules\b", lint.output)]
    assert counts and max(counts) >= 1000, f"no count of loaded rules >= 1000 in:\n{lint.output[-2000:]}"
    # What was skipped, each with its file:line in DIR.
    assert len(lint.reported) > 100, lint.output[-4000:]
    lengths = {p.name: len(p.read_text(encoding="latin-1").splitlines()) for p in rules_dir.glob("*.cf")}
    for file, line, text in lint.reported:
        assert file in lengths and 0 < line <= lengths[file] and text, (file, line, text)
    texts = "\n".join(text for _, _, text in lint.reported)
    # Every eval: test (Perl code) is reported: on its own line, or the ifplugin block around it
    # (20_head_tests.cf: header MISSING_HEADERS eval:check_for_missing_to_header()).
    reported = lint.reported_lines
    evals = [d for d in folder.definitions if d.rest.startswith("eval:")]
    assert any(d.name == "MISSING_HEADERS" for d in evals)
    unreported = [f"{d.file}:{d.line} {d.name}" for d in evals
                  if (d.file, d.line) not in reported and not any(b in reported for b in d.blocks)]
    assert not unreported, f"eval: tests not reported as skipped: {unreported[:20]}"
    # 20_dnsbl_tests.cf and 72_active.cf: rules on the relays SpamAssassin's trust path computes.
    assert "X-Spam-Relays-External" in texts
    # Blocks for Perl plugins mailgate does not have (DNSEval: DNS blocklists).
    assert "Mail::SpamAssassin::Plugin::DNSEval" in texts


@pytest.mark.time_limit(60)
def test_the_comparison_covers_many_rules(comparable, folder):
    """A guard against a vacuous comparison: most of SpamAssassin's regex rules take part."""
    assert len(comparable) >= 400, len(comparable)
    # One of each kind: body, meta, uri, header.
    for name in ["DEAR_FRIEND", "LOTS_OF_MONEY", "NORMAL_HTTP_TO_IP", "RATWARE_MS_HASH"]:
        assert name in folder.names() and name in comparable, name


@pytest.mark.time_limit(SPAMASSASSIN_SECONDS + 60)
@pytest.mark.parametrize("message", MESSAGE_FILES, ids=[p.stem for p in MESSAGE_FILES])
def test_hits_equal_spamassassin(message, mailgate_bin, comparable, check_config, rules_dir, sa_site, sa_home,
                                 sa_results):
    sa = sa_hits_of(sa_results, rules_dir, sa_site, sa_home, message) & comparable
    mg_all = mailgate_hits(mailgate_bin, check_config, message)
    mg = set(mg_all) & comparable
    assert mg == sa, (f"only mailgate: {sorted(mg - sa)}; only SpamAssassin: {sorted(sa - mg)}; "
                      f"both: {sorted(mg & sa)}")
    # mailgate lists no rule it did not score (SpamAssassin runs no rule scored 0 in score set 0).
    for name in mg:
        assert mg_all[name]["score"] != 0, mg_all[name]


@pytest.mark.time_limit(SPAMASSASSIN_SECONDS * 4)
def test_the_messages_exercise_many_rules(comparable, rules_dir, sa_site, sa_home, sa_results):
    """Another guard: every spam message hits at least one compared rule in SpamAssassin, and all
    the messages together a fair number of them. (The ham messages may hit none: that they hit
    nothing in mailgate either is part of what the comparison checks.)"""
    spam = [p for p in MESSAGE_FILES if p.stem.startswith("spam_")]
    assert len(spam) >= 5 and len(MESSAGE_FILES) - len(spam) >= 3
    seen = set()
    for message in MESSAGE_FILES:
        hits = sa_hits_of(sa_results, rules_dir, sa_site, sa_home, message) & comparable
        assert hits or message not in spam, f"{message.name} hits no compared rule"
        seen |= hits
    assert len(seen) >= 25, sorted(seen)
