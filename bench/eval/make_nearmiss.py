"""Writes the near-miss evaluation set: bench/eval/nearmiss/projects/** (Claude Code transcripts)
and bench/eval/nearmiss.jsonl (questions in the format of queries.jsonl).

    python bench/eval/make_nearmiss.py      # rewrite both (deterministic)

16 problems from everyday coding work, each answered in one session and shadowed by a near miss in
another session of the same project: the same tool, error family or words, another answer (TS2339
against TS2307, a Redis TTL against a Redis eviction policy). Each problem has a question in other
words (`paraphrase`) and a verbatim string from its answer or error (`exact`); the relevant line is
the record holding the answer. Sessions also carry an unrelated exchange, as real ones do.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
HOME = HERE / "nearmiss"
QUERIES = HERE / "nearmiss.jsonl"
NS = uuid.UUID("5b7f3c1e-2a8d-4c6e-9f01-7d2e4b6a8c90")

# (project, branch, day): sessions; each exchange is (prompt, command or None, tool output or None, answer).
Exchange = tuple[str, str | None, str | None, str]
FILLER: list[Exchange] = [
    ("run the test suite", "pytest -q", "142 passed, 3 skipped in 21.4s", "All 142 tests pass (3 skipped, the GPU ones)."),
    (
        "commit this",
        "git commit -am 'wip'",
        "[main 4f2a9c1] wip\n 3 files changed, 41 insertions(+), 7 deletions(-)",
        "Committed as 4f2a9c1.",
    ),
    ("format the code", "ruff format .", "12 files reformatted, 88 files left unchanged", "Formatted 12 files with ruff."),
]

# Each problem: key, project, (answer exchange), (near-miss exchange), paraphrased question, exact string.
PROBLEMS: list[tuple[str, str, Exchange, Exchange, str, str]] = [
    (
        "pg-pool",
        "/home/ana/src/billing-api",
        (
            "the API starts failing under load with postgres errors",
            "tail -n 5 logs/api.log",
            "psycopg.OperationalError: FATAL: sorry, too many clients already",
            "Each gunicorn worker opens its own pool of 20 connections and 8 workers exceed Postgres' max_connections of 100. "
            "I put PgBouncer in transaction mode in front of Postgres and cut the per-worker pool to 5; the load test now holds 400 rps.",
        ),
        (
            "the API can't reach postgres after docker compose up",
            "docker compose logs api | tail -3",
            'psycopg.OperationalError: connection to server at "db" (172.18.0.2), port 5432 failed: Connection refused',
            "The api container starts before Postgres accepts connections. I added a healthcheck on the db service with pg_isready "
            "and `depends_on: condition: service_healthy`, so the API waits for the database.",
        ),
        "why did we run out of database connections when traffic went up and how was it fixed?",
        "sorry, too many clients already",
    ),
    (
        "redis-ttl",
        "/home/ana/src/billing-api",
        (
            "how long should login sessions live in redis?",
            None,
            None,
            "Sessions are stored in Redis with a TTL of 30 minutes, refreshed on every request (sliding expiry) with EXPIRE session:<id> 1800. "
            "Idle users are logged out after half an hour; that matches the security review.",
        ),
        (
            "redis is evicting keys we need",
            "redis-cli CONFIG GET maxmemory-policy",
            '1) "maxmemory-policy"\n2) "noeviction"',
            "With noeviction Redis refuses writes when maxmemory is reached. I set maxmemory-policy to allkeys-lru so the least recently "
            "used cache keys are evicted first, and raised maxmemory to 2gb.",
        ),
        "what expiry did we pick for user sessions stored in the cache?",
        "EXPIRE session:<id> 1800",
    ),
    (
        "tz-flaky",
        "/home/ana/src/shop-web",
        (
            "test_checkout_total fails on CI but passes locally",
            "pytest tests/test_checkout.py -q",
            "FAILED tests/test_checkout.py::test_checkout_total - AssertionError: assert Decimal('107.00') == Decimal('100.00')",
            "The discount applies only 'today' and CI runs in UTC while your machine is in UTC-5: after 19:00 local time the dates differ. "
            "I froze time with freezegun in the test and made the discount window use timezone-aware datetimes.",
        ),
        (
            "test_login_redirect is flaky",
            "pytest tests/test_auth.py -q --count 20",
            "FAILED tests/test_auth.py::test_login_redirect - TimeoutError: page.wait_for_url timed out",
            "The test clicks before the network mock for /api/session is registered, a race. I moved the route mock before page.goto "
            "and now 20 repeated runs pass.",
        ),
        "the checkout test that only broke in CI because of a time zone difference",
        "test_checkout_total",
    ),
    (
        "docker-cache",
        "/home/ana/src/shop-web",
        (
            "docker builds take 6 minutes every time",
            None,
            None,
            "Every build reinstalls dependencies because `COPY . .` comes before `pip install`, so any source change busts the layer cache. "
            "I copy requirements.txt first, install, then copy the source; a code-only rebuild now takes 25 seconds.",
        ),
        (
            "the docker image is 1.9GB",
            "docker images shop-web",
            "shop-web   latest   8d1f2e   1.91GB",
            "The image carries the whole build toolchain. I switched to a multi-stage build: wheels are built in a python:3.12 builder "
            "stage and copied into python:3.12-slim. The image is now 212MB.",
        ),
        "how did we make rebuilding the container faster when only code changed?",
        "COPY . .` comes before `pip install",
    ),
    (
        "unrelated-hist",
        "/home/ana/src/docs-site",
        (
            "pulling the template repo fails",
            "git pull template main",
            "fatal: refusing to merge unrelated histories",
            "The template repository has no common commit with ours. I merged it once with `git pull template main --allow-unrelated-histories` "
            "and resolved the two README conflicts.",
        ),
        (
            "merge conflict in package-lock.json again",
            "git merge feature/search",
            "CONFLICT (content): Merge conflict in package-lock.json",
            "Never resolve lock files by hand: I took main's package-lock.json, ran npm install to regenerate it with the branch's package.json, "
            "and committed the result.",
        ),
        "git would not combine the starter template with our repo because they share no history",
        "refusing to merge unrelated histories",
    ),
    (
        "ts2339",
        "/home/ana/src/docs-site",
        (
            "typescript complains about req.user",
            "npx tsc --noEmit",
            "src/middleware/auth.ts(14,9): error TS2339: Property 'user' does not exist on type 'Request'.",
            "Express's Request type has no user field. I added src/types/express.d.ts that augments Express.Request with `user?: SessionUser` "
            "through declaration merging and included it in tsconfig.",
        ),
        (
            "typescript can't find the @/utils import",
            "npx tsc --noEmit",
            "src/pages/index.tsx(3,23): error TS2307: Cannot find module '@/utils' or its corresponding type declarations.",
            'The alias exists for the bundler but not for tsc. I added `"paths": {"@/*": ["src/*"]}` with baseUrl to tsconfig.json.',
        ),
        "how did we teach the type checker that the request object carries the logged-in user?",
        "error TS2339: Property 'user' does not exist on type 'Request'",
    ),
    (
        "cors",
        "/home/ana/src/docs-site",
        (
            "the frontend gets blocked calling the API",
            None,
            "Access to fetch at 'https://api.example.test/v1/search' from origin 'https://docs.example.test' has been blocked by CORS policy: "
            "No 'Access-Control-Allow-Origin' header is present on the requested resource.",
            "The API never answers the preflight. I added an nginx location block that returns 204 for OPTIONS with "
            "Access-Control-Allow-Origin set to the docs origin and Access-Control-Allow-Headers: Authorization, Content-Type.",
        ),
        (
            "the browser blocks our inline script",
            None,
            "Refused to execute inline script because it violates the following Content Security Policy directive: \"script-src 'self'\".",
            "Our CSP forbids inline scripts. I moved the analytics snippet into static/analytics.js and kept script-src 'self' instead of adding unsafe-inline.",
        ),
        "the browser refused cross-origin requests from the docs site to the backend; what did we change?",
        "No 'Access-Control-Allow-Origin' header is present",
    ),
    (
        "ratelimit",
        "/home/ana/src/billing-api",
        (
            "how should we rate limit the public API?",
            None,
            None,
            "Decision: a token bucket per API key, 100 requests per minute with bursts up to 20, kept in Redis with a Lua script so "
            "all API instances share it. Over the limit we answer 429 with a Retry-After header.",
        ),
        (
            "stripe keeps returning 429",
            "grep -c 'status=429' logs/stripe.log",
            "37",
            "Stripe rate limits us during the nightly invoice run. I wrapped the Stripe calls in tenacity retries with exponential backoff "
            "(0.5 s doubling, at most 5 tries, with jitter) and spread the run over 20 minutes.",
        ),
        "what throttling scheme did we settle on for callers of our public endpoints?",
        "token bucket per API key",
    ),
    (
        "alembic-rev",
        "/home/ana/src/billing-api",
        (
            "alembic upgrade fails on staging",
            "alembic upgrade head",
            "alembic.util.exc.CommandError: Can't locate revision identified by 'a1b2c3d4e5f6'",
            "Staging's alembic_version points at a migration that was squashed away. I checked the schema matches, then ran "
            "`alembic stamp 9e8d7c6b5a4f` to point it at the squashed revision; upgrade head works again.",
        ),
        (
            "alembic autogenerate dropped and re-added a column",
            "alembic revision --autogenerate -m 'rename'",
            None,
            "Autogenerate cannot see renames: it emitted drop_column and add_column for customer_ref, which would lose data. "
            "I rewrote the migration with op.alter_column(new_column_name=...).",
        ),
        "the migration tool said it could not find a revision on staging; how did we recover?",
        "Can't locate revision identified by 'a1b2c3d4e5f6'",
    ),
    (
        "listeners",
        "/home/ana/src/ingest-worker",
        (
            "the worker's memory grows until it dies",
            "node --trace-warnings dist/worker.js",
            "(node:4121) MaxListenersExceededWarning: Possible EventEmitter memory leak detected. 11 message listeners added to [Socket].",
            "Every job adds a 'message' listener to the shared socket and never removes it. I switched to socket.once and remove the "
            "listener in finally; heap stays flat at 180MB over 10k jobs.",
        ),
        (
            "the worker uses 3GB parsing the export",
            None,
            None,
            "JSON.parse on the whole 800MB export holds it all in memory. I switched to stream-json to parse records one at a time; "
            "peak memory fell to 240MB.",
        ),
        "memory kept climbing in the background job runner because of event handlers; what was the leak?",
        "MaxListenersExceededWarning",
    ),
    (
        "crashloop",
        "/home/ana/src/ingest-worker",
        (
            "the new deployment keeps restarting",
            "kubectl logs deploy/ingest-worker --previous | tail -2",
            "KeyError: 'DATABASE_URL'\nCrashLoopBackOff",
            "The pod crashes at start because DATABASE_URL is missing: the secret was created in the default namespace, not in ingest. "
            "I recreated ingest-db secret in the ingest namespace and referenced it with envFrom.",
        ),
        (
            "pods get OOMKilled during the nightly import",
            "kubectl describe pod ingest-worker-7c9f | grep -A2 'Last State'",
            "Last State: Terminated\n  Reason: OOMKilled",
            "The import peaks at 900Mi and the limit is 512Mi. I raised the memory limit to 1Gi and the request to 768Mi.",
        ),
        "why did the pods keep rebooting right after the rollout?",
        "KeyError: 'DATABASE_URL'",
    ),
    (
        "loop-closed",
        "/home/ana/src/ingest-worker",
        (
            "pytest errors after the async tests",
            "pytest tests/test_fetch.py -q",
            "RuntimeError: Event loop is closed",
            "The httpx AsyncClient fixture is session-scoped but pytest-asyncio gives each test its own loop, so the client outlives its loop. "
            'I set asyncio_default_fixture_loop_scope = "session" and loop_scope="session" on the async tests.',
        ),
        (
            "fetch tests time out against the slow endpoint",
            "pytest tests/test_fetch.py -q -k slow",
            "httpx.ReadTimeout",
            "The default httpx timeout is 5 s; the export endpoint takes 12 s. I set httpx.Timeout(30.0, connect=5.0) on the client.",
        ),
        "async tests failed at teardown with a closed loop; what did we change in the test setup?",
        "RuntimeError: Event loop is closed",
    ),
    (
        "structlog",
        "/home/ana/src/shop-web",
        (
            "our logs are hard to search in Loki",
            None,
            None,
            "Decision: switch to structlog and emit one JSON object per line with timestamp, level, event and request_id bound per request, "
            "so Loki can filter on fields instead of regexes.",
        ),
        (
            "the log files fill the disk",
            "du -sh /var/log/shop-web",
            "46G\t/var/log/shop-web",
            "Nothing rotates the logs. I added /etc/logrotate.d/shop-web: daily, rotate 14, compress, copytruncate.",
        ),
        "what did we decide about the format of application logs so they could be queried by field?",
        "switch to structlog",
    ),
    (
        "csv-bom",
        "/home/ana/src/shop-web",
        (
            "customers say the CSV export shows garbage characters in Excel",
            None,
            None,
            "Excel reads CSV as Windows-1252 unless the file starts with a byte order mark. The export now writes utf-8-sig, "
            "so names like Zoë and Łódź open correctly.",
        ),
        (
            "the CSV export times out for big stores",
            None,
            None,
            "Exports of more than 50k orders take longer than the 30 s request timeout. The export now runs as a Celery job and emails a "
            "download link when it is ready.",
        ),
        "accented names looked broken when the spreadsheet program opened our export; what was the fix?",
        "writes utf-8-sig",
    ),
    (
        "jwt-expiry",
        "/home/ana/src/billing-api",
        (
            "what lifetime should access tokens have?",
            None,
            None,
            "Access tokens (JWT) expire after 15 minutes; refresh tokens last 7 days, are rotated on every use and stored hashed, "
            "so a stolen refresh token works once at most.",
        ),
        (
            "the OAuth callback loses the session",
            None,
            None,
            "The session cookie was SameSite=Strict, so the browser drops it on the redirect back from the identity provider. "
            "I set SameSite=Lax for the session cookie; the state check now passes.",
        ),
        "how long do the bearer tokens stay valid before the client has to refresh?",
        "expire after 15 minutes",
    ),
    (
        "sqlite-locked",
        "/home/ana/src/ingest-worker",
        (
            "the importer fails with a locked database",
            "python -m ingest.run --workers 4",
            "sqlite3.OperationalError: database is locked",
            "Four writers contend for the file and the default busy timeout is 0. I turned on WAL mode (PRAGMA journal_mode=WAL) and set "
            "timeout=30 on connect; writes now queue instead of failing.",
        ),
        (
            "the sqlite database file keeps growing after deletes",
            "ls -lh data/ingest.db",
            "-rw-r--r-- 1 ana ana 4.2G ingest.db",
            "Deleted pages are kept for reuse, not returned. I enabled PRAGMA auto_vacuum=INCREMENTAL and run VACUUM weekly; the file is 600M now.",
        ),
        "concurrent import processes could not write to the local database; how did we let them wait for each other?",
        "sqlite3.OperationalError: database is locked",
    ),
]


def _write_session(
    folder: Path, project: str, key: str, start: datetime, exchanges: list[Exchange]
) -> tuple[str, dict[int, int]]:
    """One transcript; returns its file name and, per exchange, the line of its answer record."""
    session_id = str(uuid.uuid5(NS, key))
    lines: list[str] = []
    answers: dict[int, int] = {}
    parent: str | None = None
    clock = start

    def add(kind: str, message: dict[str, object]) -> None:
        nonlocal parent, clock
        record_id = str(uuid.uuid5(NS, f"{key}/{len(lines)}"))
        clock += timedelta(seconds=40)
        lines.append(
            json.dumps(
                {
                    "parentUuid": parent,
                    "isSidechain": False,
                    "userType": "external",
                    "cwd": project,
                    "sessionId": session_id,
                    "version": "2.1.39",
                    "gitBranch": "main",
                    "type": kind,
                    "uuid": record_id,
                    "timestamp": clock.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                    "message": message,
                }
            )
        )
        parent = record_id

    for n, (prompt, command, output, answer) in enumerate(exchanges):
        add("user", {"role": "user", "content": prompt})
        if command is not None or output is not None:
            tool_id = f"toolu_{uuid.uuid5(NS, f'{key}/{n}/tool').hex[:24]}"
            add(
                "assistant",
                {
                    "id": f"msg_{tool_id}",
                    "type": "message",
                    "role": "assistant",
                    "model": "claude-sonnet-4-5",
                    "content": [
                        {"type": "tool_use", "id": tool_id, "name": "Bash", "input": {"command": command or "cat error.txt"}}
                    ],
                },
            )
            add(
                "user",
                {
                    "role": "user",
                    "content": [{"type": "tool_result", "tool_use_id": tool_id, "content": output or "(no output)"}],
                },
            )
        add(
            "assistant",
            {
                "id": f"msg_{uuid.uuid5(NS, f'{key}/{n}/a').hex[:24]}",
                "type": "message",
                "role": "assistant",
                "model": "claude-sonnet-4-5",
                "content": [{"type": "text", "text": answer}],
            },
        )
        answers[n] = len(lines)
    (folder / f"{session_id}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return f"{folder.name}/{session_id}.jsonl", answers


def main() -> None:
    projects = HOME / "projects"
    queries = []
    start = datetime(2026, 9, 1, 9, 0)
    for i, (key, project, answer, near_miss, paraphrase, exact) in enumerate(PROBLEMS):
        folder = projects / re.sub(r"[^A-Za-z0-9]", "-", project)
        folder.mkdir(parents=True, exist_ok=True)
        filler = FILLER[i % len(FILLER)]
        # The answer and its near miss in different sessions, days apart; each with ordinary work around it.
        answer_file, answer_lines = _write_session(
            folder, project, f"{key}/answer", start + timedelta(days=2 * i), [filler, answer]
        )
        _write_session(
            folder, project, f"{key}/near", start + timedelta(days=2 * i + 17), [near_miss, FILLER[(i + 1) % len(FILLER)]]
        )
        where = answer_lines[1]
        evidence_line = exact if exact in answer[3] else None
        for style, query in (("paraphrase", paraphrase), ("exact", exact)):
            target = {"file": answer_file, "line": where, "evidence": answer[3][:40]}
            if style == "exact" and evidence_line is None:  # the exact string is in the tool output or the prompt
                line = where - 1 if answer[2] and exact in answer[2] else where - (3 if answer[1] or answer[2] else 1)
                target = {"file": answer_file, "line": line, "evidence": exact}
            queries.append({"id": f"q{len(queries) + 1:02d}", "query": query, "style": style, "relevant": [target]})
    QUERIES.write_text("".join(json.dumps(q) + "\n" for q in queries), encoding="utf-8")


if __name__ == "__main__":
    main()
