"""Rendering user profiles, with a memo cache.

The leaky version memoises on the *request id*, which is new for every request, so the memo dict
only ever grows. The clean version memoises on the user id with a bounded LRU cache.
"""

from __future__ import annotations

import functools

_USERS = {uid: {"id": uid, "name": f"user-{uid}", "bio": "lorem ipsum " * 40} for uid in range(100)}

#: request id -> rendered page. Nothing ever removes an entry: this is the leak.
_memo: dict[str, str] = {}


def _render(user_id: int) -> str:
    user = _USERS[user_id % len(_USERS)]
    return f"<h1>{user['name']}</h1><p>{user['bio']}</p>"


def render_profile_leaky(request_id: str, user_id: int) -> str:
    """Memoised on the request id: every request adds an entry that is never evicted."""
    page = _memo.get(request_id)
    if page is None:
        page = _memo[request_id] = _render(user_id) + f"<!-- {request_id} -->"
    return page


@functools.lru_cache(maxsize=32)
def _render_cached(user_id: int) -> str:
    return _render(user_id)


def render_profile(request_id: str, user_id: int) -> str:
    """Memoised on what the page depends on, in a bounded cache (at most 32 entries)."""
    return _render_cached(user_id) + f"<!-- {request_id} -->"


def cache_size() -> int:
    return len(_memo)
