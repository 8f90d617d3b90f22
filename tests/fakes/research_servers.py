"""Fakes of the research tools' outside world: the Hub's papers API and docs, arXiv HTML, a web search engine,
and the GitHub REST API. Each records every request it receives (see `FakeHTTPServer`)."""

from __future__ import annotations

import base64
import json
from typing import Any, TypeVar

from tests.fakes.http_fake import FakeHTTPServer, Recorded, Reply, json_reply

ServerT = TypeVar("ServerT", bound=FakeHTTPServer)

DPO_ID = "2305.18290"
DPO_PAPER = {
    "id": DPO_ID,
    "title": "Direct Preference Optimization: Your Language Model is Secretly a Reward Model",
    "summary": "We introduce DPO, a stable, performant and computationally lightweight algorithm ...",
    "upvotes": 61,
    "publishedAt": "2023-05-29T17:57:46.000Z",
    "authors": [{"name": "Rafael Rafailov"}, {"name": "Archit Sharma"}, {"name": "Eric Mitchell"}],
    "ai_summary": "DPO fine-tunes language models on preferences without a reward model or RL.",
    "ai_keywords": ["preference optimization", "RLHF", "reward model"],
    "githubRepo": "https://github.com/eric-mitchell/direct-preference-optimization",
    "githubStars": 2400,
}
LORA_PAPER = {
    "id": "2106.09685",
    "title": "LoRA: Low-Rank Adaptation of Large Language Models",
    "summary": "We propose Low-Rank Adaptation, or LoRA, which freezes the pretrained weights ...",
    "upvotes": 40,
    "publishedAt": "2021-06-17T00:00:00.000Z",
}
GRPO_PAPER = {
    "id": "2402.03300",
    "title": "DeepSeekMath: Pushing the Limits of Mathematical Reasoning",
    "summary": "We introduce Group Relative Policy Optimization (GRPO) ...",
    "upvotes": 120,
    "publishedAt": "2024-02-05T00:00:00.000Z",
}
PAPERS = [DPO_PAPER, LORA_PAPER, GRPO_PAPER]
GRPO_MARKDOWN = """# DeepSeekMath: Pushing the Limits of Mathematical Reasoning

## Abstract
We introduce Group Relative Policy Optimization (GRPO), a variant of PPO.

## 1. Introduction
Mathematical reasoning is hard.

## 4. Reinforcement Learning
GRPO drops the value model.

### 4.1. Group Relative Policy Optimization
```python
# a comment, not a heading
advantage = (reward - mean) / std
```
The learning rate is 1e-6 and the KL coefficient 0.04.
"""

# A heading ending in a long run of NBSPs (common in PDF-converted text): cubic for a backtracking regex.
NBSP_PAPER_ID = "2501.00001"
NBSP_MARKDOWN = (
    "# Slow Headings\n\n## Abstract\nShort.\n\n## 1. Method" + "\u00a0" * 3_000 + "|\nThe method.\n"
)
MARKDOWNS = {GRPO_PAPER["id"]: GRPO_MARKDOWN, NBSP_PAPER_ID: NBSP_MARKDOWN}


def fresh(server: ServerT) -> ServerT:
    """A server shared by a module's tests, with the previous test's requests and failures forgotten."""
    with server.lock:
        server.requests.clear()
        server.failures.clear()
    return server


