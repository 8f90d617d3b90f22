"""A fake Semantic Scholar API: citations, references, snippets, recommendations, bulk search. It records
every request (path, query, headers, body); tests inject a 429 with `fail(...)`."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from tests.fakes.http_fake import FakeHTTPServer, Recorded, Reply, json_reply
from tests.fakes.research_servers import DPO_ID

IPO = {"title": "A General Theoretical Paradigm to Understand Learning from Human Preferences", "year": 2023}
IPO |= {"citationCount": 450, "externalIds": {"ArXiv": "2310.12036"}}
KTO = {"title": "KTO: Model Alignment as Prospect Theoretic Optimization", "year": 2024, "citationCount": 300}
KTO |= {"externalIds": {"ArXiv": "2402.01306"}}
PPO = {"title": "Proximal Policy Optimization Algorithms", "year": 2017, "citationCount": 20000}
PPO |= {"externalIds": {"ArXiv": "1707.06347"}}
LONG_CONTEXT = "We build on DPO " + "and its implicit reward " * 20
CITATIONS = [
    {
        "citingPaper": IPO,
        "isInfluential": True,
        "intents": ["methodology"],
        "contexts": [LONG_CONTEXT, "b", "c"],
    },
    {"citingPaper": KTO, "isInfluential": False, "intents": [], "contexts": []},
]
REFERENCES = [
    {"citedPaper": PPO, "isInfluential": True, "intents": ["background"], "contexts": ["PPO is used"]}
]
SNIPPETS = [
    {
        "score": 0.9,
        "paper": {"corpusId": "1", "title": "Direct Preference Optimization"},
        "snippet": {"text": "We set beta = 0.1 for all experiments " * 20, "section": "Experiments"},
    }
]


class FakeSemanticScholar(FakeHTTPServer):
    """The Semantic Scholar endpoints `hf_papers` calls; DPO is the only paper it knows."""

    def __init__(self) -> None:
        super().__init__()
        self.arrivals: list[tuple[str, float]] = []  # (path, time.monotonic()) of each answered request
        self.route("GET", r"/graph/v1/paper/ARXIV:(?P<id>[^/]+)/(?P<edge>citations|references)", self._edges)
        self.route("GET", r"/graph/v1/snippet/search", lambda r: json_reply(200, {"data": SNIPPETS}))
        self.route("GET", r"/recommendations/v1/papers/forpaper/ARXIV:(?P<id>[^/]+)", self._for_paper)
        self.route("POST", r"/recommendations/v1/papers/?", lambda r: self._papers(r, [PPO]))
        self.route("GET", r"/graph/v1/paper/search/bulk", self._bulk)

    def route(self, method: str, pattern: str, handler: Callable[[Recorded], Reply]) -> None:
        """A route that also records when each request arrived (the API-key pacing is checked on it)."""

        def timed(request: Recorded) -> Reply:
            self.arrivals.append((request.path, time.monotonic()))
            return handler(request)

        super().route(method, pattern, timed)

    def _edges(self, request: Recorded) -> Reply:
        if request.match["id"] != DPO_ID:
            return json_reply(404, {"error": "Paper not found"})
        rows = CITATIONS if request.match["edge"] == "citations" else REFERENCES
        return json_reply(200, {"offset": 0, "data": rows[: int(request.arg("limit") or 100)]})

    def _for_paper(self, request: Recorded) -> Reply:
        return self._papers(request, [IPO, KTO])

    def _papers(self, request: Recorded, papers: list[dict[str, Any]]) -> Reply:
        return json_reply(200, {"recommendedPapers": papers[: int(request.arg("limit") or 100)]})

    def _bulk(self, request: Recorded) -> Reply:
        rows = [
            {**IPO, "abstract": "IPO avoids overfitting " * 40},
            {**KTO, "abstract": "KTO uses a binary signal"},
        ]
        return json_reply(200, {"total": 2, "token": None, "data": rows})
