"""The edit tool's Unicode pass: an old_str that differs from the file only by look-alike characters."""

from __future__ import annotations

import pytest

from ml_intern.tools.base import ToolError
from ml_intern.tools.local.matching import locate

UNICODE_CASES = {
    "en dash in file": ("lr = 1e\u20134\n", "lr = 1e-4", "lr = 2e-5", "lr = 2e-5\n"),
    "em dash in old_str": ("# a - b\n", "# a \u2014 b", "# a to b", "# a to b\n"),
    "minus sign in file": ("x = \u22121\n", "x = -1", "x = 1", "x = 1\n"),
    "nbsp in file": ("model\u00a0=\u00a0load()\n", "model = load()", "m = load()", "m = load()\n"),
    "narrow and em spaces": ("a\u202f=\u20031\n", "a = 1", "a = 2", "a = 2\n"),
    "zero-width space in file": (
        "batch\u200b_size = 8\n",
        "batch_size = 8",
        "batch_size = 4",
        "batch_size = 4\n",
    ),
    "zero-width joiner in old_str": ("epochs = 3\n", "epo\u200dchs = 3", "epochs = 1", "epochs = 1\n"),
    "curly double quotes": ('name = "trl"\n', "name = \u201ctrl\u201d", 'name = "peft"', 'name = "peft"\n'),
    "bom in old_str": ("import os\nimport sys\n", "\ufeffimport os\nimport sys", "import re", "import re\n"),
    "bom inside the matched text": ("a = 1\n\ufeffb = 2\n", "a = 1\nb = 2", "c = 3", "c = 3\n"),
    "several look-alikes on lines": (
        "def f():\n    return \u2018a\u2019\u00a0\u2013 1  \n",
        "def f():\n    return 'a' - 1\n",
        "def f():\n    return 0\n",
        "def f():\n    return 0\n",
    ),
}


@pytest.mark.parametrize(("text", "old", "new", "expected"), UNICODE_CASES.values(), ids=UNICODE_CASES.keys())
async def test_edit_matches_unicode_look_alikes(read_then_edit, text, old, new, expected):
    result, content = await read_then_edit(text, old_str=old, new_str=new)
    assert content == expected
    assert "(1 replacement)" in result and "fuzzy match" in result


async def test_edit_keeps_the_other_unicode_text_of_the_file(read_then_edit):
    text = (
        "title = \u201cCaf\u00e9 \u2014 menu\u201d\nlr = 1e\u20134\nnote = \u2018keep\u00a0me\u2019\u200b\n"
    )
    _, content = await read_then_edit(text, old_str="lr = 1e-4", new_str="lr = 3e-4")
    assert (
        content
        == "title = \u201cCaf\u00e9 \u2014 menu\u201d\nlr = 3e-4\nnote = \u2018keep\u00a0me\u2019\u200b\n"
    )


async def test_edit_look_alikes_still_count_ambiguity(read_then_edit):
    with pytest.raises(ToolError, match="matches 2 places"):
        await read_then_edit("a \u2013 b\na \u2014 b\n", old_str="a - b", new_str="c")


def test_exact_match_wins_over_the_unicode_pass():
    spans, _, note = locate("a - b\na \u2013 b\n", "a - b", "c")
    assert spans == [(0, 5)] and note == ""


def test_unicode_pass_spans_cover_the_invisible_characters():
    text = "x\u200b\u200b = 1\ny = 2\n"
    spans, _, _ = locate(text, "x = 1\n", "x = 9\n")
    assert spans == [(0, len("x\u200b\u200b = 1\n"))]
