"""Stories (issue 18): near-duplicate and same-event articles within a time window share a story id.

    signature(text) -> bytes        an article's MinHash over its salient words (NUM_PERM uint32 values)
    StoryIndex.assign(...) -> StoryRef   the story a newly claimed article joins, or a new one

An article's features are its salient words: the first MAX_WORDS words of its folded text
(`monitor.matching.analysis.fold`, of at most MAX_CHARS characters), without the stop words of nl, en, de
and fr, without words under MIN_LETTERS letters or over MAX_LETTERS; numbers of MIN_DIGITS digits or more
are kept. So a 10 MB article costs what a 40 kB one does. Their MinHash (datasketch, NUM_PERM
permutations) is the article's signature, stored as bytes (512 of them per article).

`StoryIndex` holds the signatures of the articles of the last `window` (by arrival) in a datasketch
`MinHashLSH` with BANDS bands of ROWS rows (over the first 64 of the NUM_PERM values): an article with
Jaccard similarity s to an indexed one is a candidate with probability 1 - (1 - s^ROWS)^BANDS (0.73 at
0.2, 0.95 at 0.3, 0.996 at 0.4). A candidate joins when its estimated Jaccard similarity (the fraction of
equal hash values, as `MinHash.jaccard` computes it) is at least `threshold` (THRESHOLD by default:
same-event articles written by different outlets measure 0.25 to 0.3, two earthquakes of one week 0.05
to 0.2, two treason trials 0.13 in tests/test_stories.py; the estimate's standard deviation with 128
permutations is about 0.04 there), their article dates are within the window of each other, and they
share a matched rule (or either matched none); without a shared rule only a near duplicate
(NEAR_DUPLICATE) joins. The best candidate's story is the article's; none: a new story, named after the
article's content hash. A new content under a path seen before always joins its earlier version's story,
as version N + 1. Entries older than the window are evicted: memory and the cost of a lookup depend on
the articles of one window, not on the history.
"""

from __future__ import annotations

import itertools
import re
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

from monitor.matching.analysis import fold

if TYPE_CHECKING:  # numpy and datasketch (with scipy: ~56 MB) are imported only where stories are on
    from datasketch import LeanMinHash

# What a rule does with the articles of one story (`story:` in the rules file).
StoryMode = Literal["alert_each", "first_then_updates", "digest_updates"]

NUM_PERM = 128
BANDS, ROWS = 32, 2
THRESHOLD = 0.22  # estimated Jaccard similarity of salient words from which an article joins a story
NEAR_DUPLICATE = 0.5  # ... without a matched rule in common
WINDOW = 72 * 3600.0  # seconds
MAX_CHARS = 60_000  # of an article's text read for its features
MAX_WORDS = 3_000
MIN_LETTERS, MAX_LETTERS = 4, 40
MIN_FEATURES = 5  # an article with fewer salient words has no signature (review: all such articles were one story)
MIN_DIGITS = 2  # a single digit (of "7.8", "1,500") says nothing of the event
SCHEME = "affine32"
_WORD = re.compile(r"\w+")
_SEED = 1


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


STOP_WORDS = (
    # en
    _words(
        """about above after again against also because been before being below between both but could does doing
    down during each even from further have having here hers herself himself into itself just more most much
    myself once only other ours over same says said should some such than that their theirs them then there
    these they this those through under until very were what when where which while whom will with would your
    yours will into upon among amid"""
    )
    # nl
    | _words(
        """aan aldus alle alles als altijd andere ben bij daar daarna dan dat deze die dit doch doen door dus een
    eens eigen enkele geen geweest haar had heb hebben heeft hier hij hoe hun iemand iets ik in is ja je kan kon
    kunnen maar meer men met mij mijn moet naar niet niets nog omdat onder ons ook over reeds tegen toch toen
    tot uit van veel voor want waren was wat werd wezen wie wil worden wordt zal zei zelf zich zijn zoals zonder
    zou zouden volgens tussen nadat onze hebt werden eerder later"""
    )
    # de
    | _words(
        """aber alle allem allen aller alles also andere anderen auch auf aus bei beim bist dann darum dass dein
    deine dem den der des dessen dich dies diese diesem diesen dieser dieses doch dort durch eine einem einen
    einer eines etwas euch euer eure fur gegen gewesen hatte hatten hier hinter ich ihm ihn ihnen ihr ihre
    ihrem ihren ihrer immer jede jedem jeden jeder jedes jene jetzt kann kein keine konnte machen mein meine
    mich mit muss nach nicht nichts noch nun nur oder ohne sehr sein seine seinem seinen seiner sich sie sind
    soll sollte sondern uber um und uns unser unter viel vom von vor wann war waren warum was weil welche wenn
    werden wird wurde wurden wie wieder wir wird zum zur zwischen sagte laut seit"""
    )
    # fr
    | _words(
        """alors aucun aussi autre avant avec avoir bon car cela ces cette ceux chaque comme comment dans des
    dedans dehors depuis devrait doit donc dont elle elles encore entre est etaient etait etre fait faites
    font hors ici ils juste leur leurs mais meme mes moins notre nous ont par parce pas peut peu plupart pour
    pourquoi quand que quel quelle quelles quels qui sans ses selon seulement sien son sont sous soyez sujet
    sur tandis tellement tels tes toi ton tous tout toute toutes tres trop une vos votre vous ete apres
    avait selon lors"""
    )
)