class FakeHub(FakeHTTPServer):
    """The Hub endpoints `hf_papers` and the docs tools call (papers, models, datasets, collections, docs)."""

    def __init__(self) -> None:
        super().__init__()
        self.route("GET", r"/api/papers/search", self._search)
        self.route("GET", r"/api/daily_papers", self._daily)
        self.route("GET", r"/api/papers/(?P<id>[^/]+)", self._paper)
        self.route("GET", r"/api/models", lambda r: self._linked(r, "model"))
        self.route("GET", r"/api/datasets", lambda r: self._linked(r, "dataset"))
        self.route("GET", r"/api/collections", self._collections)
        self.route("GET", r"/papers/(?P<id>[^/]+)\.md", self._paper_markdown)
        self.route("GET", r"/docs/trl", lambda r: html_reply(DOCS_INDEX_HTML))
        self.route("GET", r"/docs/trl/(?P<page>[\w-]+)\.md", self._doc_page)

    def _search(self, request: Recorded) -> Reply:
        query = (request.arg("q") or "").lower()
        found = [p for p in PAPERS if query in (p["title"] + p["summary"]).lower()]
        return json_reply(200, found[: int(request.arg("limit") or 50)])

    def _daily(self, request: Recorded) -> Reply:
        daily = [{"paper": paper, "title": paper["title"], "numComments": 3} for paper in reversed(PAPERS)]
        return json_reply(200, daily[: int(request.arg("limit") or 50)])

    def _paper(self, request: Recorded) -> Reply:
        found = next((p for p in PAPERS if p["id"] == request.match["id"]), None)
        return json_reply(200, found) if found else json_reply(404, {"error": "Paper not found"})

    def _paper_markdown(self, request: Recorded) -> Reply:
        """`HfApi.read_paper`: GRPO and NBSP_PAPER_ID have Markdown (DPO is read from arXiv HTML)."""
        markdown = MARKDOWNS.get(request.match["id"])
        if markdown is None:
            return json_reply(404, {"error": "Paper not found"})
        return 200, {"Content-Type": "text/markdown; charset=utf-8"}, markdown.encode()

    def _linked(self, request: Recorded, kind: str) -> Reply:
        if request.arg("filter") != f"arxiv:{DPO_ID}":
            return json_reply(200, [])
        if kind == "model":
            rows = [
                {"id": "HuggingFaceH4/zephyr-7b-beta", "downloads": 150000, "likes": 1600},
                {"id": "trl-lib/dpo-demo", "downloads": 12, "likes": 0, "pipeline_tag": "text-generation"},
            ]
        else:
            rows = [{"id": "HuggingFaceH4/ultrafeedback_binarized", "downloads": 9000, "likes": 300}]
        return json_reply(200, rows)

    def _collections(self, request: Recorded) -> Reply:
        if request.arg("item") != f"papers/{DPO_ID}":
            return json_reply(200, [])
        collection = {
            "slug": "trl-lib/preference-tuning-6630",
            "title": "Preference tuning",
            "owner": {"name": "trl-lib", "type": "org"},
            "items": [],
            "lastUpdated": "2024-05-01T00:00:00.000Z",
            "private": False,
            "theme": "blue",
            "upvotes": 17,
            "description": "Papers and models about preference tuning.",
        }
        return json_reply(200, [collection])

    def _doc_page(self, request: Recorded) -> Reply:
        page = DOCS_PAGES.get(request.match["page"])
        if page is None:
            return 404, {"Content-Type": "text/plain"}, b"Not found"
        return 200, {"Content-Type": "text/markdown; charset=utf-8"}, page.encode()


def html_reply(html: str, status: int = 200) -> Reply:
    """An HTML answer."""
    return status, {"Content-Type": "text/html; charset=utf-8"}, html.encode()


DOCS_INDEX_HTML = """<html><head><title>TRL</title>
<script>var x = "<a href='/docs/trl/hidden'>";</script></head>
<body><nav class="top"><a href="/docs/trl/v0.9.0/en/index">v0.9.0</a></nav>
<nav class="flex-auto overflow-y-auto">
  <a href="/docs/trl/index">TRL</a>
  <a href="/docs/trl/quickstart">Quickstart</a>
  <a href="/docs/trl/sft_trainer">SFT Trainer</a>
  <a href="/docs/trl/dpo_trainer">DPO Trainer</a>
  <a href="/docs/trl/grpo_trainer">GRPO Trainer</a>
  <a href="/docs/trl/missing_page">Missing page</a>
</nav><main>TRL docs home</main></body></html>"""

DOCS_PAGES = {
    "index": "# TRL - Transformer Reinforcement Learning\n\nTRL is a library to post-train models.",
    "quickstart": "# Quickstart\n\nInstall with `pip install trl` and train your first model.",
    "sft_trainer": "# SFT Trainer\n\nSupervised fine-tuning with `SFTTrainer`.\n\n## SFTConfig\n\n"
    + "The `SFTConfig` class holds `max_length`, `packing` and `dataset_text_field`.\n" * 300,
    "dpo_trainer": "# DPO Trainer\n\nDirect Preference Optimization. Use `DPOConfig` with `beta` to set the"
    " strength of the preference loss.",
    "grpo_trainer": "# GRPO Trainer\n\nGroup Relative Policy Optimization with reward functions.",
}


def _section(section_id: str, level: int, number: str, title: str, body: str) -> str:
    kind = "section" if level == 2 else "subsection"
    tag = f'<span class="ltx_tag">{number} </span>'
    heading = f'<h{level} class="ltx_title ltx_title_{kind}">{tag}{title}</h{level}>'
    return f'<section class="ltx_{kind}" id="{section_id}">{heading}\n{body}\n'


def _paragraph(text: str) -> str:
    return f'<div class="ltx_para"><p class="ltx_p">{text}</p></div>'


