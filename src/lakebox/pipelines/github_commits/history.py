"""Commit histories for the stand-in GitHub API: one real, the others synthetic.

The real one is commitlint's whole history (bundled in `data/`, MIT, see its NOTICE),
served as recorded. The synthetic ones are deterministic by seed and built with numpy and
Arrow (no per-commit Python): teams with a few prolific and many occasional authors (and a
dependency bot), working hours in each author's time zone with quiet weekends, merges of
pull requests, and conventional-commit messages whose wording depends on their type, so a
classifier that only sees what follows the prefix has real but imperfect signal (about one
subject in seven borrows another type's wording; about one commit in ten has no prefix).

A history is a table of flat columns, newest commit first; `commit_objects` renders a slice
of it as GitHub's list-commits objects.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Any, Final

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from lakebox.errors import ConfigError

REAL_REPO: Final = "conventional-changelog/commitlint"
REAL_HISTORY_FILE: Final = "real_history_commitlint_commits.jsonl.gz"
API_BASE: Final = "https://api.github.com"
WEB_BASE: Final = "https://github.com"
HISTORY_END: Final = datetime(2026, 6, 30, 18, tzinfo=UTC)
HISTORY_DAYS: Final = 730

TYPES: Final = ("feat", "fix", "docs", "chore", "refactor", "test", "ci", "build", "perf", "style", "revert")
TYPE_SHARES: Final = (0.26, 0.27, 0.08, 0.13, 0.08, 0.07, 0.03, 0.03, 0.02, 0.02, 0.01)
NO_PREFIX_SHARE: Final = 0.10
MERGE_SHARE: Final = 0.08
SCOPE_SHARE: Final = 0.4
BREAKING_SHARE: Final = 0.02
BORROWED_WORDING_SHARE: Final = 0.15
BODY_SHARE: Final = 0.4
VERIFIED_SHARE: Final = 0.3

_WORDING: Final[dict[str, tuple[str, ...]]] = {
    "feat": ("add", "support", "introduce", "allow configuring", "expose", "implement", "enable"),
    "fix": ("fix", "handle missing", "prevent crash in", "correct", "guard against empty", "resolve race in"),
    "docs": ("document", "update README for", "fix typo in docs of", "explain", "add examples for"),
    "chore": ("bump", "update dependencies of", "release", "clean up", "tidy"),
    "refactor": ("extract", "simplify", "rename", "move", "split", "inline"),
    "test": ("add tests for", "cover", "fix flaky test of", "add fixtures for", "test"),
    "ci": ("run lint on", "cache deps of", "add workflow for", "pin runner of"),
    "build": ("upgrade toolchain of", "configure bundling of", "package", "drop legacy build of"),
    "perf": ("speed up", "avoid allocations in", "cache results of", "batch queries of"),
    "style": ("format", "apply lint fixes to", "reorder imports in"),
    "revert": ("revert change to", "back out", "undo"),
}
_THINGS: Final = (
    "the login flow", "user settings", "the search index", "webhook retries", "the export job",
    "pagination", "the config loader", "error messages", "the CLI parser", "session tokens", "the cache layer",
    "date parsing", "the billing report", "rate limiting", "the upload handler", "audit logging",
    "the dashboard", "email templates", "the API client", "feature flags", "the scheduler", "i18n strings",
)
_SCOPES: Final = ("api", "ui", "db", "auth", "cli", "core", "deps", "parser", "config", "docs")
_BODIES: Final = (
    "The previous behaviour surprised users.", "Follow-up to the review comments.",
    "This keeps the old behaviour behind a flag.", "Measured on the staging data set.",
    "Needed for the next release.", "Reported by a customer.",
)
_NO_PREFIX: Final = ("Update README.md", "WIP", "small fixes", "address review comments", "Update ", "tweak ")
_TEAM_NAMES: Final = ("payments-api", "web-frontend", "data-pipeline", "infra", "mobile-app", "search",
                      "design-system", "auth-service", "docs-site", "ml-platform")
_OWNERS: Final = ("acme", "globex", "initech")
_FIRST: Final = ("Ada", "Linus", "Grace", "Ken", "Barbara", "Guido", "Margaret", "Dennis", "Frances", "Yukihiro",
                 "Radia", "Bjarne", "Hedy", "Tim", "Karen", "Anders", "Sophie", "Rasmus", "Lea", "Jose")
_LAST: Final = ("Lovelace", "Torvalds", "Hopper", "Thompson", "Liskov", "Rossum", "Hamilton", "Ritchie", "Allen",
                "Matsumoto", "Perlman", "Stroustrup", "Lamarr", "Berners", "Jones", "Hejlsberg", "Wilson", "Lerdorf")
_DOMAINS: Final = ("gmail.com", "users.noreply.github.com", "outlook.com", "fastmail.com")
_BOT: Final = ("dependabot[bot]", "49699333+dependabot[bot]@users.noreply.github.com", "dependabot[bot]")

# One random stream per field (np.random.default_rng([seed, repo, FIELD])).
_F_TIME, _F_AUTHOR, _F_TYPE, _F_WORDING, _F_THING, _F_SCOPE, _F_FLAGS, _F_BODY, _F_SHA, _F_MERGE = range(10)

HISTORY_SCHEMA: Final = pa.schema([
    ("sha", pa.string()), ("author_name", pa.string()), ("author_email", pa.string()),
    ("author_login", pa.string()), ("authored_at", pa.int64()), ("committer_name", pa.string()),
    ("committer_email", pa.string()), ("committer_login", pa.string()), ("committed_at", pa.int64()),
    ("message", pa.string()), ("parents", pa.list_(pa.string())), ("verified", pa.bool_()),
    ("comment_count", pa.int64()),
])


@dataclass(frozen=True)
class Repo:
    """One repository's history, newest first. `recorded` holds the real objects as served."""

    name: str
    commits: pa.Table
    recorded: tuple[bytes, ...] | None = None

    @property
    def committed_at(self) -> np.ndarray:
        return np.asarray(self.commits.column("committed_at").to_numpy())


