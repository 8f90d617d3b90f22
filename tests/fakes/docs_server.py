"""Stand-ins for issue 13's docs tools: a docs site with a realistic 40+ KB HF-style page, Gradio's llms.txt,
the Hub's OpenAPI document, and GitHub's repository search by name."""

from __future__ import annotations

from typing import Any

from tests.fakes.http_fake import FakeHTTPServer, Recorded, Reply, json_reply
from tests.fakes.research_servers import GITHUB_REPOS, FakeGitHub, html_reply

NAV_LINKS = "".join(f'<a href="/docs/transformers/page_{n}">Sidebar entry {n}</a>' for n in range(300))
HEAD = (
    "<head><title>Trainer</title><style>.hljs{color:red}</style>"
    '<script>window.__DATA__ = {"props": "sidebar state"};</script></head>'
)
TOP_BAR = (
    '<header class="sticky"><a href="/">Hugging Face</a><form><input placeholder="Search models"></form>'
    '<nav><a href="/models">Models</a><a href="/datasets">Datasets</a><a href="/pricing">Pricing</a></nav>'
    "</header>"
)
CODE = (
    '<div class="code-block relative"><button class="copy">Copy</button>'
    '<pre class=""><code class="language-python">'
    '<span class="hljs-keyword">from</span> transformers <span class="hljs-keyword">import</span> Trainer\n'
    "trainer = Trainer(model=model, args=training_args)\n"
    "trainer.train()</code></pre></div>"
)
TABLE = (
    "<table><thead><tr><th>Argument</th><th>Default</th></tr></thead>"
    "<tbody><tr><td><code>learning_rate</code></td><td>5e-5</td></tr>"
    "<tr><td><code>num_train_epochs</code></td><td>3</td></tr></tbody></table>"
)


def _section(n: int) -> str:
    return (
        f'<h2 class="relative group"><a id="section-{n}" href="#section-{n}"><span><svg><path d="M0"/></svg>'
        f"</span></a><span>Section {n}</span></h2>"
        f'<p>Read the <a href="/docs/transformers/main_classes/trainer">Trainer reference</a> for part {n}; '
        "it explains how gradient_accumulation_steps, mixed precision and evaluation fit together "
        "in one loop.</p>" + CODE + TABLE
    )


def hf_docs_page() -> str:
    """An HF docs page as the site serves it: head, top bar, sidebar, article with code, footer."""
    article = "<h1>Trainer</h1><p>The <strong>Trainer</strong> class trains PyTorch models.</p>"
    article += "".join(_section(n) for n in range(1, 41))
    body = (
        TOP_BAR
        + f'<div class="flex"><nav class="flex-auto sidebar">{NAV_LINKS}</nav>'
        + f'<main class="prose"><article>{article}</article></main>'
        + '<aside class="toc"><a href="#section-1">On this page</a></aside></div>'
        + "<footer><a href='/terms'>Terms of service</a> Copyright Hugging Face</footer>"
    )
    return f"<!doctype html><html>{HEAD}<body>{body}</body></html>"


GRADIO_LLMS = """# Gradio

Gradio is the fastest way to demo your machine learning model.

## Blocks

Use `gr.Blocks` to lay out components and events.

```python
# this comment is code, not a heading
import gradio as gr
with gr.Blocks() as demo:
    gr.Markdown("Hello")
```

## ChatInterface

`gr.ChatInterface(fn)` builds a chatbot UI around a function that takes a message and a history.

## Interface

`gr.Interface(fn, inputs, outputs)` wraps a function with input and output components.
"""

OPENAPI = {
    "openapi": "3.1.0",
    "paths": {
        "/api/models": {
            "get": {
                "summary": "List models",
                "operationId": "listModels",
                "tags": ["models"],
                "parameters": [
                    {"name": "search", "in": "query", "description": "Filter by name"},
                    {"name": "limit", "in": "query", "description": "How many"},
                ],
                "responses": {"200": {"description": "The models"}},
            }
        },
        "/api/repos/create": {
            "post": {
                "summary": "Create a repository",
                "operationId": "createRepo",
                "tags": ["repos"],
                "requestBody": {
                    "content": {
                        "application/json": {"schema": {"required": ["name", "type"], "properties": {}}}
                    }
                },
                "responses": {"200": {"description": "Created"}, "409": {"description": "Already exists"}},
            }
        },
        "/api/jobs/{namespace}": {
            "get": {
                "summary": "List jobs of a namespace",
                "operationId": "listJobs",
                "tags": ["jobs"],
                "parameters": [{"name": "namespace", "in": "path", "required": True}],
            },
            "post": {"summary": "Run a job", "operationId": "runJob", "tags": ["jobs"]},
        },
    },
}


LEGACY_LIST = (
    "<html><body><main><h1>Old list</h1><ul>"
    + "".join(f"<li>item {n} " for n in range(400))
    + "</ul><p>first para<p>second para with <a href='/docs/x'>a link</a></main></body></html>"
)  # unclosed <li> and <p>, as HTML allows
DEEP_QUOTES = "<body><main>" + "<blockquote>" * 900 + "deep text" + "</blockquote>" * 900 + "</main></body>"
HUGE_PRE = "<body><main><pre>" + "a" * 3_000_000 + "</pre></main></body>"
MANY_PARAGRAPHS = "<body><main>" + "".join(f"<p>para{n} " for n in range(5000)) + "</main></body>"
PAGES = {"legacy": LEGACY_LIST, "deep": DEEP_QUOTES, "huge": HUGE_PRE, "many": MANY_PARAGRAPHS}


class FakeDocsSite(FakeHTTPServer):
    """A Hub-like host: the big docs page, a docs index, llms.txt and the OpenAPI document."""

    def __init__(self) -> None:
        super().__init__()
        self.spec: dict[str, Any] = OPENAPI
        self.route("GET", r"/big/trainer\.html", lambda r: html_reply(hf_docs_page()))
        self.route(
            "GET", r"/gradio/llms\.txt", lambda r: (200, {"Content-Type": "text/plain"}, GRADIO_LLMS.encode())
        )
        self.route("GET", r"/\.well-known/openapi\.json", lambda r: json_reply(200, self.spec))
        self.route("GET", r"/pages/\w+\.html", lambda r: html_reply(PAGES[r.path[7:-5]]))


def _similar(name: str) -> list[dict[str, Any]]:
    """Repositories whose name contains `name`, as GitHub's search finds them."""
    extra = [{"full_name": f"someone/{name}-fork", "stargazers_count": 12, "description": "A fork"}]
    return [r for r in GITHUB_REPOS if name in r["full_name"].split("/")[1]] + extra


class FakeGitHubSearch(FakeGitHub):
    """FakeGitHub whose repository search also answers `<name> in:name`, sorted by stars."""

    def _search(self, request: Recorded) -> Reply:
        query = request.arg("q") or ""
        if not query.endswith(" in:name"):
            return super()._search(request)
        items = sorted(_similar(query.removesuffix(" in:name")), key=lambda r: -r["stargazers_count"])
        limit = int(request.arg("per_page") or 30)
        return json_reply(200, {"total_count": len(items), "items": items[:limit]})
