"""Stories (issue 18): near-duplicate and same-event articles within a time window share a story id.

    signature(text) -> bytes        an article's story terms and word sketch, stored per article
    StoryIndex.assign(...) -> StoryRef   the story a newly claimed article joins, or a new one

**Terms.** Outlets that report one event name the same people, places, organisations and figures, whatever
their wording or language ("Gaziantep", "Masimov", "7,8"), while different events that share keywords (two
earthquakes, two treason trials) differ in those names. An article's terms are therefore its capitalised
words that do not start a sentence (names; German nouns too) and its numbers of two digits or more
(`7,8` and `7.8` are `7.8`, `1,500` and `1.500` are `1500`), folded (`monitor.matching.analysis.fold`)
and cut to their first PREFIX letters, so that a name's inflections and some of its spellings across
languages meet (Türkei and Turkey are both `turke`, Syrië and Syrien `syrie`, Kazachse and Kazachstan
`kazac`; Turkije's `turki` meets neither, which the other names an article shares make up for). The first
MAX_TERMS distinct terms are kept (a news text names its event first), as 32-bit hashes. Stop words and
words under MIN_LETTERS letters are no terms.

**Evidence.** A term's weight says how rare it is among the articles of the window: 1 - ln(df) / ln(N +
PRIOR), with df the window's articles that have it (the new one counted) and N the window's size; PRIOR
pseudo-articles that lack every term keep a small window from calling its own event's names common. A
term in one article weighs 1, one in every article of a large window 0. Two articles' evidence is the sum
of the weights of the terms they share; an article joins the earlier article with the most evidence when
that is at least `threshold` (THRESHOLD: more than one rare term in common), their dates are within the
window of each other, and their matched rules do not disagree (when both matched rules and share none,
twice the threshold is needed). On tests/data/stories this scores pairwise precision 1.00 and recall
0.95 (README, "Stories"). The index keeps the weights' counts (`df`) incrementally as articles enter and
leave the window.

**Near duplicates.** The signature also holds a bottom-SKETCH sketch of the article's salient words (the
SKETCH smallest 32-bit hashes of its folded words without stop words: a MinHash with one hash function
and k minima, whose agreement estimates the Jaccard similarity of two word sets). An article whose
sketch agrees with an earlier one's at NEAR_DUPLICATE or more joins it whatever their rules or names (a
copy under another name, a lightly edited agency text). A new content under a path seen before always
joins its earlier version's story, as version N + 1.

**Cost.** Candidates come from an inverted index over the terms and over the SKETCH_KEYS smallest sketch
values (a near duplicate's candidate shares COPY_KEYS of them: one alone is often a common word's): each
key keeps the POSTINGS latest articles that have it, and a key whose list is full (a term or word in
POSTINGS or more articles of the window: not distinctive) is skipped, so looking up an article
visits fewer than (MAX_TERMS + SKETCH_KEYS) * POSTINGS postings, however long the window's history.
Entries older than the window are evicted, with their postings and counts. Memory per article: its entry
and signature (MAX_TERMS + SKETCH values of 4 bytes at most) and one posting per key.

This replaced a datasketch MinHash over all salient words with MinHashLSH candidates: Jaccard similarity
of whole word sets cannot weight a word by its rarity, and same-event articles by different outlets
measured a median of 0.07 while different events with shared keywords reached 0.27 (precision 0.86, recall
0.12 on tests/data/stories); its LSH buckets took about 12 KB per article and, with the common words real
articles share, its candidate sets (and cost) grew with the history.
"""

from __future__ import annotations

import itertools
import math
import re
import struct
import zlib
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Literal

from monitor.matching.analysis import fold, fold_term

# What a rule does with the articles of one story (`story:` in the rules file).
StoryMode = Literal["alert_each", "first_then_updates", "digest_updates"]

