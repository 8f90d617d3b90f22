"""A local fake of the Hugging Face Hub API, enough for HfApi's listing, info, tree, download, commit, refs,
discussions, repo-settings and collection calls. Every request is recorded (see `FakeHTTPServer`).

    with FakeHub(token="hf_test") as hub:
        hub.add_repo("org/model", files={"README.md": b"# Hi"}, info={"pipeline_tag": "text-generation"})
        HfApi(endpoint=hub.url, token="hf_test").model_info("org/model")
        hub.find("GET", "/api/models/org/model")

Private repos and gated files need `Authorization: Bearer <token>`; so do all writes.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.http_fake import Abort, FakeHTTPServer, Recorded, Reply, json_reply
from tests.fakes.hub_discussions import DiscussionRoutes

TYPES = "(?P<type>model|dataset|space)s"
REPO = "(?P<repo>[^/]+/[^/]+)"
REV = "(?P<rev>refs/pr/\\d+|[^/]+)"
DATE = "2024-05-01T12:00:00.000Z"
USER = "test-user"


def sha_of(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


@dataclass
class FakeRepo:
    repo_id: str
    repo_type: str = "model"
    files: dict[str, bytes] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)  # extra fields of /api/{type}s/{id}
    private: bool = False
    gated: str | bool = False  # "auto"/"manual": file downloads need the token
    branches: dict[str, str] = field(default_factory=lambda: {"main": "a" * 40})
    tags: dict[str, str] = field(default_factory=dict)
    discussions: list[dict[str, Any]] = field(default_factory=list)

    def payload(self, with_sizes: bool = False) -> dict[str, Any]:
        siblings = [
            {"rfilename": p, **({"size": len(d)} if with_sizes else {})} for p, d in self.files.items()
        ]
        base = {"id": self.repo_id, "author": self.repo_id.split("/")[0], "sha": self.branches["main"]}
        base |= {"private": self.private, "gated": self.gated, "lastModified": DATE, "createdAt": DATE}
        base |= {"likes": 0, "tags": [], "siblings": siblings}
        if self.repo_type != "space":
            base["downloads"] = 0
        return base | self.info


class FakeHub(DiscussionRoutes, FakeHTTPServer):
    """The Hub: repos keyed by (type, id); `token` is the only valid token."""

    def __init__(self, token: str = "hf_test") -> None:
        super().__init__()
        self.token = token
        self.repos: dict[tuple[str, str], FakeRepo] = {}
        self.route("GET", "/api/whoami-v2", self.whoami)
        self.route("GET", f"/api/{TYPES}", self.list_repos)
        self.route("GET", f"/api/{TYPES}/{REPO}(?:/revision/{REV})?", self.repo_info)
        self.route("GET", f"/api/{TYPES}/{REPO}/tree/{REV}(?:/(?P<path>.*))?", self.tree)
        self.route("GET", f"/(?:(?P<type>dataset|space)s/)?{REPO}/resolve/{REV}/(?P<path>.+)", self.resolve)
        self.route("POST", f"/api/{TYPES}/{REPO}/preupload/{REV}", self.preupload)
        self.route("POST", "/api/validate-yaml", lambda request: json_reply(200, {}))
        self.route("POST", f"/api/{TYPES}/{REPO}/commit/{REV}", self.commit)
        self.route("GET", f"/api/{TYPES}/{REPO}/refs", self.refs)
        self.route("POST", f"/api/{TYPES}/{REPO}/branch/(?P<name>.+)", self.create_branch)
        self.route("DELETE", f"/api/{TYPES}/{REPO}/branch/(?P<name>.+)", self.delete_ref("branches"))
        self.route("POST", f"/api/{TYPES}/{REPO}/tag/{REV}", self.create_tag)
        self.route("DELETE", f"/api/{TYPES}/{REPO}/tag/(?P<name>.+)", self.delete_ref("tags"))
        self.route("POST", "/api/repos/create", self.create_repo)
        self.route("PUT", f"/api/{TYPES}/{REPO}/settings", self.settings)
        self.collections: dict[str, dict[str, Any]] = {}  # slug -> the collection as the Hub returns it
        self.route("POST", "/api/collections", self.create_collection)
        self.route("GET", "/api/collections/(?P<slug>[^/]+/[^/]+)", self.get_collection)
        self.route("POST", "/api/collections/(?P<slug>[^/]+/[^/]+)/items", self.add_collection_item)
        self.add_discussion_routes()

    def add_repo(self, repo_id: str, repo_type: str = "model", **fields: Any) -> FakeRepo:
        repo = FakeRepo(repo_id, repo_type, **fields)
        self.repos[(repo_type, repo_id)] = repo
        return repo

    def authorized(self, request: Recorded) -> bool:
        return request.headers.get("authorization") == f"Bearer {self.token}"

    def lookup(self, request: Recorded, write: bool = False) -> FakeRepo:
        """The repo the request names; else abort with the error reply the real Hub would give."""
        groups = request.match.groupdict() if request.match else {}
        repo = self.repos.get((groups.get("type") or "model", groups["repo"]))
        if write and not self.authorized(request):
            msg = "Invalid credentials in Authorization header"
            raise Abort(json_reply(401, {"error": msg}, {"X-Error-Message": msg}))
        if repo is None:
            raise Abort(json_reply(404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"}))
        if repo.private and not self.authorized(request):
            error = {"error": "Invalid username or password."}
            raise Abort(json_reply(401, error, {"X-Error-Code": "RepoNotFound"}))
        return repo

    def whoami(self, request: Recorded) -> Reply:
        if not self.authorized(request):
            return json_reply(401, {"error": "Invalid user token."})
        return json_reply(200, {"type": "user", "name": USER, "orgs": []})

    def list_repos(self, request: Recorded) -> Reply:
        repo_type = request.match["type"]
        search, author = (request.arg("search") or "").lower(), request.arg("author")
        wanted = set(request.query.get("filter", []))
        found = [
            repo
            for (kind, repo_id), repo in self.repos.items()
            if kind == repo_type
            and search in repo_id.lower()
            and (author is None or repo_id.split("/")[0] == author)
            and wanted <= set(repo.info.get("tags", [])) | {repo.info.get("library_name")}
            and request.arg("pipeline_tag") in (None, repo.info.get("pipeline_tag"))
            and (not repo.private or self.authorized(request))
        ]
        limit = int(request.arg("limit") or 1000)
        return json_reply(200, [{**repo.payload(), "siblings": None} for repo in found[:limit]])

    def repo_info(self, request: Recorded) -> Reply:
        repo = self.lookup(request)
        return json_reply(200, repo.payload(with_sizes=(request.arg("blobs") or "").lower() == "true"))

    def tree(self, request: Recorded) -> Reply:
        repo = self.lookup(request)
        prefix = (request.match["path"] or "").strip("/")
        inside = [p for p in sorted(repo.files) if not prefix or p.startswith(prefix + "/")]
        relative = [p[len(prefix) + 1 :] if prefix else p for p in inside]
        folders = sorted({f"{prefix}/{r}".strip("/").rsplit("/", 1)[0] for r in relative if "/" in r})
        entries = [{"type": "directory", "oid": "0" * 40, "path": folder} for folder in folders]
        entries += [
            {"type": "file", "oid": sha_of(repo.files[p]), "size": len(repo.files[p]), "path": p}
            for p in inside
        ]
        return json_reply(200, entries)

    def resolve(self, request: Recorded) -> Reply:
        repo = self.lookup(request)
        if repo.gated and not self.authorized(request):
            return json_reply(
                401, {"error": "Access to this model is restricted."}, {"X-Error-Code": "GatedRepo"}
            )
        data = repo.files.get(request.match["path"])
        if data is None:
            return json_reply(404, {"error": "Entry not found"}, {"X-Error-Code": "EntryNotFound"})
        headers = {"X-Repo-Commit": repo.branches["main"], "ETag": f'"{sha_of(data)}"'}
        return 200, {"Content-Type": "application/octet-stream", **headers}, data

    def preupload(self, request: Recorded) -> Reply:
        self.lookup(request, write=True)
        files = [
            {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
            for f in request.json()["files"]
        ]
        return json_reply(200, {"files": files})

    def commit(self, request: Recorded) -> Reply:
        repo = self.lookup(request, write=True)
        oid = sha_of(request.body)
        prefix = "" if repo.repo_type == "model" else f"{repo.repo_type}s/"
        reply = {"commitUrl": f"{self.url}/{prefix}{repo.repo_id}/commit/{oid}", "commitOid": oid}
        if request.arg("create_pr") == "1":
            number = self.open_discussion(repo, request.ndjson()[0]["value"]["summary"], pull_request=True)
            return json_reply(
                200, reply | {"pullRequestUrl": f"{self.url}/{prefix}{repo.repo_id}/discussions/{number}"}
            )
        for line in request.ndjson()[1:]:
            path = line["value"]["path"]
            if line["key"] == "file":
                repo.files[path] = base64.b64decode(line["value"]["content"])
            elif line["key"] == "deletedFile":
                repo.files.pop(path, None)
            elif line["key"] == "deletedFolder":
                repo.files = {p: d for p, d in repo.files.items() if not p.startswith(path.rstrip("/") + "/")}
        repo.branches["main"] = oid
        return json_reply(200, reply | {"pullRequestUrl": None})

    def refs(self, request: Recorded) -> Reply:
        repo = self.lookup(request)

        def refs_of(names: dict[str, str], kind: str) -> list[dict[str, str]]:
            return [{"name": n, "ref": f"refs/{kind}/{n}", "targetCommit": c} for n, c in names.items()]

        payload = {
            "branches": refs_of(repo.branches, "heads"),
            "converts": [],
            "tags": refs_of(repo.tags, "tags"),
        }
        return json_reply(200, payload | {"pullRequests": []})

    def create_branch(self, request: Recorded) -> Reply:
        repo = self.lookup(request, write=True)
        if request.match["name"] in repo.branches:
            return json_reply(409, {"error": "Reference already exists"})
        start = (request.json() or {}).get("startingPoint", "main")
        repo.branches[request.match["name"]] = repo.branches.get(start, start)
        return json_reply(200, {})

    def create_tag(self, request: Recorded) -> Reply:
        repo = self.lookup(request, write=True)
        body = request.json()
        repo.tags[body["tag"]] = repo.branches.get(request.match["rev"], request.match["rev"])
        return json_reply(200, {})

    def delete_ref(self, kind: str):
        def handler(request: Recorded) -> Reply:
            repo = self.lookup(request, write=True)
            if getattr(repo, kind).pop(request.match["name"], None) is None:
                return json_reply(404, {"error": "Invalid rev id"}, {"X-Error-Code": "RevisionNotFound"})
            return json_reply(200, {})

        return handler

    def create_repo(self, request: Recorded) -> Reply:
        if not self.authorized(request):
            return json_reply(401, {"error": "Invalid user token."})
        body = request.json()
        repo_id = f"{body.get('organization') or USER}/{body['name']}"
        repo_type = body.get("type") or "model"
        prefix = "" if repo_type == "model" else f"{repo_type}s/"
        url = f"{self.url}/{prefix}{repo_id}"
        if (repo_type, repo_id) in self.repos:  # the Hub's 409 names the repo (create_repo(exist_ok=True))
            return json_reply(409, {"error": "You already created this repo", "url": url})
        self.add_repo(repo_id, repo_type, private=body.get("visibility") == "private")
        return json_reply(200, {"url": url, "name": repo_id})

    def settings(self, request: Recorded) -> Reply:
        repo = self.lookup(request, write=True)
        body = request.json()
        if "visibility" in body:
            repo.private = body["visibility"] == "private"
        if "gated" in body:
            repo.gated = body["gated"]
        return json_reply(200, {})

    def create_collection(self, request: Recorded) -> Reply:
        """A new collection; 409 with the existing one's slug when the owner has one with this title."""
        if not self.authorized(request):
            return json_reply(401, {"error": "Invalid user token."})
        body = request.json()
        for slug, found in self.collections.items():
            if (found["owner"]["name"], found["title"]) == (body["namespace"], body["title"]):
                return json_reply(409, {"error": "Collection already exists", "slug": slug})
        slug = f"{body['namespace']}/{body['title'].lower()}-{len(self.collections) + 1:024x}"
        self.collections[slug] = {
            "slug": slug,
            "title": body["title"],
            "owner": {"name": body["namespace"], "type": "user"},
            "items": [],
            "lastUpdated": DATE,
            "position": 0,
            "private": body.get("private", False),
            "theme": "default",
            "upvotes": 0,
            "description": body.get("description"),
        }
        return json_reply(200, self.collections[slug])

    def get_collection(self, request: Recorded) -> Reply:
        found = self.collections.get(request.match["slug"])
        if found is None:
            return json_reply(404, {"error": "Collection not found"})
        return json_reply(200, found)

    def add_collection_item(self, request: Recorded) -> Reply:
        """Add a repo; 409 when it is already in the collection."""
        found = self.collections.get(request.match["slug"])
        if not self.authorized(request) or found is None:
            return json_reply(404 if found is None else 401, {"error": "Collection not found"})
        item = request.json()["item"]
        if any((i["id"], i["type"]) == (item["id"], item["type"]) for i in found["items"]):
            return json_reply(409, {"error": "Item already in the collection"})
        position = len(found["items"])
        found["items"].append(
            {"_id": f"{position:024x}", "id": item["id"], "type": item["type"], "position": position}
        )
        return json_reply(200, found)