def synthetic_repo_names(count: int, seed: int) -> list[str]:
    rng = np.random.default_rng([seed, 99])
    names = []
    for i in range(count):
        team = _TEAM_NAMES[i % len(_TEAM_NAMES)] + (f"-{i // len(_TEAM_NAMES) + 1}" if i >= len(_TEAM_NAMES) else "")
        names.append(f"{_OWNERS[int(rng.integers(len(_OWNERS)))]}/{team}")
    return names


def build_histories(repos: int, commits: int, seed: int, real_history: bool = True) -> dict[str, Repo]:
    """`repos` synthetic repositories sharing `commits` commits (unevenly), plus the real one."""
    if repos < 0 or commits < 0 or seed < 0:
        raise ConfigError(f"github stand-in: repos, commits and seed must be >= 0; got {repos}, {commits}, {seed}")
    if commits and not repos:
        raise ConfigError("github stand-in: --commits needs at least one synthetic repository (--repos >= 1)")
    out: dict[str, Repo] = {}
    if real_history:
        real = load_real_history()
        out[real.name] = real
    if repos:
        weights = np.random.default_rng([seed, 98]).dirichlet(np.full(repos, 2.0))
        sizes = np.floor(weights * commits).astype(np.int64)
        sizes[: commits - int(sizes.sum())] += 1
        for number, (name, size) in enumerate(zip(synthetic_repo_names(repos, seed), sizes, strict=True)):
            out[name] = Repo(name, synthetic_history(name, int(size), seed, number))
    return out


def load_real_history() -> Repo:
    """commitlint's history as recorded: each line is one list-commits object, newest first."""
    with resources.files("lakebox.pipelines.github_commits").joinpath("data", REAL_HISTORY_FILE).open("rb") as fh:
        lines = tuple(line.rstrip(b"\n") for line in gzip.decompress(fh.read()).splitlines() if line.strip())
    objects = [orjson.loads(line) for line in lines]  # a fixed 3,466 commits, read once per server
    committed = [datetime.fromisoformat(o["commit"]["committer"]["date"]).timestamp() for o in objects]
    columns = {name: pa.nulls(len(lines), type=field.type) for name, field in zip(HISTORY_SCHEMA.names,
                                                                                   HISTORY_SCHEMA, strict=True)}
    columns["sha"] = pa.array([o["sha"] for o in objects], pa.string())
    columns["committed_at"] = pa.array(np.array(committed, dtype=np.int64))
    return Repo(REAL_REPO, pa.table(columns, schema=HISTORY_SCHEMA), lines)


@dataclass(frozen=True)
class _Team:
    """A repository's authors; the last one is the dependency bot."""

    names: list[str]
    emails: list[str]
    handles: list[str]  # for branch names
    logins: list[str | None]  # None: GitHub maps the email to no user
    tz_hours: np.ndarray
    activity: np.ndarray  # share of the commits