THRESHOLD = 1.3  # evidence (sum of shared terms' weights) from which an article joins a story
RULES_DISAGREE = 2.0  # the threshold's factor when both articles matched rules and share none
NEAR_DUPLICATE = 0.5  # estimated Jaccard similarity of the word sketches from which any article joins
WINDOW = 72 * 3600.0  # seconds
PRIOR = 200  # pseudo-articles in the weights' denominator
PREFIX = 5  # letters of a term kept
MAX_TERMS = 48
SKETCH = 32  # values of the word sketch
SKETCH_KEYS = 4  # the smallest sketch values indexed, for finding near duplicates
COPY_KEYS = 2  # of them that a near duplicate's candidate shares (a copy shares most; a common word, one)
POSTINGS = 64  # latest articles kept per key of the inverted index
MAX_CHARS = 60_000  # of an article's text read for its terms and words
MAX_WORDS = 3_000
MIN_LETTERS, MAX_LETTERS = 3, 40
MIN_WORDS = 5  # an article with fewer salient words and no terms has no signature
MIN_DIGITS = 2  # a single digit says nothing of the event
MAGIC = b"st2\x00"  # the signature's format (the MinHash signatures before it have none)
_HEADER = re.compile(r"\A\s*date[ \t]+\S+", re.IGNORECASE)
# A number, or a word that may be capitalised (an ASCII capital or any other letter first: `_name` checks).
_CANDIDATE = re.compile(r"(?<![\w.,])\d+(?:[.,]\d+)*|\b(?:[A-Z]|[^\x00-\x7f])\w*")
_OPENERS = " \t\r'\"‘’“”«»([-–—"  # what may stand between a sentence's end and its first word
_ENDS = ".!?:;\n"
WORD_LETTERS = 4  # of a salient word (the sketch's)
_THOUSANDS = re.compile(r"\d{1,3}(?:[.,]\d{3})+")
_SKETCH_SPACE = 1 << 32  # sketch keys live above the terms' 32-bit hashes in the inverted index


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
    # short words that a capital at a sentence's start or in a title makes look like names
    | _words("the and for are but not you all any can had her was one our out has him his how its she who why het")
    | _words("wel des das ein ist les une aux par")
)


@dataclass(frozen=True, slots=True)
class StoryRef:
    """Where a claimed article stands in its story."""

    story: str  # "story_" + 16 hex digits (from the content hash of the article that started the story)
    version: int  # 1 for a file's first content; N for the Nth distinct content seen under the same path
    started: bool  # whether this article started the story
    previous_version: str | None = None  # the content hash of the same file's previous version, if any
    similarity: float = 0.0  # evidence shared with the most similar earlier article of the story (0.0: started it)


@dataclass(frozen=True, slots=True)
class StoryEntry:
    """An article in a story (a row of `story_articles`): what the index needs of it."""

    content_hash: str
    story: str
    path: str
    version: int
    article_at: float  # the latest instant of its date (UNIX seconds)
    created_at: float  # when it was claimed
    signature: bytes  # `signature(text)`; empty: none (stories were off, or a signature of an older format)
    rules: tuple[str, ...] = ()  # the rules it matched
    seq: int = 0  # the store's order of assignments (0: not stored yet)


def _hash(term: str) -> int:
    """A stable 32-bit hash (CRC-32, its bits mixed by a multiplication: the sketch takes the smallest)."""
    return (zlib.crc32(term.encode()) * 0x9E3779B1) & 0xFFFFFFFF


def _number(found: str) -> str | None:
    """`#1500` for 1,500 or 1.500, `#7.8` for 7,8 or 7.8; None for fewer than MIN_DIGITS digits."""
    value = found.replace(",", "").replace(".", "") if _THOUSANDS.fullmatch(found) else found.replace(",", ".")
    return "#" + value if sum(c.isdigit() for c in value) >= MIN_DIGITS else None


def _name(token: str) -> str | None:
    """A capitalised word's term: folded, its first PREFIX letters; None for a stop word, a short word or one
    over MAX_LETTERS (a 60,000-letter "name" is no name, and is never cached)."""
    if len(token) > MAX_LETTERS:
        return None
    word = _fold_name(token).strip()
    if len(word) < MIN_LETTERS or word in STOP_WORDS or " " in word:
        return None
    return word[:PREFIX]


# Article words folded, cached apart from the rules' `fold_term` cache (which they would otherwise push out)
# and bounded: at most NAME_CACHE words of at most MAX_LETTERS letters.
NAME_CACHE = 16384
_fold_name = lru_cache(maxsize=NAME_CACHE)(fold_term.__wrapped__)


def _starts(body: str, at: int) -> bool:
    """Whether the word at `at` starts a sentence (or the text)."""
    before = body[max(0, at - 8) : at].rstrip(_OPENERS)
    return not before or before[-1] in _ENDS


