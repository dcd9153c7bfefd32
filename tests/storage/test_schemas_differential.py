"""storage/schemas.py against carbon 1.1.10's own loaders, on seeded random configs.

Each config (a storage-schemas.conf and a storage-aggregation.conf) is loaded
by Carbyne's ``StorageRules`` here and by carbon 1.1.10 in ONE subprocess
running that carbon's venv (its top-level ``carbon`` package would shadow
ours): ``carbon.storage.loadStorageSchemas`` / ``loadAggregationSchemas`` with
``state.database`` a ``WhisperDatabase`` as in carbon-cache, then for every
metric name the writer's choice (first matching schema, first matching
aggregation section; ``None`` becomes whisper.create's default 0.5 /
``average``; archives sorted as whisper.create stores them). Compared: the
sections that survive, in order, with their values; how many were skipped
(carbon's log lines, Carbyne's warnings); and ~200 metric names per config.

Three families:

* accepted configs: carbon must load them, and Carbyne must agree exactly;
* configs carbon refuses (SystemExit on a bad retention, or an uncaught
  parser/regex/interpolation/assertion error): Carbyne must raise
  ``ConfigError`` naming the file and the offending line;
* a short list carbon accepts but Carbyne refuses on purpose (see
  ``STRICTER``), each checked on both sides.

Note: carbon 1.1.10's storage.py parses retentions with ``carbon.util.
parseRetentionDef`` (units exactly s m h d w y), not whisper's (which also
takes ``min``, ``minutes``, ``days``...): ``1min:1w`` or ``5minutes:30days``
make carbon-cache exit, so they belong to the refused family here.

The venv is found like tests/integration/test_relays.py finds it; the tests
that run carbon skip, naming the places looked at, when it is missing. The
differences found so far are also pinned with carbon's answers written out
(``test_known_differences_without_carbon``), so they stay covered without it.
"""
from __future__ import annotations

import json
import os
import random
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from benchmarks.ingest_workload import installed_carbon_venv
from storage.schemas import AGGREGATION_METHODS, ConfigError, StorageRules


def carbon_python() -> Path | None:
    venv = installed_carbon_venv()
    return venv / "bin" / "python" if venv is not None else None


CARBON_PYTHON = carbon_python()
needs_carbon = pytest.mark.skipif(
    CARBON_PYTHON is None,
    reason="no carbon 1.1.10 venv (.ci/run builds one: pip install carbon==1.1.10)",
)

# Runs inside carbon's venv: argv = conf dir (holding storage-schemas.conf and
# storage-aggregation.conf) and a JSON file of metric names.
ORACLE = r"""
import json, sys
conf_dir, names_path = sys.argv[1], sys.argv[2]
from carbon.conf import settings
settings["CONF_DIR"] = conf_dir          # carbon.storage builds both paths from it on import
settings["LOCAL_DATA_DIR"] = conf_dir
from carbon import log, state
from carbon.database import WhisperDatabase
state.database = WhisperDatabase(settings)   # as carbon-cache sets it before the writer loads
logged = []
log.msg = lambda *args, **kwargs: logged.append(" ".join(map(str, args)))
log.err = lambda *args, **kwargs: logged.append(" ".join(map(str, args)))
import carbon.storage as storage
out = {"log": logged}
try:
    schemas = storage.loadStorageSchemas()
    aggregations = storage.loadAggregationSchemas()
except BaseException as error:
    out["refused"] = "%s: %s" % (type(error).__name__, error)
    print(json.dumps(out))
    sys.exit(0)
out["schemas"] = [[s.name, sorted(a.getTuple() for a in s.archives)] for s in schemas[:-1]]
out["aggregations"] = [[s.name, list(s.archives)] for s in aggregations[:-1]]
policies = {}
for name in json.load(open(names_path)):
    # carbon/writer.py: the first matching schema / aggregation section decides
    archives = next(s.archives for s in schemas if s.matches(name))
    xff, method = next(s.archives for s in aggregations if s.matches(name))
    policies[name] = [sorted(a.getTuple() for a in archives),
                      0.5 if xff is None else xff, "average" if method is None else method]
out["policies"] = policies
print(json.dumps(out))
"""