def _team(seed: int, number: int) -> _Team:
    rng = np.random.default_rng([seed, number, _F_AUTHOR])
    size = int(rng.integers(4, 16))
    first, last = rng.choice(len(_FIRST), size), rng.choice(len(_LAST), size)
    handles = [f"{_FIRST[f].lower()}{_LAST[g].lower()[:3]}{number}" for f, g in zip(first, last, strict=True)]
    emails = []
    for i, (handle, domain) in enumerate(zip(handles, rng.choice(len(_DOMAINS), size), strict=True)):
        noreply = _DOMAINS[domain] == "users.noreply.github.com"
        emails.append(f"{1000 + i}+{handle}@users.noreply.github.com" if noreply else f"{handle}@{_DOMAINS[domain]}")
    mapped = rng.random(size) < 0.8
    activity = 1.0 / np.arange(1, size + 1) ** 1.1  # a few prolific authors, many occasional ones
    return _Team(
        names=[f"{_FIRST[f]} {_LAST[g]}" for f, g in zip(first, last, strict=True)] + [_BOT[0]],
        emails=[*emails, _BOT[1]],
        handles=[*handles, _BOT[2]],
        logins=[h if ok else None for h, ok in zip(handles, mapped, strict=True)] + [_BOT[2]],
        tz_hours=rng.choice(np.array([-8, -5, 0, 1, 2, 5, 9]), size + 1),
        activity=np.append(activity / activity.sum() * 0.93, 0.07),
    )


