"""render.grammar / render.ast: expected trees, canonical printing, and a
differential test against graphite-web 1.1.10's pyparsing grammar."""

import math
import threading

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from render.ast import Bool, Call, NoneLit, Number, PathExpr, String
from render.grammar import GrammarError, TemplateError, apply_template, parse

P = PathExpr


def call(name, *args, **kwargs):
    return Call(name, args, tuple(kwargs.items()))


# ---------------------------------------------------------------- expected trees

EXPECTED = {
    "a.b.c": P("a.b.c"),
    "  a.b  ": P("a.b"),
    "servers.{web,db}[0-9].cpu-*.load?": P("servers.{web,db}[0-9].cpu-*.load?"),
    "a~b^c@d#e%f&g+h<i>j/k!l`m:n;o=p$q": P("a~b^c@d#e%f&g+h<i>j/k!l`m:n;o=p$q"),
    "disk;host=a;dc=b": P("disk;host=a;dc=b"),
    r"a\(b\).c\,d\{e\}\=f": P("a(b).c,d{e}=f"),
    r"a\.b": P("a.b"),
    "123": P("123"),
    "true": P("true"),
    "sumSeries(a.*)": call("sumSeries", P("a.*")),
    "f ( a , b )": call("f", P("a"), P("b")),
    "f()": call("f"),
    "f(1,-2,1.5,-0.5,1e3,1.5E-2,01)": call(
        "f", Number(1), Number(-2), Number(1.5), Number(-0.5), Number(1000.0), Number(0.015),
        Number(1),
    ),
    "f(1e999, inf, INF)": call("f", Number(math.inf), Number(math.inf), Number(math.inf)),
    "f(true,False,TRUE,none,None)": call("f", Bool(True), Bool(False), Bool(True), NoneLit(), NoneLit()),
    "f(1.a, 1e+3, -inf, true$, nonex)": call(
        "f", P("1.a"), P("1e+3"), P("-inf"), P("true$"), P("nonex")
    ),
    "f('s', \"d\")": call("f", String("s"), String("d")),
    r"""f('it''s', "a\"b", 'c\x41\n')""": call("f", String("it''s"), String(r"a\"b"), String(r"c\x41\n")),
    "f(a, k=1, j='x')": call("f", P("a"), k=Number(1), j=String("x")),
    "f(a, k = g(b))": call("f", P("a"), k=call("g", P("b"))),
    "f(a.b=1, x=)": call("f", P("a.b=1"), P("x=")),
    "f(a, x==1)": call("f", P("a"), x=P("=1")),
    "a.b|f()|g(1)": call("g", call("f", P("a.b")), Number(1)),
    "a.b | f(k=1) ": None,  # a piped call without positional arguments cannot carry keywords
    "f(a|g(), 2)": call("f", call("g", P("a")), Number(2)),
    "f(1|g())": call("f", call("g", P("1"))),
    "f(1 \n, 2\n)": call("f", Number(1), Number(2)),
    "template(hosts.$host.cpu, host='web1')": Call(
        "template", (P("hosts.$host.cpu"),), (("host", String("web1")),)
    ),
    "template(sumSeries(a.$1), 5, 'x')|alias('y')": call(
        "alias", Call("template", (call("sumSeries", P("a.$1")), Number(5), String("x"))), String("y")
    ),
    "seriesByTag('name=cpu', 'host=~web.*')": call(
        "seriesByTag", String("name=cpu"), String("host=~web.*")
    ),
}


@pytest.mark.parametrize("target", sorted(EXPECTED))
def test_expected_tree(target):
    expected = EXPECTED[target]
    if expected is None:
        with pytest.raises(GrammarError):
            parse(target)
        return
    tree = parse(target)
    assert tree == expected
    assert parse(str(tree)) == tree


def test_int_and_float_are_different_numbers():
    assert parse("f(1)") != parse("f(1.0)")
    assert type(parse("f(1.0)").args[0].value) is float
    assert type(parse("f(1e3)").args[0].value) is float
    assert Number(1) != Number(1.0)
    assert len({Number(1), Number(1.0), Number(1)}) == 2


