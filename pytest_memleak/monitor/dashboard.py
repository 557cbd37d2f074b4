"""The live dashboard page: the HTML report's stylesheet, chart engine and test section, kept
current by Server-Sent Events.

The page is drawn whole at ``GET /`` (it reads without JavaScript); ``dashboard.js`` then
listens to ``/api/events`` and, every 2 s, puts in place the cards, the alerts and the section
drawn here in Python (``render.html``'s ``result_section``: the charts, growth patterns,
findings and leaks). The Content-Security-Policy is the report's, plus ``connect-src 'self'``
for the stream: no script but the two hashed here, nothing loaded from anywhere else.
"""

from __future__ import annotations

import base64
import hashlib
from importlib import resources
from typing import Any

from ..model import JsonObject, TestResult
from ..render.html.assets import CSS, JS_ERRORS
from ..render.html.sections import result_section, results_table
from ..render.html.text import VERDICT_ORDER, esc
from ..vocabulary import severity_rank


def _read(name: str) -> str:
    return (resources.files(__name__.rpartition(".")[0]) / name).read_text(encoding="utf-8")


def _csp_hash(script: str) -> str:
    digest = hashlib.sha256(script.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


JS = _read("dashboard.js").rstrip()
STYLE = CSS + _read("dashboard.css")
CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; connect-src 'self'; "
    f"base-uri 'none'; form-action 'none'; script-src {_csp_hash(JS_ERRORS)} {_csp_hash(JS)}"
)


def _live(focus: TestResult | None) -> str:
    if focus is None:
        return '<p class="muted">Nothing is being measured right now.</p>'
    html = result_section(0, focus)
    # The section is always open here: a lazy body (a <template>) is put in place at once.
    if "<template>" in html and html.endswith("</template></details>"):
        head, _, body = html.partition("<template>")
        html = head.replace(">", " open>", 1) + body[: -len("</template></details>")]
        html += "</details>"
    return html


def _table(tests: tuple[TestResult, ...]) -> str:
    ordered = sorted(
        enumerate(tests),
        key=lambda it: (VERDICT_ORDER[it[1].verdict], -severity_rank(it[1].severity), it[0]),
    )
    return results_table(ordered)


def update(source: Any) -> JsonObject:
    """One "update" event: the summary (cards, banner, alerts), the live section, and the
    table of the tests checked so far (a pytest run)."""
    summary: JsonObject = source.summary()
    focus = source.focus()
    table = ""
    if summary.get("table"):
        table = _table(source.report().tests)
    return {**summary, "live": _live(focus), "table": table}


def _cards(cards: Any) -> str:
    out = []
    for c in cards:
        hot = " hot" if c.get("hot") else ""
        out.append(
            f'<div class="card c-{esc(c["key"], 30)}{hot}" id="c-{esc(c["key"], 30)}">'
            f'<div class="num small">{esc(c["value"], 40)}</div>'
            f'<div class="lab">{esc(c["label"], 40)}</div></div>'
        )
    return "".join(out)


def _alerts(alerts: Any) -> str:
    items = [f'<li class="a-{esc(a["severity"], 20)}">{esc(a["line"], 500)}</li>' for a in alerts]
    return "".join(items) or '<li class="muted">none so far</li>'


def page(source: Any) -> str:
    """The whole page, drawn with the current state."""
    d = update(source)
    banner = d["banner"]
    assert isinstance(banner, dict)
    table = d["table"]
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(d['title'])}</title><style>\n{STYLE}</style>"
        f"<script>{JS_ERRORS}</script></head>\n"
        f'<body><header class="top"><div class="wrap"><h1>{esc(d["title"])}</h1>'
        f'<div class="meta" id="subtitle">{esc(d["subtitle"], 400)}</div>'
        f'<div id="banner" class="banner {esc(banner["cls"], 20)}">{esc(banner["text"], 300)}</div>'
        f'<div class="cards">{_cards(d["cards"])}</div>'
        '<div class="conn" id="conn">connecting…</div></div></header><main>'
        f'<section id="alerts-box"><h2>Alerts</h2><ul id="alerts">{_alerts(d["alerts"])}</ul>'
        "</section>"
        f'<section id="tests-box"{"" if table else " hidden"}><h2>Tests checked so far</h2>'
        f'<div id="table">{table}</div></section>'
        f'<section><h2>Live</h2><div id="live">{d["live"]}</div></section>'
        "</main><footer>pytest-memleak dashboard · updated every 2 s from this server · "
        "charts are inline SVG, nothing is loaded from elsewhere</footer>\n"
        f"<script>{JS}</script></body></html>\n"
    )