def _commit_times(rng: np.random.Generator, tz_hours: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """(committed, authored) epoch seconds: more recent days more likely, weekends quiet,
    working hours in the author's zone (some night owls), some commits authored earlier."""
    end_day = int(HISTORY_END.timestamp()) // 86400
    day = end_day - np.floor(rng.power(0.8, count) * HISTORY_DAYS).astype(np.int64)
    weekday = (day + 3) % 7  # 1970-01-01 was a Thursday; 0 = Monday
    day = np.where((weekday >= 5) & (rng.random(count) < 0.7), day - (weekday - 4), day)
    local_hour = np.clip(np.rint(rng.normal(14.0, 2.8, count)), 0, 23).astype(np.int64)
    local_hour = np.where(rng.random(count) < 0.08, (local_hour + 9) % 24, local_hour)
    committed = day * 86400 + (local_hour - tz_hours) * 3600 + rng.integers(0, 3600, count)
    authored = committed - np.where(rng.random(count) < 0.3, rng.integers(60, 3 * 86400, count), 0)
    return committed, authored


def _text(values: Any, index: np.ndarray) -> pa.Array:
    return pa.array(values).take(pa.array(index))


def _messages(seed: int, number: int, team: _Team, author: np.ndarray) -> tuple[pa.Array, np.ndarray]:
    """(message, is_merge) of each commit: a merge, a subject without prefix, or
    `type(scope)!: wording thing`, with a body sometimes."""
    def rng(field: int) -> np.random.Generator:
        return np.random.default_rng([seed, number, field])

    count = len(author)
    is_bot = author == len(team.names) - 1
    flags = rng(_F_FLAGS).random((5, count))
    is_merge = (flags[0] < MERGE_SHARE) & ~is_bot
    kind = np.where(is_bot, TYPES.index("chore"),
                    rng(_F_TYPE).choice(len(TYPES), count, p=np.array(TYPE_SHARES) / sum(TYPE_SHARES)))
    prefixed = ~is_merge & ((flags[1] >= NO_PREFIX_SHARE) | is_bot)
    breaking = (flags[4] < BREAKING_SHARE) & prefixed & np.isin(kind, [TYPES.index("feat"), TYPES.index("refactor")])

    # The wording follows the type, except when it borrows another type's.
    wording_type = np.where(flags[2] < BORROWED_WORDING_SHARE, rng(_F_WORDING).choice(len(TYPES), count), kind)
    wording_pool = [w for t in TYPES for w in _WORDING[t]]
    first_word = np.cumsum([0] + [len(_WORDING[t]) for t in TYPES])
    sizes = np.diff(first_word)
    wording = first_word[wording_type] + (rng(_F_WORDING + 100).random(count) * sizes[wording_type]).astype(np.int64)
    thing = rng(_F_THING).choice(len(_THINGS), count)

    scope = pc.binary_join_element_wise("(", _text(_SCOPES, rng(_F_SCOPE).choice(len(_SCOPES), count)), ")", "")
    prefix = pc.binary_join_element_wise(_text(TYPES, kind), pc.if_else(pa.array(flags[3] < SCOPE_SHARE), scope, ""),
                                         pc.if_else(pa.array(breaking), "!", ""), ": ", "")
    bot_subject = pc.binary_join_element_wise(
        "bump ", _text(("lodash", "pytest", "react", "numpy", "actions/checkout"), thing % 5),
        " from 1.", pa.array(thing).cast(pa.string()), ".0 to 1.", pa.array(thing + 1).cast(pa.string()), ".0", "")
    subject = pc.if_else(pa.array(is_bot), bot_subject,
                         pc.binary_join_element_wise(_text(wording_pool, wording), " ", _text(_THINGS, thing), ""))
    template = thing % len(_NO_PREFIX)
    needs_thing = np.array([t.endswith(" ") for t in _NO_PREFIX])[template]
    no_prefix = pc.binary_join_element_wise(_text(_NO_PREFIX, template),
                                            pc.if_else(pa.array(needs_thing), _text(_THINGS, thing), ""), "")
    pr = rng(_F_MERGE).integers(1, 4000, count)
    merge_subject = pc.binary_join_element_wise(
        "Merge pull request #", pa.array(pr).cast(pa.string()), " from ", _text(team.handles, author), "/",
        _text(("feature", "fix", "topic", "wip"), pr % 4), "-", pa.array(pr % 97).cast(pa.string()), "")
    headline = pc.if_else(pa.array(is_merge), merge_subject,
                          pc.if_else(pa.array(prefixed), pc.binary_join_element_wise(prefix, subject, ""), no_prefix))

    footer = pc.if_else(pa.array(breaking), "\n\nBREAKING CHANGE: the old form is gone.", "")
    body = pc.binary_join_element_wise(_text(_BODIES, rng(_F_BODY).integers(0, len(_BODIES), count)), footer, "")
    has_body = ((rng(_F_BODY + 100).random(count) < BODY_SHARE) | breaking) & ~is_merge
    return pc.if_else(pa.array(has_body), pc.binary_join_element_wise(headline, "\n\n", body, ""), headline), is_merge


def synthetic_history(repo: str, count: int, seed: int, number: int) -> pa.Table:
    """`count` commits of one synthetic repository, newest first."""
    def rng(field: int) -> np.random.Generator:
        return np.random.default_rng([seed, number, field])

    team = _team(seed, number)
    author = rng(_F_AUTHOR + 500).choice(len(team.names), count, p=team.activity)
    committed, authored = _commit_times(rng(_F_TIME), team.tz_hours[author], count)
    message, is_merge = _messages(seed, number, team, author)

    # Newest first; parents: the next older commit, and for a merge a branch tip further back.
    order = np.argsort(-committed, kind="stable")
    shas = _hex_shas(hashlib.sha256(f"{seed}/{repo}".encode()).digest(), count)
    position = np.arange(count)
    parents = _parents(shas, np.where(position + 1 < count, position + 1, -1),
                       np.minimum(count - 1, position + 2 + rng(_F_MERGE + 100).integers(0, 20, count)),
                       is_merge[order])
    # Commits made on GitHub's web UI: committed (and signed) by GitHub.
    web = pa.array(rng(_F_FLAGS + 100).random(count) < VERIFIED_SHARE)
    by = author[order]
    return pa.table({
        "sha": shas,
        "author_name": _text(team.names, by),
        "author_email": _text(team.emails, by),
        "author_login": _text(team.logins, by),
        "authored_at": pa.array(authored[order]),
        "committer_name": pc.if_else(web, "GitHub", _text(team.names, by)),
        "committer_email": pc.if_else(web, "noreply@github.com", _text(team.emails, by)),
        "committer_login": pc.if_else(web, pa.scalar("web-flow"), _text(team.logins, by)),
        "committed_at": pa.array(committed[order]),
        "message": message.take(pa.array(order)),
        "parents": parents,
        "verified": web,
        "comment_count": pa.array(np.where(rng(_F_FLAGS + 200).random(count) < 0.05, 1, 0)),
    }, schema=HISTORY_SCHEMA)


def _hex_shas(salt: bytes, count: int) -> pa.Array:
    """`count` distinct-looking 40-hex-digit shas, deterministic by salt (not git's hashing)."""
    raw = np.frombuffer(np.random.default_rng(list(salt)).bytes(20 * count), dtype=np.uint8).reshape(count, 20)
    digits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    out = np.empty((count, 40), dtype=np.uint8)
    out[:, 0::2], out[:, 1::2] = digits[raw >> 4], digits[raw & 15]
    offsets = np.arange(0, (count + 1) * 40, 40, dtype=np.int32)
    return pa.Array.from_buffers(pa.string(), count, [None, pa.py_buffer(offsets), pa.py_buffer(out.tobytes())])


def _parents(shas: pa.Array, older: np.ndarray, branch: np.ndarray, merge: np.ndarray) -> pa.Array:
    """list<string>: the next older commit (none for the root), and a branch tip for a merge."""
    lengths = (older >= 0).astype(np.int32) + (merge & (older >= 0) & (branch > older)).astype(np.int32)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    index = np.empty(int(offsets[-1]), dtype=np.int64)
    index[offsets[:-1][lengths > 0]] = older[lengths > 0]
    index[offsets[:-1][lengths > 1] + 1] = branch[lengths > 1]
    return pa.ListArray.from_arrays(pa.array(offsets), shas.take(pa.array(index)))


def commit_objects(repo: Repo, rows: np.ndarray) -> list[bytes]:
    """The list-commits JSON object of each of `rows` (positions in the history)."""
    if repo.recorded is not None:
        return [repo.recorded[i] for i in rows]
    return [orjson.dumps(_commit_object(repo.name, row)) for row in repo.commits.take(pa.array(rows)).to_pylist()]


def _commit_object(repo: str, c: dict[str, Any]) -> dict[str, Any]:
    """GitHub's list-commits object, with the field set of a 2026 response."""
    sha = c["sha"]
    return {
        "sha": sha,
        "node_id": "C_" + sha[:30],
        "commit": {
            "author": {"name": c["author_name"], "email": c["author_email"], "date": _iso(c["authored_at"])},
            "committer": {"name": c["committer_name"], "email": c["committer_email"],
                          "date": _iso(c["committed_at"])},
            "message": c["message"],
            "tree": {"sha": sha[::-1], "url": f"{API_BASE}/repos/{repo}/git/trees/{sha[::-1]}"},
            "url": f"{API_BASE}/repos/{repo}/git/commits/{sha}",
            "comment_count": c["comment_count"],
            "verification": {"verified": c["verified"], "reason": "valid" if c["verified"] else "unsigned",
                             "signature": None, "payload": None, "verified_at": None},
        },
        "url": f"{API_BASE}/repos/{repo}/commits/{sha}",
        "html_url": f"{WEB_BASE}/{repo}/commit/{sha}",
        "comments_url": f"{API_BASE}/repos/{repo}/commits/{sha}/comments",
        "author": _user(c["author_login"]),
        "committer": _user(c["committer_login"]),
        "parents": [{"sha": p, "url": f"{API_BASE}/repos/{repo}/commits/{p}",
                     "html_url": f"{WEB_BASE}/{repo}/commit/{p}"} for p in c["parents"]],
    }


@functools.lru_cache(maxsize=4096)
def _user(login: str | None) -> orjson.Fragment | None:
    """A user object as GitHub embeds it, serialized once per login."""
    if login is None:
        return None
    user_id = int.from_bytes(hashlib.sha256(login.encode()).digest()[:3], "big")
    url = f"{API_BASE}/users/{login}"
    return orjson.Fragment(orjson.dumps({
        "login": login, "id": user_id, "node_id": f"U_{user_id}", "avatar_url": f"https://avatars.githubusercontent.com/u/{user_id}?v=4",
        "gravatar_id": "", "url": url, "html_url": f"{WEB_BASE}/{login}", "followers_url": f"{url}/followers",
        "following_url": f"{url}/following{{/other_user}}", "gists_url": f"{url}/gists{{/gist_id}}",
        "starred_url": f"{url}/starred{{/owner}}{{/repo}}", "subscriptions_url": f"{url}/subscriptions",
        "organizations_url": f"{url}/orgs", "repos_url": f"{url}/repos", "events_url": f"{url}/events{{/privacy}}",
        "received_events_url": f"{url}/received_events", "type": "Bot" if login.endswith("[bot]") else "User",
        "user_view_type": "public", "site_admin": False,
    }))


def _iso(epoch_s: int) -> str:
    return datetime.fromtimestamp(epoch_s, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