def test_call_source_is_the_calls_own_text():
    tree = parse("a | aliasByTags( seriesByTag( \"name=x\" ,'b=c' ), 'host' )")
    assert tree.source == "aliasByTags( seriesByTag( \"name=x\" ,'b=c' ), 'host' )"
    assert tree.args[1].source == "seriesByTag( \"name=x\" ,'b=c' )"
    assert tree == Call("aliasByTags", tree.args, source="different")


# ---------------------------------------------------------------- errors

@pytest.mark.parametrize(
    ("target", "column", "fragment"),
    [
        ("sumSeries(a.b", 14, "unexpected end of target at column 14"),
        ("sumSeries(a.b))", 15, "unexpected ')' at column 15"),
        ("f(x=1)", 3, "a positional argument before keyword arguments"),
        ("f(a, x=1, b)", 9, "unexpected ','"),
        ("f(true.x)", 7, "unexpected '.'"),
        ("a..b", 3, "expected a path node after"),
        ("a|b", 4, "expected '('"),
        ("f(\"x)", 3, "unexpected '\"'"),
        ("   ", 4, "empty target"),
        ("template(a, true)", 1, "invalid template()"),
        ("template(a, 1, k=2)", 1, "invalid template()"),
        ("a|template(b)", 3, "invalid template()"),
        ("f(a, k=1, k=2)", 1, "repeated keyword argument in f()"),
        ("sumSeries(a.é)", 13, "unexpected 'é'"),
    ],
)
def test_errors_name_target_and_column(target, column, fragment):
    with pytest.raises(GrammarError) as caught:
        parse(target)
    assert caught.value.column == column
    assert str(caught.value).startswith(f"cannot parse target={target}: ")
    assert fragment in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_deep_nesting_is_refused_not_a_crash():
    assert parse("f(" * 99 + "a" + ")" * 99).name == "f"
    with pytest.raises(GrammarError, match="nested deeper than 100 levels"):
        parse("f(" * 5000 + "a" + ")" * 5000)


def test_parse_is_safe_from_many_threads():
    targets = [f"sumSeries(a.{i}.*, k={i})|alias('{i}')" for i in range(200)]
    expected = [parse(t) for t in targets]
    results: list = []

    def work():
        results.append([parse(t) for t in targets])

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [expected] * 4


# ---------------------------------------------------------------- printing

@pytest.mark.parametrize(
    ("tree", "text"),
    [
        (call("f", P("a.{b,c}"), Number(1.5), Number(1e16), Number(-math.inf)), "f(a.{b,c},1.5,1e16,-1e999)"),
        (call("f", P("x(y)"), P("{a,b"), P(".a"), P("k=v")), r"f(x\(y\),\{a\,b,\.a,k\=v)"),
        (call("g", call("f", P("1"))), "1|f()|g()"),
        (call("f", String("a'b"), String('x"y'), Bool(False), NoneLit()), "f(\"a'b\",'x\"y',false,None)"),
    ],
)
def test_canonical_text(tree, text):
    assert str(tree) == text
    assert parse(text) == tree


@pytest.mark.parametrize(
    "tree",
    [
        call("f", P("a"), P("true")),  # `true` there is a Bool
        call("f", P("a"), P("1.5")),
        call("h", P("a"), call("f", call("g", P("none")))),  # `none|g()` in h( ) reads None
        call("f", String("a'b\"c")),  # no quoting holds both quote characters
        call("f", String("a\nb")),
    ],
)
def test_trees_graphite_cannot_express_refuse_to_print(tree):
    with pytest.raises(ValueError, match="cannot print"):
        str(tree)


@pytest.mark.parametrize(
    "build",
    [
        lambda: Call("f", (), (("k", Number(1)),)),
        lambda: Call("1f"),
        lambda: Call("f", (P("a"),), (("k", Number(1)), ("k", Number(2)))),
        lambda: Call("template", (Number(1),)),
        lambda: Call("template", (P("a"), Bool(True))),
        lambda: Call("template", (P("a"), Number(1)), (("k", Number(2)),)),
        lambda: P(""),
        lambda: P("a b"),
        lambda: Number(True),
        lambda: Number(math.nan),
    ],
)
def test_invalid_nodes_are_refused(build):
    with pytest.raises(ValueError, match="cannot build"):
        build()


