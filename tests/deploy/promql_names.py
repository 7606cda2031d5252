"""promql_names.py - which metrics (and which of their labels) a PromQL
expression names, for checking deploy/'s dashboard and alert rules against
what the listener really exports.

Not a PromQL parser: promtool parses the expressions (the static test runs
`promtool check rules` on them); this only has to find the metric names
in expressions that parse. It tokenises: selectors `name{label="v"}` give
the name and the labels matched; functions (an identifier before "("),
aggregation operators, keywords, grouping lists, ranges and strings are
not metric names.
"""
import re

IDENT = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
STRING = r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`'
SELECTOR = re.compile(
    rf"({IDENT})?\s*\{{((?:[^{{}}\"'`]|{STRING})*)\}}")
MATCHER = re.compile(rf"({IDENT})\s*(=~|!~|!=|=)\s*({STRING})")
GROUPING = re.compile(
    r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
AGGREGATIONS = {"sum", "min", "max", "avg", "group", "stddev", "stdvar",
                "count", "count_values", "bottomk", "topk", "quantile",
                "limitk", "limit_ratio"}
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right",
            "offset", "bool", "and", "or", "unless", "atan2", "inf", "nan",
            "start", "end"}


def grafana_to_promql(expr):
    """Replaces Grafana's variables: $__rate_interval and the other
    built-in intervals by 5m, user variables ($group, ${topic}) by .*
    (they only appear inside regex matchers here)."""
    expr = re.sub(r"\$\{?__(rate_)?interval(_ms)?\}?|\$__range", "5m", expr)
    return re.sub(r"\$\{(\w+)(:\w+)?\}|\$(\w+)", ".*", expr)


def metric_names(expr):
    """[(metric name, frozenset of label names its selector matches on)],
    in order of appearance, for a PromQL expression (Grafana variables
    allowed)."""
    found = []
    expr = grafana_to_promql(expr)

    def selector(m):
        name = m.group(1)
        labels = set()
        for label, op, value in MATCHER.findall(m.group(2)):
            if label == "__name__" and op == "=":
                name = value[1:-1]
            else:
                labels.add(label)
        if name and name.lower() not in KEYWORDS | AGGREGATIONS:
            found.append((m.start(), name, frozenset(labels)))
            return " " * (m.end() - m.start())
        # `sum by (x) {..}` cannot happen; a keyword before { is kept
        return (m.group(1) or "") + " " * (m.end() - m.start() -
                                           len(m.group(1) or ""))

    expr = SELECTOR.sub(selector, expr)
    expr = re.sub(STRING, lambda m: " " * len(m.group(0)), expr)
    expr = re.sub(r"\[[^\]]*\]", lambda m: " " * len(m.group(0)), expr)
    expr = GROUPING.sub(lambda m: " " * len(m.group(0)), expr)
    for m in re.finditer(IDENT, expr):
        name = m.group(0)
        before = expr[m.start() - 1] if m.start() else " "
        if before.isalnum() or before in "._":
            continue  # the tail of a number or a duration (1e3, 5m)
        if re.match(r"\s*\(", expr[m.end():]):
            continue  # a function or an aggregation with its argument
        if name.lower() in KEYWORDS or name in AGGREGATIONS:
            continue
        found.append((m.start(), name, frozenset()))
    return [(name, labels) for _, name, labels in sorted(found)]


def label_values_query(query):
    """Grafana's label_values(EXPR, LABEL) or label_values(LABEL) as
    (EXPR or None, LABEL); None when query is not one."""
    m = re.fullmatch(r"\s*label_values\(\s*(?:(.*),)?\s*(" + IDENT +
                     r")\s*\)\s*", query, re.S)
    return (m.group(1), m.group(2)) if m else None


def dashboard_queries(dashboard):
    """(where, expr, label) for every query in a Grafana dashboard: each
    panel target (label None) and each templating label_values query
    (label: the label whose values it lists)."""
    out = []

    def panels(items):
        for p in items:
            yield p
            yield from panels(p.get("panels", []))

    for p in panels(dashboard.get("panels", [])):
        for t in p.get("targets", []):
            out.append((f"panel {p.get('title')!r} {t.get('refId')}",
                        t.get("expr", ""), None))
    for v in dashboard.get("templating", {}).get("list", []):
        if v.get("type") != "query":
            continue
        q = v.get("query")
        q = q.get("query", "") if isinstance(q, dict) else (q or "")
        lv = label_values_query(q)
        if lv:
            out.append((f"variable ${v['name']}", lv[0] or "", lv[1]))
        else:
            out.append((f"variable ${v['name']}", q, None))
    return out


def rule_queries(rules_doc):
    """(where, expr) for every rule of a Prometheus rules file."""
    return [(f"rule {r.get('alert') or r.get('record')}", r["expr"])
            for g in rules_doc.get("groups", []) for r in g.get("rules", [])]
