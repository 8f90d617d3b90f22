"""Discussion and pull-request routes of the fake Hub (a mixin of `FakeHub`)."""

from __future__ import annotations

from typing import Any

from tests.fakes.http_fake import Abort, Recorded, Reply, json_reply

TYPES = "(?P<type>model|dataset|space)s"
REPO = "(?P<repo>[^/]+/[^/]+)"
DATE = "2024-05-01T12:00:00.000Z"


def event(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": f"evt{kind}",
        "type": kind,
        "createdAt": DATE,
        "author": {"name": "test-user"},
        "data": data,
    }


class DiscussionRoutes:
    """List, open, read, merge, comment and close discussions and PRs."""

    def add_discussion_routes(self) -> None:
        base = f"/api/{TYPES}/{REPO}/discussions"
        self.route("GET", base, self.list_discussions)
        self.route("POST", base, self.create_discussion)
        self.route("GET", f"{base}/(?P<num>\\d+)", self.discussion_details)
        self.route("POST", f"{base}/(?P<num>\\d+)/merge", self.merge)
        self.route("POST", f"{base}/(?P<num>\\d+)/comment", self.comment)
        self.route("POST", f"{base}/(?P<num>\\d+)/status", self.change_status)

    def open_discussion(self, repo: Any, title: str, pull_request: bool, description: str = "") -> int:
        number = len(repo.discussions) + 1
        repo.discussions.append(
            {
                "num": number,
                "title": title,
                "status": "draft" if pull_request else "open",
                "isPullRequest": pull_request,
                "author": {"name": "test-user"},
                "createdAt": DATE,
                "repo": {"name": repo.repo_id, "type": repo.repo_type},
                "events": [event("comment", comment_data(description))] if description else [],
            }
        )
        return number

    def find_discussion(self, request: Recorded, write: bool = False) -> tuple[Any, dict]:
        repo = self.lookup(request, write=write)
        number = int(request.match["num"])
        if not 0 < number <= len(repo.discussions):
            raise Abort(json_reply(404, {"error": "Discussion not found"}))
        return repo, repo.discussions[number - 1]

    def list_discussions(self, request: Recorded) -> Reply:
        repo = self.lookup(request)
        status = request.arg("status")
        found = [d for d in repo.discussions if status in (None, "all", d["status"])]
        return json_reply(200, {"discussions": found, "count": len(found), "start": 0})

    def create_discussion(self, request: Recorded) -> Reply:
        repo = self.lookup(request, write=True)
        body = request.json()
        number = self.open_discussion(repo, body["title"], body["pullRequest"], body.get("description", ""))
        return json_reply(200, {"num": number})

    def discussion_details(self, request: Recorded) -> Reply:
        _, discussion = self.find_discussion(request)
        changes = {"base": "refs/heads/main"} if discussion["isPullRequest"] else {}
        extra = {"changes": changes, "filesWithConflicts": [], "diff": ""}
        return json_reply(200, discussion | extra)

    def merge(self, request: Recorded) -> Reply:
        _, discussion = self.find_discussion(request, write=True)
        discussion["status"] = "merged"
        return json_reply(200, {})

    def comment(self, request: Recorded) -> Reply:
        _, discussion = self.find_discussion(request, write=True)
        message = event("comment", comment_data(request.json()["comment"]))
        discussion["events"].append(message)
        return json_reply(200, {"newMessage": message})

    def change_status(self, request: Recorded) -> Reply:
        _, discussion = self.find_discussion(request, write=True)
        discussion["status"] = request.json()["status"]
        return json_reply(200, {"newStatus": event("status-change", {"status": discussion["status"]})})


def comment_data(text: str) -> dict[str, Any]:
    return {"edited": False, "hidden": False, "latest": {"raw": text}}