SCHEMAS_FILE = "storage-schemas.conf"
AGGREGATION_FILE = "storage-aggregation.conf"


def run_carbon(conf_dir: Path, names: list[str]) -> dict:
    names_path = conf_dir / "names.json"
    names_path.write_text(json.dumps(names))
    done = subprocess.run(
        [str(CARBON_PYTHON), "-c", ORACLE, str(conf_dir), str(names_path)],
        capture_output=True, text=True, timeout=60, cwd=conf_dir,
        env={"PATH": os.environ.get("PATH", ""), "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"},
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def run_carbyne(conf_dir: Path, names: list[str]) -> dict:
    try:
        rules = StorageRules.load(conf_dir / SCHEMAS_FILE, conf_dir / AGGREGATION_FILE)
    except ConfigError as error:
        return {"refused": error}
    policies = {}
    for name in names:
        policy = rules.policy_for(name)
        policies[name] = [[list(a) for a in policy.archives], policy.x_files_factor,
                          policy.aggregation_method]
    return {
        "schemas": [[rule.name, [list(a) for a in rule.archives]] for rule in rules.schemas],
        "aggregations": [[rule.name, [rule.x_files_factor, rule.aggregation_method]]
                         for rule in rules.aggregations],
        "policies": policies,
        "warnings": list(rules.warnings),
    }


# ---------------------------------------------------------------- generators

WORDS = ["stats", "stats_counts", "carbon", "agents", "servers", "web01", "web02", "db1",
         "cpu", "load", "count", "sum", "min", "max", "upper_90", "lower", "timers", "gauges",
         "Foo", "FOO", "foo", "a", "b", "x-y", "42", "p100%", "collectd", "rate"]
SECTION_WORDS = ["default", "carbon", "stats", "collectd", "catchall", "Timers", "counts",
                 "servers web", "a.b", "1", "min", "max", "sum", "x_y"]
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}
LADDER = [1, 5, 10, 30, 60, 300, 600, 3600, 21600, 86400]  # each divides the next


def metric_name(rng: random.Random) -> str:
    name = ".".join(rng.choice(WORDS) for _ in range(rng.randint(1, 5)))
    if rng.random() < 0.1:
        name += ";env=" + rng.choice(["prod", "dev"])
    return name


def pattern(rng: random.Random) -> str:
    """A real regex over WORDS, written as it appears in the file (``%`` doubled)."""
    word, other = rng.choice(WORDS), rng.choice(WORDS)
    text = rng.choice([
        f"^{word}\\.", f"\\.{word}$", f"({word}|{other})$", f"^{word}\\..*\\.{other}",
        ".*", ".", f"(?i){word}", "[0-9]+", "^servers\\.web0[1-2]\\.", f"^(?!{word}\\.)",
        word, f"\\b{word}\\b", f"^[a-c]\\.{other}", f"{word}.*{other}$", "^$", "p100%?",
        f"^{word.upper()}", f"(?:^|\\.){word}(?:\\.|$)", "^stats(_counts)?\\.",
    ])
    return text.replace("%", "%%")


def spell_seconds(rng: random.Random, seconds: int, bare: bool) -> str:
    spellings = [f"{seconds // size}{unit}" for unit, size in UNITS.items() if seconds % size == 0]
    if bare:
        spellings.append(str(seconds))
    text = rng.choice(spellings)
    return "0" + text if rng.random() < 0.05 else text


def spell_archive(rng: random.Random, precision: int, points: int) -> str:
    """One ``precision:retention`` in any spelling carbon's parseRetentionDef takes."""
    roll = rng.random()
    if roll < 0.35:
        retention = str(points)  # a bare retention is a number of points
    elif roll < 0.85:
        retention = spell_seconds(rng, precision * points, bare=False)
    else:  # a duration that is not a whole number of points: truncated (7s:1m -> 8)
        retention = spell_seconds(rng, precision * points + rng.randrange(precision), bare=False)
    return f"{spell_seconds(rng, precision, bare=True)}:{retention}"