def test_nodes_are_frozen():
    node = P("a")
    with pytest.raises(AttributeError):
        node.text = "b"  # type: ignore[misc]


# ---------------------------------------------------------------- hypothesis: trees

_names = st.sampled_from(["f", "sumSeries", "alias", "_x1", "movingAverage", "seriesByTag"])
_path_texts = st.lists(
    st.sampled_from(list("ab1-*?[]{},.=$;:~(){}'\"\\|") + ["true", "inf", "none", "1.5"]),
    min_size=1,
    max_size=8,
).map("".join)
_scalars = st.one_of(
    st.integers(-(10**20), 10**20).map(Number),
    st.floats(allow_nan=False).map(Number),
    st.text(alphabet=st.sampled_from(list("ab '\"\\x0\n")), max_size=6).map(String),
    st.booleans().map(Bool),
    st.just(NoneLit()),
)


def _calls(children):
    keywords = st.lists(st.tuples(st.sampled_from(["k", "window", "x_1"]), children), max_size=2,
                        unique_by=lambda kv: kv[0])
    plain = st.builds(
        lambda name, args, kwargs: Call(name, tuple(args), tuple(kwargs) if args else ()),
        _names, st.lists(children, max_size=3), keywords,
    )
    template = st.builds(
        lambda head, defaults, positional: Call(
            "template",
            (head, *(defaults if positional else ())),
            () if positional else tuple((f"v{i}", d) for i, d in enumerate(defaults)),
        ),
        st.one_of(_path_texts.map(P), plain.filter(lambda c: c.name != "template")),
        st.lists(st.one_of(st.integers(-9, 9).map(Number), st.text("ab'", max_size=3).map(String)),
                 max_size=2),
        st.booleans(),
    )
    return st.one_of(plain, template)


_trees = st.recursive(
    st.one_of(_path_texts.map(P), _scalars), _calls, max_leaves=8
).filter(lambda node: isinstance(node, PathExpr | Call))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(_trees)
def test_printed_trees_parse_back_equal(tree):
    try:
        text = str(tree)
    except ValueError:
        assume(False)
    assert parse(text) == tree


# ---------------------------------------------------------------- differential vs graphite-web


def _reference_tree(graphite_web, target):
    """graphite-web's parse of `target` as our nodes; None when it refuses
    (or parses only a prefix, or builds a template() its evaluator refuses)."""
    from graphite.render.grammar_unsafe import grammar
    from pyparsing import ParseBaseException

    try:
        tokens = grammar.parseString(target, parseAll=True)
    except ParseBaseException:
        return None
    try:
        return _convert_expression(tokens)
    except _EvaluatorRefuses:
        return None


class _EvaluatorRefuses(Exception):
    pass


def _convert_expression(tokens):
    if not tokens.expression:
        return _convert_scalar(tokens)
    expression = tokens.expression
    if expression.template:
        node = _convert_template(expression.template)
    elif expression.call:
        node = _convert_call(expression.call)
    else:
        node = PathExpr(expression.pathExpression)
    for piped in expression.pipedCalls:
        inner = _convert_call(piped.call)
        node = Call(inner.name, (node, *inner.args), inner.kwargs, source=inner.source)
    return node


def _convert_template(template):
    head = _convert_call(template.call) if template.call else PathExpr(template.pathExpression)
    defaults = tuple(_convert_scalar(arg) for arg in template.args)
    named = tuple((kw.argname, _convert_scalar(kw.args[0])) for kw in template.kwargs)
    if len({key for key, _ in named}) != len(named):
        raise _EvaluatorRefuses
    return Call("template", (head, *defaults), named)


def _convert_call(tokens):
    if tokens.funcname == "template":  # evaluator: "invalid template() syntax"
        raise _EvaluatorRefuses
    args = tuple(_convert_expression(arg) for arg in tokens.args)
    kwargs = tuple((kw.argname, _convert_expression(kw.args[0])) for kw in tokens.kwargs)
    if len({key for key, _ in kwargs}) != len(kwargs):  # graphite keeps the last; we refuse
        raise _EvaluatorRefuses
    return Call(tokens.funcname, args, kwargs, source=tokens.raw)


