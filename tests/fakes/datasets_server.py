"""A local fake of the datasets-server (dataset viewer API): /is-valid, /splits, /size, /info, /first-rows,
/parquet. Every request is recorded (see `FakeHTTPServer`).

    with FakeDatasetsServer(token="hf_test") as viewer:
        viewer.add_dataset("org/data", {"default": {"train": rows}}, features={"text": value("string")})
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.fakes.http_fake import Abort, FakeHTTPServer, Recorded, Reply, json_reply

NOT_FOUND = (
    "The dataset does not exist, or is not accessible without authentication (private or gated). "
    "Please check the spelling of the dataset name or retry with authentication."
)
FIRST_ROWS = 100


def value(dtype: str) -> dict[str, str]:
    return {"dtype": dtype, "_type": "Value"}


def class_label(*names: str) -> dict[str, Any]:
    return {"names": list(names), "_type": "ClassLabel"}


@dataclass
class FakeDataset:
    name: str
    splits: dict[str, dict[str, list[dict[str, Any]]]]  # config -> split -> rows
    features: dict[str, Any] = field(default_factory=dict)  # the same for every config
    num_rows: dict[tuple[str, str], int] = field(default_factory=dict)  # overrides len(rows)
    private: bool = False
    valid: bool = True

    def rows_in(self, config: str, split: str) -> int:
        return self.num_rows.get((config, split), len(self.splits[config][split]))


class FakeDatasetsServer(FakeHTTPServer):
    def __init__(self, token: str = "hf_test") -> None:
        super().__init__()
        self.token = token
        self.datasets: dict[str, FakeDataset] = {}
        self.route("GET", "/is-valid", self.is_valid)
        self.route("GET", "/splits", self.list_splits)
        self.route("GET", "/size", self.size)
        self.route("GET", "/info", self.info)
        self.route("GET", "/first-rows", self.first_rows)
        self.route("GET", "/parquet", self.parquet)

    def add_dataset(self, name: str, splits: dict[str, dict[str, list[dict]]], **fields: Any) -> FakeDataset:
        self.datasets[name] = FakeDataset(name, splits, **fields)
        return self.datasets[name]

    def lookup(self, request: Recorded) -> FakeDataset:
        dataset = self.datasets.get(request.arg("dataset") or "")
        authorized = request.headers.get("authorization") == f"Bearer {self.token}"
        if dataset is None:
            raise Abort(json_reply(404, {"error": NOT_FOUND}))
        if dataset.private and not authorized:
            raise Abort(json_reply(401, {"error": NOT_FOUND}))
        return dataset

    def config_split(self, request: Recorded, dataset: FakeDataset) -> tuple[str, str]:
        config, split = request.arg("config") or "", request.arg("split") or ""
        if config not in dataset.splits or split not in dataset.splits[config]:
            raise Abort(json_reply(404, {"error": "Not found."}))
        return config, split

    def pairs(self, dataset: FakeDataset) -> list[tuple[str, str]]:
        return [(config, split) for config, splits in dataset.splits.items() for split in splits]

    def is_valid(self, request: Recorded) -> Reply:
        valid = self.lookup(request).valid
        return json_reply(200, {k: valid for k in ("viewer", "preview", "search", "filter", "statistics")})

    def list_splits(self, request: Recorded) -> Reply:
        dataset = self.lookup(request)
        items = [{"dataset": dataset.name, "config": c, "split": s} for c, s in self.pairs(dataset)]
        return json_reply(200, {"splits": items, "pending": [], "failed": []})

    def size(self, request: Recorded) -> Reply:
        dataset = self.lookup(request)
        splits = [
            {
                "dataset": dataset.name,
                "config": c,
                "split": s,
                "num_rows": dataset.rows_in(c, s),
                "num_columns": 2,
            }
            for c, s in self.pairs(dataset)
        ]
        total = {"dataset": dataset.name, "num_rows": sum(item["num_rows"] for item in splits)}
        return json_reply(
            200, {"size": {"dataset": total, "configs": [], "splits": splits}, "partial": False}
        )

    def info(self, request: Recorded) -> Reply:
        dataset = self.lookup(request)
        config = request.arg("config") or ""
        if config not in dataset.splits:
            raise Abort(json_reply(404, {"error": "Not found."}))
        splits = {s: {"name": s, "num_examples": dataset.rows_in(config, s)} for s in dataset.splits[config]}
        info = {"config_name": config, "features": dataset.features, "splits": splits}
        return json_reply(200, {"dataset_info": info, "partial": False})

    def first_rows(self, request: Recorded) -> Reply:
        dataset = self.lookup(request)
        config, split = self.config_split(request, dataset)
        rows = dataset.splits[config][split][:FIRST_ROWS]
        features = [
            {"feature_idx": i, "name": k, "type": v} for i, (k, v) in enumerate(dataset.features.items())
        ]
        wrapped = [{"row_idx": i, "row": row, "truncated_cells": []} for i, row in enumerate(rows)]
        body = {"dataset": dataset.name, "config": config, "split": split, "features": features}
        return json_reply(200, body | {"rows": wrapped, "truncated": False})

    def parquet(self, request: Recorded) -> Reply:
        dataset = self.lookup(request)
        files = [
            {
                "dataset": dataset.name,
                "config": c,
                "split": s,
                "url": f"{self.url}/{dataset.name}/{c}/{s}/0000.parquet",
                "filename": "0000.parquet",
                "size": 1000 * dataset.rows_in(c, s),
            }
            for c, s in self.pairs(dataset)
        ]
        return json_reply(200, {"parquet_files": files, "pending": [], "failed": [], "partial": False})