@dataclass(frozen=True, slots=True)
class StoryRef:
    """Where a claimed article stands in its story."""

    story: str  # "story_" + 16 hex digits (from the content hash of the article that started the story)
    version: int  # 1 for a file's first content; N for the Nth distinct content seen under the same path
    started: bool  # whether this article started the story
    previous_version: str | None = None  # the content hash of the same file's previous version, if any
    similarity: float = 0.0  # to the most similar earlier article of the story (0.0 when it started it)


@dataclass(frozen=True, slots=True)
class StoryEntry:
    """An article in a story (a row of `story_articles`): what the index needs of it."""

    content_hash: str
    story: str
    path: str
    version: int
    article_at: float  # the latest instant of its date (UNIX seconds)
    created_at: float  # when it was claimed
    signature: bytes  # NUM_PERM uint32 values (`signature`); empty: none (stories were off)
    rules: tuple[str, ...] = ()  # the rules it matched
    seq: int = 0  # the store's order of assignments (0: not stored yet)


def features(text: str) -> list[str]:
    """The article's salient words (the module docstring says which), each once, in order of appearance."""
    words = _WORD.finditer(fold(text[:MAX_CHARS]).text)
    seen: dict[str, None] = {}
    for found in itertools.islice(words, MAX_WORDS):
        word = found.group()
        number = word.isdigit() and len(word) >= MIN_DIGITS
        if number or (MIN_LETTERS <= len(word) <= MAX_LETTERS and word not in STOP_WORDS):
            seen[word[:MAX_LETTERS]] = None
    return list(seen)


def signature(text: str) -> bytes:
    """The article's MinHash over its salient words, as NUM_PERM little-endian uint32 values; empty (b"": the
    article joins no other's story but its file's) with fewer than MIN_FEATURES of them, whose MinHash would
    be nearly the same for every such article (a text of stop words, an unspaced script)."""
    from datasketch import MinHash

    words = features(text)
    if len(words) < MIN_FEATURES:
        return b""
    minhash = MinHash(num_perm=NUM_PERM, seed=_SEED, scheme=SCHEME)
    minhash.update_batch([word.encode() for word in words])
    values: bytes = minhash.hashvalues.astype("<u4").tobytes()
    return values


def minhash_of(signature: bytes) -> LeanMinHash:
    """The MinHash whose hash values a signature holds."""
    import numpy as np
    from datasketch import LeanMinHash

    values = np.frombuffer(signature, dtype="<u4").astype(np.uint32)
    return LeanMinHash(seed=_SEED, hashvalues=values, scheme=SCHEME)


def similarity(one: bytes, other: bytes) -> float:
    """The estimated Jaccard similarity of two signatures' word sets (`MinHash.jaccard`)."""
    import numpy as np

    return float(np.count_nonzero(np.frombuffer(one, "<u4") == np.frombuffer(other, "<u4"))) / NUM_PERM


def _similarities(signature: bytes, others: list[bytes]) -> Any:
    """`similarity` of one signature to each of several, in one pass over them all."""
    import numpy as np

    matrix = np.frombuffer(b"".join(others), "<u4").reshape(len(others), NUM_PERM)
    return np.count_nonzero(matrix == np.frombuffer(signature, "<u4"), axis=1) / NUM_PERM


def new_story(content_hash: str) -> str:
    return "story_" + content_hash[:16]