def _convert_scalar(tokens):
    if tokens.number:
        number = tokens.number
        if number.integer:
            return Number(int(number.integer))
        return Number(float(number.float or number.scientific[0]))
    if tokens.string:
        return String(tokens.string[1:-1])
    if tokens.boolean:
        return Bool(tokens.boolean[0] == "true")
    if tokens.none:
        return NoneLit()
    if tokens.infinity:
        return Number(math.inf)
    raise AssertionError(tokens.dump())


def _sources(node):
    """(name, source) of every call but templates (graphite keeps no raw text for those)."""
    if isinstance(node, Call):
        if node.name != "template":
            yield node.name, node.source
        for arg in (*node.args, *(value for _, value in node.kwargs)):
            yield from _sources(arg)


def _ours(target):
    try:
        return parse(target)
    except GrammarError:
        return None


def _assert_same_as_graphite(graphite_web, target):
    expected = _reference_tree(graphite_web, target)
    ours = _ours(target)
    assert ours == expected, target
    if ours is not None:
        assert list(_sources(ours)) == list(_sources(expected)), target
        assert parse(str(ours)) == ours


HAND_TARGETS = [
    *EXPECTED,
    "f(x=1)", "f(a,x=1)", "f(a, b=1, c)", "f(true.x)", "f(none-1)", "f(inf*)", "f(.5)", "f(1.)",
    "f(1e5x)", "f(1e-5)", "f(-1.x)", "f(a\\x)", "f('\\x41')", 'f("\\xg")', "f(a,)", "f(,)",
    "x.{}", "x.{a,}", "x.{a,{b,c}}", "x.{a}b{c,d}e", "x.a..b", "x.", ".x", "a . b", "f(a .b)",
    "f(1\n|g())", "f(true\n|g())", "f(1\nx)", "f(\x0ca)", "f('a\nb')", "f('a'''b')", "f('a''')",
    "template(a|f())", "template(template(a,1))", "template(a, 1, x=2)", "template (a.$1 , 'b')",
    "templatex(a)", "template(a)|template(b)", "f(template(a.$1, -1.5e2))", "template(1)",
    "sumSeries(a.b", "f(a))", "a|b", "a|f(k=1)", "a|", "a|f()g", "|f()", "f(a)(b)",
    "alias(x, \"dou\\\"ble\")", "f(\"a\" \"b\")", "f(a b)", "f(k=1 2)", "f(a, k=x=1)", "f(a, k\n=\n1)",
    "aliasByNode(movingAverage(summarize(hosts.web*.cpu.{user,system}, '1min', 'avg'), '5min'), 1)",
    "groupByNodes(stats.timers.*.*.upper_90, 'max', 2, 4)|alias('x')|scale(0.001)",
    "highestAverage(seriesByTag('name=cpu','env=prod'), 5)",
    "asPercent(a.*, b.*, 0)", "alias(a, 'x\ty')", "f(\ta,\t'\t')", "f(1,2", "f(\t1\t)", "\n a.b \n", "f(\\))", "f(a\\ b)",
]


def test_hand_targets_match_graphite(graphite_web):
    for target in HAND_TARGETS:
        _assert_same_as_graphite(graphite_web, target)


_FRAGMENTS = st.sampled_from(
    [
        "a", "b.c", "*", "x?", "[0-9]", "{a,b}", "{", "}", ",", ".", "(", ")", "|", " ", "\n", "\t",
        "=", "$x", "\\", "\\(", "\\.", "'", '"', "'s'", '"d"', "''", "\\'", "1", "-1", "1.5", "1e3",
        "e", "-", "+", "true", "False", "none", "inf", "f(", "sumSeries(", "template(", "k=", "x=",
        ";t=v", "é",
    ]
)
_junk = st.lists(_FRAGMENTS, max_size=10).map("".join)


