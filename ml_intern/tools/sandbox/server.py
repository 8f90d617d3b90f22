"""The sandbox server: runs in the Space (and, in the tests, on this machine). Standard library only, one file
(it is uploaded as is). STUB: helper A owns it. The protocol (client.py speaks it):

Start: `python server.py [--host H] [--port P] [--root DIR]`; env SANDBOX_API_TOKEN (required for every call
but health), SANDBOX_ROOT (default /app), PORT (default 7860), SANDBOX_SPILL_DIR (/tmp/ml-intern-spill).

Auth: header `X-Sandbox-Authorization: Bearer <token>`, compared in constant time; missing or wrong → 401
{"error"}; no token configured → 503 {"error"}. `GET /api/health` is open: 200 {"ok": true, "version": 1}.

Every other call is `POST /api/<op>` with a JSON object body (≤ 16 MB, else 413); bad JSON / arguments → 400
{"error": "<one line>"}; an operation's own failure (file not found, old_str not unique) → 400 {"error"}.
Paths: relative ones resolve against the root; `/app/...` maps onto the root when the root is elsewhere.

- bash   {"command", "timeout": s (≤ 1200), "work_dir": ""} → {"output", "exit_code" (None when killed),
          "timed_out", "truncated", "spill" (path in the sandbox of the whole output, or None)}. Own process
          group; at the timeout the group gets SIGTERM, then SIGKILL 2 s later. stdout+stderr, ≤ 25,000 chars
          (head and tail; the whole output spilled).
- read   {"path", "offset": 1, "limit": 2000} → {"content" (numbered lines "%6d\t%s", long lines cut at 2,000
          chars), "total_lines"}
- write  {"path", "content"} → {"message"} (parents created)
- edit   {"path", "old_str", "new_str", "replace_all": false,
          "mode": "replace"|"append_after"|"prepend_before"} → {"message", "snippet"}
- exists {"path"} → {"exists", "is_dir", "size"}
- kill   {} → {"killed": n} (every process group the server started and still runs)
"""