def _paper_html() -> str:
    """The DPO paper as arXiv's LaTeXML HTML renders it (a long section 6 to page through)."""
    math = '<math alttext="\\pi_\\theta" display="inline"><mi>π</mi><annotation>junk</annotation></math>'
    intro = _paragraph(f"Large models are trained on human preferences with {math} as the policy.")
    loss = _section(
        "S4.SS1", 3, "4.1", "Loss\nfunction", _paragraph("The loss compares chosen and rejected.")
    )
    results = "".join(_paragraph(f"Result paragraph {n}: the DPO loss keeps improving.") for n in range(400))
    return (
        "<!DOCTYPE html><html><head><title>DPO</title><style>.x{color:red}</style></head><body>"
        '<nav class="ltx_page_navbar"><a href="#S1">1 Introduction</a></nav><article class="ltx_document">'
        '<h1 class="ltx_title ltx_title_document">Direct Preference Optimization</h1>'
        '<div class="ltx_abstract"><h6 class="ltx_title ltx_title_abstract">Abstract</h6>'
        + _paragraph("We solve the RLHF problem with a simple classification loss.")
        + "</div>"
        + _section("S1", 2, "1", "Introduction", intro)
        + "</section>"
        + _section(
            "S4", 2, "4", "Direct Preference\nOptimization", _paragraph("We derive the DPO objective.")
        )
        + loss
        + "</section></section>"
        + _section("S6", 2, "6", "Experiments", results)
        + "</section></article></body></html>"
    )


class FakeArxiv(FakeHTTPServer):
    """arXiv's HTML rendering of papers: only the DPO paper has one."""

    def __init__(self) -> None:
        super().__init__()
        self.route("GET", rf"/html/{DPO_ID}", lambda r: html_reply(_paper_html()))
        self.route(
            "GET",
            r"/html/[^/]+",
            lambda r: html_reply("<html><body>No HTML for this paper</body></html>", 404),
        )


class FakeWebsite(FakeHTTPServer):
    """Any other web site (not a Hugging Face host): one HTML blog post."""

    def __init__(self) -> None:
        super().__init__()
        post = (
            "<html><head><style>p{margin:0}</style></head><body><nav>Home | Blog</nav>"
            "<article><h1>Fine-tuning with DPO</h1><p>Set <b>beta</b> to 0.1 for a start.</p></article>"
            "</body></html>"
        )
        self.route("GET", r"/blog/dpo.html", lambda r: html_reply(post))


def search_result(url: str, title: str, snippet: str, ad: bool = False) -> str:
    """One result block as DuckDuckGo's HTML endpoint renders it (links go through its redirector)."""
    from urllib.parse import quote

    classes = "result results_links web-result" + (" result--ad" if ad else "")
    href = f"//duckduckgo.com/l/?uddg={quote(url, safe='')}&amp;rut=abc"
    return f"""<div class="{classes}"><div class="links_main result__body">
<h2 class="result__title"><a rel="nofollow" class="result__a" href="{href}">{title}</a></h2>
<div class="result__extras"><a class="result__url" href="{href}">{url}</a></div>
<a class="result__snippet" href="{href}">{snippet}</a></div></div>"""


SEARCH_RESULTS = [
    ("https://example-ads.com/buy", "Buy GPUs now", "Sponsored", True),
    (
        "https://huggingface.co/docs/trl/dpo_trainer",
        "DPO Trainer &amp; TRL",
        "Train with <b>DPO</b> in TRL",
        False,
    ),
    (
        "http://www.huggingface.co/docs/trl/dpo_trainer/?utm_source=ddg",
        "DPO Trainer (dup)",
        "duplicate",
        False,
    ),
    ("https://arxiv.org/abs/2305.18290", "DPO paper", "Direct Preference Optimization", False),
    ("https://spam.example.net/dpo", "DPO spam", "spam", False),
    ("https://blog.spam.example.net/x", "More spam", "spam", False),
    *[(f"https://site{n}.org/dpo", f"Result {n}", f"snippet {n}", False) for n in range(1, 9)],
]


class FakeSearchEngine(FakeHTTPServer):
    """DuckDuckGo's keyless HTML search page."""

    def __init__(self) -> None:
        super().__init__()
        body = "".join(search_result(*row) for row in SEARCH_RESULTS)
        page = f'<html><body><div id="links" class="results">{body}</div></body></html>'
        self.route("GET", r"/html/?", lambda r: html_reply(page))


def notebook_json() -> str:
    """A small notebook: markdown, code with a long stream output, an image, an error."""
    cells = [
        {"cell_type": "markdown", "metadata": {}, "source": ["# Fine-tune with SFT\n", "Steps below."]},
        {
            "cell_type": "code",
            "metadata": {},
            "source": ["from trl import SFTTrainer\n", "trainer = SFTTrainer(model='Qwen/Qwen2-0.5B')"],
            "outputs": [
                {
                    "output_type": "stream",
                    "name": "stdout",
                    "text": [f"step {n} loss 0.5\n" for n in range(200)],
                },
                {
                    "output_type": "display_data",
                    "data": {"image/png": "iVBORw0KGgo=", "text/plain": ["<Figure>"]},
                },
            ],
        },
        {
            "cell_type": "code",
            "metadata": {},
            "source": "trainer.train()",
            "outputs": [
                {"output_type": "error", "ename": "ValueError", "evalue": "bad config", "traceback": []}
            ],
        },
    ]
    return json.dumps({"cells": cells, "metadata": {"kernelspec": {"language": "python"}}, "nbformat": 4})