def _target_text(children):
    sep = st.sampled_from([",", ", ", " ,", ",\n"])
    return st.one_of(
        st.builds(
            lambda name, args, seps: name + "(" + "".join(a + s for a, s in zip(args, seps, strict=False))[:-1] + ")"
            if args else name + "()",
            st.sampled_from(["f", "sumSeries", "template", "seriesByTag", "g "]),
            st.lists(st.one_of(children, st.builds(lambda k, v: k + "=" + v, st.sampled_from(["k", "n"]), children)),
                     max_size=3),
            st.lists(sep, min_size=3, max_size=3),
        ),
        st.builds(lambda a, b: a + "|" + b, children, children),
    )


_ATOMS = st.sampled_from(
    [
        "a.b", "x.{a,b}*", "h[0-9]?.c", "k=v", "$x", "a\\(b", "1", "-1.5", "1e3", "2E-2", "'s'",
        '"d"', "'a\\'b'", "true", "None", "inf", "-inf", "1.a", " a ", "a;t=v",
    ]
)
_targets = st.recursive(st.one_of(_ATOMS, _ATOMS, _junk), _target_text, max_leaves=6)


@settings(max_examples=600, deadline=None)
@given(_targets)
def test_generated_targets_match_graphite(graphite_web, target):
    _assert_same_as_graphite(graphite_web, target)


# ---------------------------------------------------------------- template()

@pytest.mark.parametrize(
    ("target", "params", "expected"),
    [
        ("template(hosts.$host.cpu, host='web1')", {}, P("hosts.web1.cpu")),
        ("template(hosts.$host.cpu, host='web1')", {"host": "db2"}, P("hosts.db2.cpu")),
        ("template(hosts.$1.$2, 'a', 7)", {}, P("hosts.a.7")),
        ("template(hosts.$1.cpu)", {"1": "z"}, P("hosts.z.cpu")),
        ("template(f(a.$x, $n), x=1.5, n=3)", {}, call("f", P("a.1.5"), Number(3))),
        ("template(f(a, $n))", {"n": "123"}, call("f", P("a"), Number(123.0))),
        ("template(f(a, $n))", {"n": "-1.5"}, call("f", P("a"), Number(-1.5))),
        ("template(f(a, $n))", {"n": "web"}, call("f", P("a"), String("web"))),
        ("template(f(a, k=$n), n='x')", {}, call("f", P("a"), k=String("x"))),
        ("template(f(a.$x, 'a.$x'), x=1)", {}, call("f", P("a.1"), String("a.$x"))),
        ("template(f(b.$x), x=2)|g($x)", {}, call("g", call("f", P("b.2")), P("$x"))),
        ("template(f(template(a.$x.$y, x=1)), x=2, y=3)", {}, call("f", P("a.1.$y"))),
        ("f(a.$x)", {"x": "1"}, call("f", P("a.$x"))),
        ("template(a.$1$10, 'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y')", {}, P("a.pp0")),
    ],
)
def test_apply_template(target, params, expected):
    assert apply_template(parse(target), params) == expected


@pytest.mark.parametrize(
    ("target", "params"),
    [
        ("template(f(a, $n))", {"n": "1.2.3"}),
        ("template($n, n=5)", {}),
        ("template(a.$h)", {"h": "x y"}),
    ],
)
def test_apply_template_errors(target, params):
    with pytest.raises(TemplateError, match="cannot "):
        apply_template(parse(target), params)


@pytest.mark.parametrize(
    ("target", "params"),
    [
        ("template(hosts.$host.cpu, host='web1')", {}),
        ("template(hosts.$host.cpu, host='web1')", {"host": "db2"}),
        ("template(sumSeries(a.$1, b.$2.$1), 'x', 9)", {"2": "y"}),
        ("sumSeries(template(a.$v, v=1), template(b.$v, v=2))", {}),
        ("template(a.$1$10, 'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y')", {}),
    ],
)
def test_template_paths_match_graphite(graphite_web, target, params):
    from graphite.render.evaluator import extractPathExpressions

    expected = set(extractPathExpressions({"template": dict(params)}, [target]))
    assert set(_paths(apply_template(parse(target), params))) == expected


def _paths(node):
    if isinstance(node, PathExpr):
        yield node.text
    elif isinstance(node, Call):
        for arg in (*node.args, *(value for _, value in node.kwargs)):
            yield from _paths(arg)
