"""FakeHub for trace uploads: its "repo already exists" answer (409) carries the repo URL, as the real Hub's
does (`HfApi.create_repo(exist_ok=True)` reads it)."""

from __future__ import annotations

import json

from tests.fakes.http_fake import Recorded, Reply, json_reply
from tests.fakes.hub_server import USER, FakeHub


class TracesHub(FakeHub):
    def create_repo(self, request: Recorded) -> Reply:
        status, headers, payload = super().create_repo(request)
        if status != 409:
            return status, headers, payload
        body = request.json()
        repo_id = f"{body.get('organization') or USER}/{body['name']}"
        prefix = "" if (body.get("type") or "model") == "model" else f"{body['type']}s/"
        return json_reply(409, {**json.loads(payload), "url": f"{self.url}/{prefix}{repo_id}"})