def archive_list(rng: random.Random) -> list[tuple[int, int]]:
    """A list whisper validates, broken on purpose now and then (carbon then skips the section)."""
    precisions = sorted(rng.sample(LADDER, rng.choice([1, 1, 2, 2, 3, 4])))
    archives: list[tuple[int, int]] = []
    for index, precision in enumerate(precisions):
        factor = precisions[index + 1] // precision if index + 1 < len(precisions) else 1
        low = max(factor, archives[-1][0] * archives[-1][1] // precision + 1 if archives else 1)
        archives.append((precision, rng.randint(low, low + rng.choice([0, 10, 500, 3000]))))
    if rng.random() < 0.15:
        precision, points = archives[-1]
        breaks = ["same precision"]
        if precision > 1:
            breaks.append("not a multiple")
        if points >= 2:
            breaks.append("shorter")
        if len(archives) >= 2 and archives[0][1] > 1:
            breaks.append("too few points")
        broken = rng.choice(breaks)
        if broken == "same precision":
            archives.append((archives[0][0], archives[0][1] + 1))
        elif broken == "not a multiple":
            archives.append((precision * 2 + 1, points * 2))
        elif broken == "shorter":
            archives.append((precision * 2, 1))
        else:
            archives[0] = (archives[0][0], rng.randint(1, precisions[1] // precisions[0] - 1))
    if rng.random() < 0.3:
        rng.shuffle(archives)
    return archives


def retentions_text(rng: random.Random, archives: list[tuple[int, int]]) -> str:
    text = ""
    for index, archive in enumerate(archives):
        if index:
            text += rng.choice([",", ", ", " , ", " ,", ",\n    ", ",\n\t"])
        text += spell_archive(rng, *archive)
    return text


def key(rng: random.Random, name: str) -> str:
    return rng.choice([name, name, name.lower(), name.upper(), name[0].upper() + name[1:]])


def option(rng: random.Random, name: str, value: str) -> str:
    return key(rng, name) + rng.choice([" = ", "=", " =", "= ", ": ", ":", " : "]) + value


def noise(rng: random.Random) -> list[str]:
    """Blank lines and full-line comments, which configparser drops."""
    return rng.choice([[], [], [""], ["# " + rng.choice(WORDS)], ["; [not.a.section]"],
                       ["", "#retentions = 1s:1s"], ["   # indented comment"]])


XFF_VALUES = ["0", "0.0", "0.5", "1", "1.0", ".3", "1e-1", "0.25", "  0.7", "-0"]
XFF_NOT_NUMBERS = ["half", "", "0,5", "50%%"]  # carbon logs the section and skips it


@dataclass
class Section:
    name: str
    options: list[tuple[str, str]] = field(default_factory=list)
    header: str = ""  # the header line when it is not simply "[name]"


def render(rng: random.Random, sections: list[Section], top: list[str] = ()) -> tuple[str, dict]:
    """The file text, and where each (section name, option) landed: {(name, option): line}."""
    lines = list(top)
    where: dict = {}
    for section in sections:
        lines += noise(rng)
        lines.append(section.header or f"[{section.name}]" + rng.choice(["", "", " ", "\t"]))
        where[(section.name, None)] = len(lines)
        for name, value in section.options:
            lines += noise(rng)
            where[(section.name, name.lower())] = len(lines) + 1
            lines += option(rng, name, value).split("\n")
    newline = "\r\n" if rng.random() < 0.15 else "\n"
    return newline.join(lines) + newline, where


def unique_names(rng: random.Random, count: int) -> list[str]:
    names: list[str] = []
    while len(names) < count:
        name = rng.choice(SECTION_WORDS) + rng.choice(["", "", str(len(names)), "_x"])
        if name not in names and name != "DEFAULT":
            names.append(name)
    return names


def schema_sections(rng: random.Random) -> list[Section]:
    names = unique_names(rng, rng.randint(2, 7))
    sections = []
    for index, name in enumerate(names):
        section = Section(name)
        if rng.random() < 0.9:
            section.options.append(("pattern", pattern(rng)))
        if rng.random() < 0.9:
            section.options.append(("retentions", retentions_text(rng, archive_list(rng))))
        if rng.random() < 0.2:
            section.options.append(("priority", str(rng.randint(0, 100))))
        later = names[index + 1:]
        if later and rng.random() < 0.1:
            # an indented "[later]" continues this value for configparser, yet carbon's
            # OrderedConfigParser lists 'later' (once more) at this point of the file
            section.options.append(("note", "see\n    [" + rng.choice(later) + "]"))
        if rng.random() < 0.08:
            # configparser opens the section, carbon's order (lines ending in ']') never uses it
            section.header = f"[{name}] # off"
        rng.shuffle(section.options)
        sections.append(section)
    if rng.random() < 0.2:
        default = Section("DEFAULT", [("retentions", retentions_text(rng, archive_list(rng)))])
        if rng.random() < 0.3:
            default.options.append(("pattern", pattern(rng)))
        sections.insert(rng.randrange(len(sections) + 1), default)
    return sections


def aggregation_sections(rng: random.Random) -> list[Section]:
    sections = []
    for name in unique_names(rng, rng.randint(1, 6)):
        section = Section(name)
        if rng.random() < 0.9:
            section.options.append(("pattern", pattern(rng)))
        if rng.random() < 0.6:
            bad = rng.random() < 0.12
            section.options.append(("xFilesFactor", rng.choice(XFF_NOT_NUMBERS if bad else XFF_VALUES)))
        if rng.random() < 0.6:
            section.options.append(("aggregationMethod", rng.choice(AGGREGATION_METHODS)))
        rng.shuffle(section.options)
        sections.append(section)
    if rng.random() < 0.15:
        default = Section("DEFAULT", [("xFilesFactor", rng.choice(XFF_VALUES))])
        sections.insert(rng.randrange(len(sections) + 1), default)
    return sections


def hide_headers(rng: random.Random, text: str, sections: list[Section]) -> str:
    """A comment holding a form feed (or another of str.splitlines()' extra breaks) then "[name]".

    Files are read line by line on \\n (\\r, \\r\\n): for carbon this is one comment line.
    """
    named = [s.name for s in sections if s.name != "DEFAULT"]
    if not named or rng.random() > 0.25:
        return text
    breaker = rng.choice(["\x0c", "\x0b", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"])
    comment = "# page" + breaker + f"[{rng.choice(named)}]"
    lines = text.split("\n")
    at = rng.randrange(1, len(lines))
    while at > 1 and lines[at][:1] in (" ", "\t"):  # not inside a multi-line value
        at -= 1
    lines.insert(at, comment)
    return "\n".join(lines)


def write_config(directory: Path, schemas: str, aggregation: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / SCHEMAS_FILE).write_bytes(schemas.encode())
    (directory / AGGREGATION_FILE).write_bytes(aggregation.encode())
    return directory


def compare(conf_dir: Path, names: list[str]) -> tuple[dict, dict]:
    return run_carbon(conf_dir, names), run_carbyne(conf_dir, names)


def assert_same(carbon: dict, carbyne: dict, conf_dir: Path) -> None:
    shown = "\n".join(f"--- {name}\n{(conf_dir / name).read_text()}"
                      for name in (SCHEMAS_FILE, AGGREGATION_FILE))
    assert "refused" not in carbon, f"carbon refused a config meant to be valid: {carbon['refused']}\n{shown}"
    assert "refused" not in carbyne, f"Carbyne refused what carbon accepts: {carbyne['refused']}\n{shown}"
    assert carbyne["schemas"] == carbon["schemas"], shown
    assert carbyne["aggregations"] == carbon["aggregations"], shown
    assert len(carbyne["warnings"]) == len(carbon["log"]), (carbyne["warnings"], carbon["log"], shown)
    differing = {name: (carbon["policies"][name], policy)
                 for name, policy in carbyne["policies"].items() if policy != carbon["policies"][name]}
    assert not differing, f"carbon vs Carbyne: {differing}\n{shown}"


# ---------------------------------------------------------------- accepted configs

@needs_carbon
@pytest.mark.parametrize("seed", range(14))
def test_random_valid_configs_give_carbons_policies(tmp_path, seed):
    rng = random.Random(f"schemas-{seed}")
    schemas = schema_sections(rng)
    schemas_text, _ = render(rng, schemas, top=noise(rng))
    schemas_text = hide_headers(rng, schemas_text, schemas)
    aggregation_text, _ = render(rng, aggregation_sections(rng), top=noise(rng))
    conf_dir = write_config(tmp_path, schemas_text, aggregation_text)
    names = [metric_name(rng) for _ in range(200)]
    assert_same(*compare(conf_dir, names), conf_dir)


# Hand-written accepted configs, each a case the random ones reach only by luck
# or one that once differed; the comment says what it shows.
EXAMPLES = {
    # A form feed (or \x0b, \x1c-\x1e) inside a comment ends a line for
    # str.splitlines() but not for file iteration. Carbyne used to scan headers
    # with splitlines(), saw "[catchall]" at line 2, and gave "web.load" the
    # catchall's 1s:1d; carbon sees a comment and gives 60:10080 via [web].
    "form feed in a comment": (
        "[first]\npattern = ^nothing$\nretentions = 1:10\n# old\x0c[catchall]\n"
        "[web]\npattern = ^web\nretentions = 1m:7d\n[catchall]\npattern = .\nretentions = 1s:1d\n",
        "",
    ),
    # "[web] ; comment" opens a section for configparser, but carbon's order only
    # takes lines ending in ']': the section is never used.
    "header with a trailing comment": (
        "[web] ; comment\npattern = ^web\nretentions = 1m:7d\n[rest]\npattern = .\nretentions = 10:10\n",
        "[sums] # x\npattern = sum\naggregationMethod = sum\n",
    ),
    # An indented "[rest]" continues the 'note' value, yet carbon lists [rest]
    # there too: [rest] is tried before [web].
    "header inside a continuation": (
        "[a]\npattern = ^nothing$\nretentions = 60:10\nnote = see\n  [rest]\n"
        "[web]\npattern = ^web\nretentions = 1m:7d\n[rest]\npattern = .\nretentions = 10:10\n",
        "",
    ),
    # [DEFAULT] is a section like the others for carbon (at its place in the
    # file) and lends its options to every section.
    "DEFAULT in the middle": (
        "[a]\npattern = ^a\n[DEFAULT]\nretentions = 10s:1h,1m:1d\npattern = ^d\n[b]\npattern = ^b\n",
        "[DEFAULT]\nxFilesFactor = 0.2\n[sum]\npattern = sum\naggregationMethod = sum\n",
    ),
    # xFilesFactor that float() refuses: carbon skips the section before looking
    # at aggregationMethod, so even an unknown method is no error.
    "bad xFilesFactor hides a bad method": (
        "[all]\npattern = .\nretentions = 60:10\n",
        "[odd]\npattern = .\nxFilesFactor = half\naggregationMethod = median\n"
        "[all]\npattern = .\naggregationMethod = max\n",
    ),
    # Sections missing pattern or retentions, and one whose archives whisper
    # refuses, are skipped; the order of the checks decides nothing here.
    "skipped sections": (
        "[no_pattern]\nretentions = 1:10\n[no_retentions]\npattern = .\n"
        "[bad_archives]\npattern = .\nretentions = 60:100,90:1000\n[ok]\npattern = x\nretentions = 7s:1m\n",
        "[no_pattern]\nxFilesFactor = 0\n[empty_pattern]\npattern =\naggregationMethod = sum\n",
    ),
}


@needs_carbon
@pytest.mark.parametrize("example", list(EXAMPLES))
def test_examples_give_carbons_policies(tmp_path, example):
    schemas_text, aggregation_text = EXAMPLES[example]
    conf_dir = write_config(tmp_path, schemas_text, aggregation_text)
    names = ["web.load", "a.x", "b.x", "d.x", "x.sum", "x", "nothing", "stats.count", ""]
    assert_same(*compare(conf_dir, names), conf_dir)


# ---------------------------------------------------------------- refused configs

SCHEMA_FAULTS = [
    # (option or None for a file-level fault, value) -- carbon exits or raises on each
    ("retentions", "5min:1d"), ("retentions", "1min:1w"), ("retentions", "5minutes:30days"),
    ("retentions", "1h:1year"), ("retentions", "1M:1d"), ("retentions", "60"),
    ("retentions", "60:1:2"), ("retentions", "60:10,"), ("retentions", ""),
    ("retentions", "60 : 10"), ("retentions", "1.5m:1d"), ("retentions", "-60:10"),
    ("retentions", "60:10x"), ("retentions", "60:1d2h"), ("retentions", "10s:6h,,1m:7d"),
    ("retentions", "10S:6H"), ("retentions", "60:\u00b2"),
    ("pattern", "(unclosed"), ("pattern", "[a-"), ("pattern", "*x"), ("pattern", "a{2,1}"),
    ("pattern", "100%"), ("pattern", "%(nothing)s"),
]
AGGREGATION_FAULTS = [
    ("xFilesFactor", "1.5"), ("xFilesFactor", "-0.1"), ("xFilesFactor", "nan"),
    ("xFilesFactor", "inf"), ("xFilesFactor", "2"), ("aggregationMethod", "median"),
    ("aggregationMethod", "Max"), ("aggregationMethod", ""), ("aggregationMethod", "avg"),
    ("pattern", "(?P<x>"), ("pattern", "50%"),
]
FILE_FAULTS = ["duplicate section", "duplicate option", "no section header", "indented header",
               "line without a delimiter", "empty header"]


def faulty_config(rng: random.Random, which: str, fault) -> tuple[str, str, int]:
    """A valid config of ``which`` with one fault added; returns both texts and the fault's line."""
    sections = schema_sections(rng) if which == "schemas" else aggregation_sections(rng)
    sections = [s for s in sections if s.name != "DEFAULT"]
    for section in sections:
        section.header = ""
        section.options = [(k, v) for k, v in section.options if k != "note"]
    top: list[str] = []
    target = ("bad", None)
    if fault in FILE_FAULTS:
        victim = rng.choice(sections)
        if fault == "duplicate section":
            sections.insert(rng.randrange(len(sections) + 1),
                            Section("dup", [("pattern", ".")]))
            sections.append(Section("dup", [("pattern", "x")]))
            target = None  # the second header
        elif fault == "duplicate option":
            victim.options.append(("pattern", "^dup$"))
            victim.options.append(("PATTERN", "^dup2$"))
            target = (victim.name, "pattern2")
        elif fault == "no section header":
            top = noise(rng) + ["pattern = ^orphan"]
        elif fault == "indented header":  # continues 'note', yet carbon lists [ghost]
            victim.options.append(("note", "see"))
            victim.options.append(("", "  [ghost]"))
            target = ("raw", None)
        else:  # a plain ParsingError, which names its line only in its list of errors
            victim.options.append(("", "pattern" if fault == "line without a delimiter" else "[]"))
            target = ("raw", None)
    else:
        name, value = fault
        bad = Section("bad", [(name, value)])
        if name != "pattern" and rng.random() < 0.7:  # carbon checks values before 'pattern'
            bad.options.append(("pattern", pattern(rng)))
        if which == "schemas" and name != "retentions":
            bad.options.append(("retentions", "60:10"))
        rng.shuffle(bad.options)
        sections.insert(rng.randrange(len(sections) + 1), bad)
        target = ("bad", name.lower())
    text, where, line = render_with_fault(rng, sections, top, target)
    valid_other = render(rng, aggregation_sections(rng) if which == "schemas"
                         else schema_sections(rng))[0]
    if which == "schemas":
        return text, valid_other, line
    return valid_other, text, line


def render_with_fault(rng, sections, top, target):
    """render(), with the special lines the file faults need, and the line of the fault."""
    lines = list(top)
    line = len(lines) if top else 0
    where: dict = {}
    seen: set = set()
    for section in sections:
        lines += noise(rng)
        lines.append(f"[{section.name}]")
        if section.name in seen and target is None:
            line = len(lines)
        seen.add(section.name)
        for name, value in section.options:
            lines += noise(rng) if name else []
            if not name:  # a raw line, right after the option before it
                lines.append(value)
                where[("raw", None)] = len(lines)
                continue
            counted = name.lower() + ("2" if (section.name, name.lower()) in where else "")
            where.setdefault((section.name, counted), len(lines) + 1)
            lines += option(rng, name, value).split("\n")
    if target is not None and target in where:
        line = where[target]
    return "\n".join(lines) + "\n", where, line


REFUSED = ([("schemas", fault) for fault in SCHEMA_FAULTS]
           + [("aggregation", fault) for fault in AGGREGATION_FAULTS]
           + [(which, fault) for fault in FILE_FAULTS for which in ("schemas", "aggregation")])


@needs_carbon
@pytest.mark.parametrize(("which", "fault"), REFUSED, ids=[f"{w}-{f}" for w, f in REFUSED])
def test_configs_carbon_refuses_are_config_errors(tmp_path, which, fault):
    rng = random.Random(f"refused-{which}-{fault}")
    schemas_text, aggregation_text, line = faulty_config(rng, which, fault)
    conf_dir = write_config(tmp_path, schemas_text, aggregation_text)
    carbon, carbyne = compare(conf_dir, ["any.metric"])
    text = (conf_dir / (SCHEMAS_FILE if which == "schemas" else AGGREGATION_FILE)).read_text()
    assert "refused" in carbon, f"carbon accepted it:\n{text}"
    error = carbyne.get("refused")
    assert isinstance(error, ConfigError), f"carbon: {carbon['refused']}; Carbyne accepted:\n{text}"
    expected = conf_dir / (SCHEMAS_FILE if which == "schemas" else AGGREGATION_FILE)
    assert (error.path, error.line) == (str(expected), line), (str(error), text)


# ---------------------------------------------------------------- deliberately stricter

# Retentions carbon 1.1.10 loads but cannot use; Carbyne refuses them at load
# time with a ConfigError on the retentions line instead:
STRICTER = [
    "1h:30m",          # 0 points: carbon would create a whisper file with an empty archive
    "60:0",            # the same, spelt as a count
    "1m:30s,1h:1d",    # 0 points again; carbon skips this section (whisper validation)
    "0:60",            # 0-second precision: every write would divide by zero
    "1:5000000000",    # points past whisper's 32-bit header: whisper.create raises per metric
    "60:100000000",    # 6e9 s of retention: past the header's 32-bit maxRetention
    "99999999999:1",   # a precision past the header's 32 bits
]


@needs_carbon
@pytest.mark.parametrize("retentions", STRICTER)
def test_carbyne_is_stricter_on_retentions_carbon_cannot_use(tmp_path, retentions):
    schemas_text = f"[ok]\npattern = ^ok\nretentions = 60:10\n\n[odd]\npattern = .\nretentions = {retentions}\n"
    conf_dir = write_config(tmp_path, schemas_text, "")
    carbon, carbyne = compare(conf_dir, ["ok.x"])
    assert "refused" not in carbon
    assert carbon["policies"]["ok.x"] == [[[60, 10]], 0.5, "average"]
    error = carbyne["refused"]
    assert isinstance(error, ConfigError)
    assert (error.path, error.line) == (str(conf_dir / SCHEMAS_FILE), 7)


# ---------------------------------------------------------------- without carbon

def test_known_differences_without_carbon(tmp_path):
    """EXAMPLES that once differed, with the policies carbon 1.1.10 gave for them."""
    schemas_text, aggregation_text = EXAMPLES["form feed in a comment"]
    for breaker in ["\x0c", "\x0b", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]:
        conf_dir = write_config(tmp_path / f"{ord(breaker):x}",
                                schemas_text.replace("\x0c", breaker), aggregation_text)
        result = run_carbyne(conf_dir, ["web.load", "other"])
        assert [name for name, _ in result["schemas"]] == ["first", "web", "catchall"]
        assert result["policies"] == {
            "web.load": [[[60, 10080]], 0.5, "average"],
            "other": [[[1, 86400]], 0.5, "average"],
        }