SFT_SCRIPT = "\n".join(f"# line {n}: SFTTrainer example" for n in range(1, 401))
REPO_FILES = {
    "examples/scripts/sft.py": SFT_SCRIPT,
    "examples/scripts/dpo.py": "from trl import DPOTrainer\n",
    "examples/scripts/grpo_vlm.py": "from trl import GRPOTrainer\n",
    "examples/notebooks/sft_notebook.ipynb": notebook_json(),
    "examples/README.md": "# Examples\n",
    "scripts/train_dpo_large.py": "print('large')\n",
    "trl/trainer/sft_trainer.py": "class SFTTrainer: ...\n",
    "trl/trainer/grpo_trainer.py": "class GRPOTrainer: ...\n",
    "README.md": "# TRL\n",
    "examples/images/logo.png": "\x89PNG\x00\x00",
}
LARGE_FILE = "examples/scripts/large_dataset.py"  # served without inline content, like files over 1 MB


class FakeGitHub(FakeHTTPServer):
    """The GitHub REST API: one repo (huggingface/trl) with a tree and contents, and repository search."""

    def __init__(self) -> None:
        super().__init__()
        self.route("GET", r"/repos/huggingface/trl", lambda r: json_reply(200, {"default_branch": "main"}))
        self.route("GET", r"/repos/huggingface/trl/git/trees/main", lambda r: json_reply(200, _tree()))
        self.route("GET", r"/repos/huggingface/trl/contents/(?P<path>.+)", self._contents)
        self.route("GET", r"/search/repositories", self._search)

    def _contents(self, request: Recorded) -> Reply:
        path = request.match["path"]
        if path == "examples/scripts":
            entries = [
                {"name": p.rsplit("/", 1)[1], "path": p, "type": "file"}
                for p in REPO_FILES
                if "scripts/" in p
            ]
            return json_reply(200, entries)
        if path == LARGE_FILE:
            if "raw" in request.headers.get("accept", ""):
                return 200, {"Content-Type": "text/plain"}, b"import datasets\nprint('big')\n"
            return json_reply(
                200, {"type": "file", "path": path, "size": 2_000_000, "encoding": "none", "content": ""}
            )
        if path not in REPO_FILES:
            return json_reply(404, {"message": "Not Found"})
        encoded = base64.encodebytes(REPO_FILES[path].encode("latin-1")).decode()  # GitHub wraps base64 lines
        return json_reply(200, {"type": "file", "path": path, "encoding": "base64", "content": encoded})

    def _search(self, request: Recorded) -> Reply:
        query = request.arg("q") or ""
        if query not in ("org:huggingface", "user:huggingface"):
            return json_reply(422, {"message": "Validation Failed"})
        key = {"stars": "stargazers_count", "forks": "forks_count", "updated": "updated_at"}[
            request.arg("sort")
        ]
        items = sorted(GITHUB_REPOS, key=lambda repo: repo[key], reverse=request.arg("order") != "asc")
        return json_reply(
            200, {"total_count": len(items), "items": items[: int(request.arg("per_page") or 30)]}
        )


def _tree() -> dict[str, Any]:
    blobs = [{"path": p, "type": "blob", "size": len(c), "sha": "abc1234"} for p, c in REPO_FILES.items()]
    blobs.append({"path": LARGE_FILE, "type": "blob", "size": 2_000_000, "sha": "def5678"})
    dirs = [{"path": d, "type": "tree", "sha": "0000000"} for d in ("examples", "examples/scripts", "trl")]
    return {"sha": "main", "tree": dirs + blobs, "truncated": False}


def _repo(name: str, stars: int, forks: int, updated: str, description: str) -> dict[str, Any]:
    return {
        "full_name": f"huggingface/{name}",
        "html_url": f"https://github.com/huggingface/{name}",
        "description": description,
        "stargazers_count": stars,
        "forks_count": forks,
        "updated_at": updated,
        "language": "Python",
    }


GITHUB_REPOS = [
    _repo("transformers", 150000, 30000, "2024-06-01T00:00:00Z", "State-of-the-art ML for PyTorch"),
    _repo("trl", 12000, 1500, "2024-06-03T00:00:00Z", "Train transformer language models with RL"),
    _repo("peft", 18000, 1800, "2024-05-20T00:00:00Z", "Parameter-efficient fine-tuning"),
]