def terms(text: str) -> list[str]:
    """The article's terms (the module docstring says which), each once, in order of appearance."""
    body = _HEADER.sub("", text[:MAX_CHARS], count=1)
    found: dict[str, None] = {}
    for match in itertools.islice(_CANDIDATE.finditer(body), MAX_WORDS):
        token = match.group()
        if token[0].isdigit():
            term = _number(token)
        else:
            term = _name(token) if token[0].isupper() and not _starts(body, match.start()) else None
        if term is not None:
            found[term] = None
            if len(found) >= MAX_TERMS:
                break
    return list(found)


def words(text: str) -> list[str]:
    """The article's salient words (folded, without stop words, of WORD_LETTERS letters or more), each once."""
    folded = fold(_HEADER.sub("", text[:MAX_CHARS], count=1)).text.split()[:MAX_WORDS]
    return [
        word
        for word in dict.fromkeys(folded)
        if WORD_LETTERS <= len(word) <= MAX_LETTERS and word not in STOP_WORDS and not word.isdigit()
    ]


def signature(text: str) -> bytes:
    """MAGIC, the number of terms (uint16), the terms' hashes and the word sketch (sorted), as little-endian
    uint32 values; empty (the article joins no other's story but its file's) with no terms and fewer than
    MIN_WORDS salient words (a text of stop words, an unspaced script)."""
    hashed = [_hash(term) for term in terms(text)]
    salient = words(text)
    if not hashed and len(salient) < MIN_WORDS:
        return b""
    sketch = sorted({(zlib.crc32(word.encode()) * 0x9E3779B1) & 0xFFFFFFFF for word in salient})[:SKETCH]  # _hash
    values = list(dict.fromkeys(hashed))
    return MAGIC + struct.pack(f"<H{len(values) + len(sketch)}I", len(values), *values, *sketch)


def decode(signature: bytes) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """A signature's term hashes and word sketch; ((), ()) for an empty one or one of an older format."""
    if not signature.startswith(MAGIC) or len(signature) < len(MAGIC) + 2:
        return (), ()
    (count,) = struct.unpack_from("<H", signature, len(MAGIC))
    values = struct.unpack_from(f"<{(len(signature) - len(MAGIC) - 2) // 4}I", signature, len(MAGIC) + 2)
    return values[:count], values[count:]


def resemblance(one: tuple[int, ...], other: tuple[int, ...]) -> float:
    """The Jaccard similarity of two word sets estimated from their sketches (bottom-k: the share of the k
    smallest values of both that each has)."""
    if not one or not other:
        return 0.0
    union = sorted(set(one).union(other))[:SKETCH]
    return len(set(one).intersection(other).intersection(union)) / len(union)


def new_story(content_hash: str) -> str:
    return "story_" + content_hash[:16]


def weight(count: int, articles: int) -> float:
    """A term's weight when `count` of `articles` in the window have it (module docstring)."""
    return max(0.0, 1.0 - math.log(max(count, 1)) / math.log(articles + PRIOR))


