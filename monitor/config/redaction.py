"""What may be written: URLs and texts with their secrets masked, before any log line, error or stored field.

`redact_url(url)` masks one URL: its userinfo (`user:password@` becomes `***@`, scheme and host stay) and
the values of its query and fragment parameters (`?token=abc&x=1` becomes `?token=***&x=***`).
`mask_text(text)` does that to every URL inside a free text (an error message, a redirect's Location
echoed in an error, a traceback, a rendered log line) and masks Standard Webhooks secrets (`whsec_...`).
Neither ever raises: a URL that does not parse is masked by the same string rules.
`secret_name(name)` says whether a field's name marks its whole value as a secret (`MASK` in its place).
"""

from __future__ import annotations

import functools
import re

MASK = "***"
_SECRET_NAMES = ("secret", "password", "token", "authorization")
# An absolute URL up to white space or a quote; or a query string (of a relative URL) that has a `name=`.
_URL = re.compile(r"[a-z][a-z0-9+.-]*://[^\s\"'<>]*|\?[^\s\"'<>=&#?]+=[^\s\"'<>]*", re.IGNORECASE)
_SECRET_VALUE = re.compile(r"whsec_[A-Za-z0-9+/=]+")


def redact_url(url: str) -> str:
    """The URL with its userinfo and the values of its query and fragment parameters replaced by ***."""
    rest, hash_, fragment = url.partition("#")
    rest, question, query = rest.partition("?")
    scheme, separator, rest = rest.partition("://") if "://" in rest else ("", "", rest)
    authority, slash, path = rest.partition("/")
    if "://" in path:  # a URL inside the path (a redirector's): masked too
        path = mask_text(path)
    if "@" in authority:
        authority = MASK + "@" + authority.rpartition("@")[2]
    return (
        f"{scheme}{separator}{authority}{slash}{path}"
        f"{question}{_masked_parameters(query)}{hash_}{_masked_parameters(fragment)}"
    )


def mask_text(text: str) -> str:
    """The text with every URL in it passed through `redact_url`, and `whsec_` secrets masked."""
    if "://" not in text and "?" not in text and "whsec_" not in text:  # the common case, without a regex
        return text
    return _SECRET_VALUE.sub("whsec_" + MASK, _URL.sub(lambda found: redact_url(found.group()), text))


@functools.lru_cache(maxsize=1024)
def secret_name(name: str) -> bool:
    """A field named like a secret (`secret`, `password`, `token`, `authorization`, in any case or part of a
    name): its value is written as `MASK`, whatever it holds."""
    lowered = name.lower()
    return any(word in lowered for word in _SECRET_NAMES)


def _masked_parameters(query: str) -> str:
    """`a=1&b=2` as `a=***&b=***`; a part without `=` (it may be a token itself) as `***`."""
    if not query:
        return query
    parts = (part.partition("=") for part in query.split("&"))
    return "&".join(f"{name}={MASK}" if equals else (MASK if name else "") for name, equals, _ in parts)