class StoryIndex:
    """The articles of the last `window` seconds, for finding the story of a new one (not thread-safe: the
    pipeline holds its lock around `sync` and `assign`)."""

    def __init__(self, window: float = WINDOW, threshold: float = THRESHOLD) -> None:
        self.window = window
        self.threshold = threshold
        self.seq = 0  # the highest store sequence number loaded
        from datasketch import MinHashLSH

        self._lsh = MinHashLSH(num_perm=NUM_PERM, params=(BANDS, ROWS))  # the bands use the first 64 values
        self._entries: dict[str, StoryEntry] = {}
        self._order: deque[str] = deque()  # content hashes by arrival, for eviction

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, content_hash: str) -> bool:
        return content_hash in self._entries

    def load(self, entries: Iterable[StoryEntry]) -> None:
        """Add stored entries (by `seq`), those known already skipped, and note the highest `seq`."""
        for entry in entries:
            self.seq = max(self.seq, entry.seq)
            if entry.content_hash not in self._entries:
                self.add(entry)

    def add(self, entry: StoryEntry) -> None:
        """Index one entry (one whose signature is empty is kept for its story, not found by similarity)."""
        if entry.content_hash in self._entries:
            return
        if entry.signature:
            self._lsh.insert(entry.content_hash, minhash_of(entry.signature), check_duplication=False)
        self._entries[entry.content_hash] = entry
        self._order.append(entry.content_hash)

    def remove(self, content_hash: str) -> None:
        """Take an entry out (the transaction that added it rolled back)."""
        entry = self._entries.pop(content_hash, None)
        if entry is None:
            return
        if entry.signature:
            self._lsh.remove(content_hash)
        if self._order and self._order[-1] == content_hash:
            self._order.pop()
        else:
            self._order.remove(content_hash)

    def evict(self, now: float) -> int:
        """Drop the entries that arrived more than `window` seconds before `now`; how many went."""
        cutoff, gone = now - self.window, 0
        while self._order and self._entries[self._order[0]].created_at < cutoff:
            self.remove(self._order[0])
            gone += 1
        return gone

    def nearest(self, signature: bytes, rules: Iterable[str], article_at: float) -> tuple[StoryEntry, float] | None:
        """The most similar indexed article that the new one may join (module docstring), with its
        similarity; None: none."""
        if not signature:
            return None
        keys = list(self._lsh.query(minhash_of(signature)))
        if not keys:
            return None
        candidates = [self._entries[key] for key in keys]
        scores = _similarities(signature, [entry.signature for entry in candidates])
        wanted = set(rules)
        best: tuple[StoryEntry, float] | None = None
        for at in (-scores).argsort(kind="stable"):  # most similar first: stop after the best score's ties
            entry, score = candidates[at], float(scores[at])
            if score < self.threshold or (best is not None and score < best[1]):
                break
            if abs(entry.article_at - article_at) > self.window:
                continue
            shared = not wanted or not entry.rules or not wanted.isdisjoint(entry.rules)
            if score < (self.threshold if shared else max(self.threshold, NEAR_DUPLICATE)):
                continue
            if best is None or entry.seq < best[0].seq:
                best = (entry, score)
        return best

    def decide(self, entry: StoryEntry, previous: StoryEntry | None = None, *also: StoryIndex) -> StoryRef:
        """The story of a newly claimed article (`entry`, its story and version unset): its earlier
        version's when `previous` (the latest version of its path) is given, else the nearest article's in
        this index or `also` (a batch's own), else a new one. Indexes nothing."""
        if previous is not None:
            return StoryRef(previous.story, previous.version + 1, False, previous.content_hash, _score(entry, previous))
        found = [
            near for index in (self, *also) if (near := index.nearest(entry.signature, entry.rules, entry.article_at))
        ]
        if found:
            best, score = max(found, key=lambda near: near[1])
            return StoryRef(best.story, 1, False, None, score)
        return StoryRef(new_story(entry.content_hash), 1, True)

    def assign(self, entry: StoryEntry, previous: StoryEntry | None = None) -> tuple[StoryEntry, StoryRef]:
        """`decide`, and index the entry in its story; returns it as indexed."""
        ref = self.decide(entry, previous)
        placed = replace(entry, story=ref.story, version=ref.version)
        self.add(placed)
        return placed, ref


def _score(entry: StoryEntry, other: StoryEntry) -> float:
    if not entry.signature or not other.signature:
        return 0.0
    return similarity(entry.signature, other.signature)