class StoryIndex:
    """The articles of the last `window` seconds, for finding the story of a new one (not thread-safe: the
    pipeline holds its lock around `sync` and `assign`)."""

    def __init__(self, window: float = WINDOW, threshold: float = THRESHOLD) -> None:
        self.window = window
        self.threshold = threshold
        self.seq = 0  # the highest store sequence number loaded
        self._entries: dict[str, StoryEntry] = {}
        self._order: deque[str] = deque()  # content hashes by arrival, for eviction
        self._counts: dict[int, int] = {}  # term hash -> the window's articles that have it
        self._postings: dict[int, list[str]] = {}  # term hash or sketch key -> the latest articles with it

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, content_hash: str) -> bool:
        return content_hash in self._entries

    def count(self, term: int) -> int:
        return self._counts.get(term, 0)

    def load(self, entries: Iterable[StoryEntry]) -> None:
        """Add stored entries (by `seq`), those known already skipped, and note the highest `seq`."""
        for entry in entries:
            self.seq = max(self.seq, entry.seq)
            if entry.content_hash not in self._entries:
                self.add(entry)

    def add(self, entry: StoryEntry) -> None:
        """Index one entry (one whose signature is empty is kept for its story, not found by similarity)."""
        key = entry.content_hash
        if key in self._entries:
            return
        self._entries[key] = entry
        self._order.append(key)
        found, sketch = decode(entry.signature)
        for term in found:
            self._counts[term] = self._counts.get(term, 0) + 1
        for posting in (*found, *(_SKETCH_SPACE + value for value in sketch[:SKETCH_KEYS])):
            listed = self._postings.setdefault(posting, [])
            listed.append(key)
            if len(listed) > POSTINGS:
                del listed[0]

    def remove(self, content_hash: str) -> None:
        """Take an entry out (evicted, or the transaction that added it rolled back)."""
        entry = self._entries.pop(content_hash, None)
        if entry is None:
            return
        found, sketch = decode(entry.signature)
        for term in found:
            left = self._counts[term] - 1
            if left:
                self._counts[term] = left
            else:
                del self._counts[term]
        for posting in (*found, *(_SKETCH_SPACE + value for value in sketch[:SKETCH_KEYS])):
            listed = self._postings.get(posting)
            if listed is not None and content_hash in listed:  # not there: pushed out by later articles
                listed.remove(content_hash)
                if not listed:
                    del self._postings[posting]
        if self._order and self._order[-1] == content_hash:
            self._order.pop()
        elif self._order and self._order[0] == content_hash:
            self._order.popleft()
        else:
            self._order.remove(content_hash)

    def evict(self, now: float) -> int:
        """Drop the entries that arrived more than `window` seconds before `now`; how many went."""
        cutoff, gone = now - self.window, 0
        while self._order and self._entries[self._order[0]].created_at < cutoff:
            self.remove(self._order[0])
            gone += 1
        return gone

    def nearest(self, entry: StoryEntry, weights: dict[int, float]) -> tuple[StoryEntry, float] | None:
        """The indexed article the new one (`entry`, its terms weighted) may join with the most evidence
        (module docstring), with that evidence; None: none."""
        evidence: dict[str, float] = {}
        for term, value in weights.items():
            for key in self._postings_of(term):
                evidence[key] = evidence.get(key, 0.0) + value
        sketch = decode(entry.signature)[1]
        hits: dict[str, int] = {}
        for value in sketch[:SKETCH_KEYS]:
            for key in self._postings_of(_SKETCH_SPACE + value):
                hits[key] = hits.get(key, 0) + 1
        fewest = min(COPY_KEYS, len(sketch))
        copies = {key for key, count in hits.items() if count >= fewest}
        wanted = set(entry.rules)
        best: tuple[tuple[bool, float, int], StoryEntry, float] | None = None
        for key in {key for key, score in evidence.items() if score >= self.threshold} | copies:
            other, score = self._entries[key], evidence.get(key, 0.0)
            if abs(other.article_at - entry.article_at) > self.window:
                continue
            shared = not wanted or not other.rules or not wanted.isdisjoint(other.rules)
            joins = score >= self.threshold * (1.0 if shared else RULES_DISAGREE)
            copy = not joins and key in copies and resemblance(sketch, decode(other.signature)[1]) >= NEAR_DUPLICATE
            if not joins and not copy:
                continue
            rank = (copy, score, -other.seq)
            if best is None or rank > best[0]:
                best = (rank, other, score)
        return None if best is None else (best[1], best[2])

    def _postings_of(self, key: int) -> list[str]:
        """The articles listed under a key; none when the list is full: a key of more than POSTINGS
        articles of the window is not distinctive (and its term weighs little), so it is skipped."""
        listed = self._postings.get(key, [])
        return [] if len(listed) >= POSTINGS else listed

    def weights(self, signature: bytes, *also: StoryIndex) -> dict[int, float]:
        """The weights of an article's terms in the window of this index and `also` (the article counted)."""
        indexes = (self, *also)
        articles = sum(len(index) for index in indexes) + 1
        found = decode(signature)[0]
        return {term: weight(1 + sum(index.count(term) for index in indexes), articles) for term in found}

    def decide(self, entry: StoryEntry, previous: StoryEntry | None = None, *also: StoryIndex) -> StoryRef:
        """The story of a newly claimed article (`entry`, its story and version unset): its earlier
        version's when `previous` (the latest version of its path) is given, else the nearest article's in
        this index or `also` (a batch's own), else a new one. Indexes nothing."""
        weights = self.weights(entry.signature, *also)
        if previous is not None:
            shared = set(decode(previous.signature)[0])
            score = sum(value for term, value in weights.items() if term in shared)
            return StoryRef(previous.story, previous.version + 1, False, previous.content_hash, score)
        found = [near for index in (self, *also) if (near := index.nearest(entry, weights))]
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
