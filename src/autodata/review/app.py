"""``autodata review``: a small server-rendered web app for reading and deciding on a run's examples.

Security, because every string on these pages comes from a model or a document:

- Jinja2 autoescaping on every template, and a Content-Security-Policy that allows only our own
  script file, so even a missed escape could not run injected script.
- Only ``run.db`` is read. Static files are two names served from the package; no request path
  ever becomes a file path.
- Decisions are POSTs carrying a per-server CSRF token; cross-site requests (by ``Origin`` or
  ``Sec-Fetch-Site``) are refused, and the ``Host`` header must be one we serve (against DNS
  rebinding of a loopback server).
- Bound to anything but loopback, every request needs the access token (``?token=`` once, then an
  HttpOnly, SameSite=Strict cookie).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import time
from dataclasses import dataclass
from importlib import resources
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode

from fastapi import FastAPI, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from autodata.errors import UserError
from autodata.example import Example, ReviewedExample
from autodata.review.index import PAGE_SIZE, SORTS, Filters, Item, RunIndex
from autodata.review.text import best_passage, highlight
from autodata.run_info import RunInfo
from autodata.store.reviews import ReviewLog, ReviewState, reviewed_example
from autodata.store.run_store import RunStore

STATIC = {"review.js": "text/javascript; charset=utf-8", "review.css": "text/css; charset=utf-8"}
TOKEN_COOKIE = "autodata_review_token"
REVIEWER_COOKIE = "autodata_reviewer"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'"
)
LOOPBACK_HOSTS = ("127.0.0.1", "localhost")


@dataclass(frozen=True, slots=True)
class ReviewSettings:
    reviewer: str
    token: str | None = None  # required on every request when set
    allowed_hosts: tuple[str, ...] = LOOPBACK_HOSTS  # empty: any Host (only with a token)


def _fmt(x: float | None, digits: int = 2) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _templates() -> Environment:
    env = Environment(
        loader=PackageLoader("autodata.review", "templates"),
        autoescape=select_autoescape(["html"], default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["fmt"] = _fmt
    env.filters["when"] = lambda t: time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t)) if t else ""
    env.filters["highlight"] = highlight
    env.filters["urlencode_query"] = lambda d: urlencode(d)
    return env


class ReviewApp:
    """State of one review server: the store, the row index, the secrets."""

    def __init__(self, store: RunStore, settings: ReviewSettings) -> None:
        self.store = store
        self.settings = settings
        self.log: ReviewLog = store.reviews()
        self.index = RunIndex(store)
        self.info = RunInfo.load(store)
        self.secret = secrets.token_bytes(32)
        self.csrf = hmac.new(self.secret, b"csrf", hashlib.sha256).hexdigest()
        self.env = _templates()
        self.static = {
            name: resources.files("autodata.review").joinpath("static", name).read_bytes() for name in STATIC
        }

    def render(self, name: str, request: Request, status: int = 200, **ctx: Any) -> HTMLResponse:
        html = self.env.get_template(name).render(
            csrf=self.csrf,
            reviewer=self.reviewer(request),
            run_dir=str(self.store.dir),
            info=self.info,
            **ctx,
        )
        return HTMLResponse(html, status_code=status)

    def reviewer(self, request: Request) -> str:
        name = (request.cookies.get(REVIEWER_COOKIE) or "").strip()
        return name[:200] if name else self.settings.reviewer


def _error(app: ReviewApp, request: Request, status: int, message: str) -> HTMLResponse:
    return app.render("error.html", request, status=status, message=message, counts=None)


def _same_origin(request: Request) -> bool:
    """Browsers say where a request comes from (``Sec-Fetch-Site``, ``Origin``); anything but this
    very server is refused. Clients that send neither (curl, tests) still need the CSRF token."""
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin is None:
        return True
    host = request.headers.get("host", "")
    return origin in (f"http://{host}", f"https://{host}")


def create_app(store: RunStore, settings: ReviewSettings) -> FastAPI:
    state = ReviewApp(store, settings)
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.middleware("http")
    async def guard(request: Request, call_next: Any) -> Response:
        host = request.headers.get("host", "").rsplit(":", 1)[0].strip("[]")
        if settings.allowed_hosts and host not in settings.allowed_hosts:
            return Response("unknown host", status_code=400, media_type="text/plain")
        if settings.token is not None:
            given = request.query_params.get("token")
            if given is not None and hmac.compare_digest(given.encode(), settings.token.encode()):
                # the token leaves the address bar at once; the cookie carries it from now on
                rest = {k: v for k, v in request.query_params.items() if k != "token"}
                target = request.url.path + ("?" + urlencode(rest) if rest else "")
                response: Response = RedirectResponse(target, status_code=303)
                response.set_cookie(TOKEN_COOKIE, settings.token, httponly=True, samesite="strict")
                return _secure(response)
            cookie = request.cookies.get(TOKEN_COOKIE, "")
            bearer = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
            if not any(hmac.compare_digest(c.encode(), settings.token.encode()) for c in (cookie, bearer) if c):
                return _secure(
                    Response(
                        "This review server needs its access token: open the address `autodata review` printed.",
                        status_code=401,
                        media_type="text/plain",
                    )
                )
        if request.method == "POST" and not _same_origin(request):
            return _secure(Response("cross-site request refused", status_code=403, media_type="text/plain"))
        return _secure(await call_next(request))

    async def csrf_ok(request: Request) -> bool:
        form = await request.form()
        given = str(form.get("csrf", ""))
        return hmac.compare_digest(given.encode(), state.csrf.encode())

    @app.get("/favicon.ico")
    def favicon() -> Response:
        return Response(status_code=204)

    @app.get("/static/{name}")
    def static(name: str) -> Response:
        if name not in STATIC:
            return Response("not found", status_code=404, media_type="text/plain")
        return Response(state.static[name], media_type=STATIC[name], headers={"Cache-Control": "no-cache"})

    @app.get("/", response_class=HTMLResponse)
    def listing(request: Request, f: Annotated[Filters, Query()]) -> HTMLResponse:
        state.index.refresh()
        states = state.log.states()
        rows = state.index.select(f, states)
        pages = max(1, math.ceil(len(rows) / PAGE_SIZE))
        page = min(f.page, pages)
        shown = rows[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
        return state.render(
            "list.html",
            request,
            f=f,
            rows=shown,
            matching=len(rows),
            page=page,
            pages=pages,
            first=(page - 1) * PAGE_SIZE,
            states=states,
            counts=state.index.counts(states),
            profiles=state.index.profiles(),
            sorts=SORTS,
        )

    @app.get("/item/{doc_id}/{round_no}", response_class=HTMLResponse)
    def item_page(request: Request, doc_id: str, round_no: int, f: Annotated[Filters, Query()]) -> HTMLResponse:
        state.index.refresh()
        item = state.index.find(doc_id, round_no)
        if item is None:
            return _error(state, request, 404, "no such example in this run")
        return state.render("item.html", request, **_item_context(state, item, f))

    @app.post("/item/{doc_id}/{round_no}/{action}")
    async def decide(request: Request, doc_id: str, round_no: int, action: str) -> Response:
        if not await csrf_ok(request):
            return _error(state, request, 403, "this form has expired (the server restarted?): reload the page")
        state.index.refresh()
        item = state.index.find(doc_id, round_no)
        if item is None:
            return _error(state, request, 404, "no such example in this run")
        if item.example_id is None:
            return _error(state, request, 400, "only accepted examples are reviewed; this round was rejected")
        form = await request.form()
        doc = state.store.document(doc_id) or {}
        stored: Example | None = doc.get("example")
        try:
            if action in ("approve", "reject", "reopen"):
                state.log.record(
                    item.example_id, action, reviewer=state.reviewer(request), reason=str(form.get("reason", ""))
                )
            elif action == "note":
                state.log.record(item.example_id, "note", reviewer=state.reviewer(request), payload=form.get("note"))
            elif action == "edit":
                if stored is None:
                    return _error(state, request, 404, "no such example in this run")
                current = reviewed_example(stored, state.log.state(item.example_id))
                edits = _edits_from_form(form, current)
                state.log.record(item.example_id, "edit", reviewer=state.reviewer(request), payload=edits)
            else:
                return _error(state, request, 404, f"unknown action {action}")
        except UserError as exc:
            return _error(state, request, 400, str(exc))
        back = {k: v for k, v in Filters.model_validate(_back(form)).query().items()}
        target = f"/item/{doc_id}/{round_no}" + ("?" + urlencode(back) if back else "")
        return RedirectResponse(target, status_code=303)

    @app.post("/reviewer")
    async def set_reviewer(request: Request) -> Response:
        if not await csrf_ok(request):
            return _error(state, request, 403, "this form has expired (the server restarted?): reload the page")
        form = await request.form()
        name = str(form.get("name", "")).strip()[:200]
        response: Response = RedirectResponse("/", status_code=303)
        if name:
            response.set_cookie(REVIEWER_COOKIE, name, httponly=True, samesite="strict", max_age=365 * 86400)
        return response

    return app


def _secure(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    # "no-referrer" would make browsers send `Origin: null` on our own forms
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def _back(form: Any) -> dict[str, str]:
    """The list filter a decision was made under, so the reviewer stays in the same walk."""
    return {k: v for k, v in parse_qsl(str(form.get("back", ""))) if k in Filters.model_fields}


def _edits_from_form(form: Any, current: ReviewedExample) -> dict[str, Any]:
    """Only the fields that differ from the example as it now stands become an edit."""
    rubric = []
    criteria, weights, categories = form.getlist("criterion"), form.getlist("weight"), form.getlist("category")
    for i, text in enumerate(criteria):
        raw = str(weights[i]).strip() if i < len(weights) else ""
        if not str(text).strip() and not raw:
            continue  # an empty row of the form
        try:
            weight: Any = int(raw)
        except ValueError:
            weight = raw  # check_rubric says what is wrong with it
        category = str(categories[i]) if i < len(categories) else ""
        rubric.append({"criterion": str(text).strip(), "weight": weight, "category": category.strip()})
    proposed = {
        "question": str(form.get("question", "")).replace("\r\n", "\n").strip(),
        "reference_answer": str(form.get("reference_answer", "")).replace("\r\n", "\n").strip(),
        "rubric": rubric,
    }
    now = {
        "question": current.question.strip(),
        "reference_answer": current.reference_answer.strip(),
        "rubric": [
            {"criterion": c.criterion.strip(), "weight": c.weight, "category": (c.category or "").strip()}
            for c in current.rubric
        ],
    }
    return {k: v for k, v in proposed.items() if v != now[k]}


def _item_context(state: ReviewApp, item: Item, f: Filters) -> dict[str, Any]:
    doc = state.store.document(item.doc_id) or {}
    episode = doc.get("episode") or {}
    rounds = episode.get("rounds") or []
    rnd = next((r for r in rounds if int(r.get("round", -1)) == item.round), {})
    example: Example | None = doc.get("example") if item.accepted else None
    states = state.log.states()
    review: ReviewState | None = (
        (states.get(item.example_id) or ReviewState(item.example_id)) if item.example_id else None
    )
    # the stored example as the reviewers left it; a rejected round's example as the challenger wrote it
    shown: ReviewedExample | dict[str, Any] = (
        reviewed_example(example, review) if example else dict(rnd.get("example") or {})
    )
    keys = ("context", "question", "reference_answer")
    values = [getattr(shown, k) for k in keys] if isinstance(shown, ReviewedExample) else [shown.get(k) for k in keys]
    probe = " ".join(str(v or "") for v in values)
    text = state.store.document_text(item.doc_id)
    excerpt = None
    if text:
        a, b = best_passage(text, probe)
        excerpt = {"before": a > 0, "after": b < len(text), "text": text[a:b], "full": text, "chars": len(text)}
    walk = state.index.select(f, states)
    keys = [i.key for i in walk]
    pos = keys.index(item.key) if item.key in keys else -1
    prev_item = walk[pos - 1] if pos > 0 else None
    next_item = walk[pos + 1] if 0 <= pos < len(walk) - 1 else None
    rubric = (rnd.get("example") or {}).get("rubric") or []
    return {
        "item": item,
        "doc": doc,
        "episode": episode,
        "rounds": rounds,
        "rnd": rnd,
        "shown": shown,
        "rubric": rubric,
        "review": review,
        "excerpt": excerpt,
        "weak": rnd.get("weak") or [],
        "strong": rnd.get("strong") or [],
        "usage": state.store.usage_by_document(item.doc_id).get(item.doc_id),
        "prev_item": prev_item,
        "next_item": next_item,
        "position": pos + 1,
        "walk_size": len(walk),
        "query": f.query(page=1),
        "counts": None,
    }
