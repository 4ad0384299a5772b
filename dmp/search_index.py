"""The blind index behind the documents' full-text search: the database never holds a
document's words, only keyed hashes of their normalised forms (DOMAIN.md §4; the text itself is
encrypted, `dmp.models.fields.EncryptedTextField`).

A word is normalised (Unicode NFKD, accents dropped, case folded: "Échographie" and
"echographie" are the same word), French stop words and one-letter words are left out, and it
is indexed twice over:
- its French stem (Snowball), so that "analyses" finds "analyse" and the reverse;
- each of its prefixes from PREFIX_MIN to PREFIX_MAX letters, so that a word being typed
  ("hemoglo"), a drug name or a word of another language is found.
Each term is then hashed with HMAC-SHA256 under SEARCH_INDEX_KEYS[0] and the record's id, and
its first 64 bits kept as a signed integer (one bigint column, the same on PostgreSQL and
SQLite). Two different terms of a record with a million terms share a hash with a probability
of about 3 in 100 million: a search would then show one document too many, never hide one.
The record's id in the message means the same word has a different hash in every record:
counting hashes across records says nothing about which words are common, and a term copied
from one record's index never finds anything in another.

A query is normalised the same way; a document matches if, for every query word, it holds the
hash of the word's stem or of its prefix (PREFIX_MAX letters at most) — under any key of
SEARCH_INDEX_KEYS, so the key rotates without a search gap (`manage.py reindex_documents`).

Pure functions only: the services write the terms, the selectors ask for them."""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from functools import lru_cache

from django.conf import settings

PREFIX_MIN = 3
PREFIX_MAX = 10
MIN_WORD = 2
TERM_BYTES = 8  # 64 bits of the HMAC

# Words that say nothing to a search (Snowball's French list, accents dropped like the words;
# "ta" is kept: TA, tension artérielle).
STOP_WORDS = frozenset("""
au aux avec ce ces dans de des du elle en et eux il ils je la le les leur lui ma mais me meme mes
moi mon ne nos notre nous on ou par pas pour qu que qui sa se ses son sur te tes toi ton tu un
une vos votre vous c d j l m n s t y ete etee etees etes etant etante etants etantes suis es est
sommes etes sont serai seras sera serons serez seront serais serait serions seriez seraient etais
etait etions etiez etaient fus fut fumes futes furent sois soit soyons soyez soient fusse fusses
fut fussions fussiez fussent ayant ayante ayantes ayants eu eue eues eus ai as avons avez ont aurai
auras aura aurons aurez auront aurais aurait aurions auriez auraient avais avait avions aviez
avaient eut eumes eutes eurent aie aies ait ayons ayez aient eusse eusses eussions eussiez eussent
""".split())

# Letters NFKD does not take apart.
_LIGATURES = str.maketrans({"œ": "oe", "æ": "ae", "ø": "o", "ł": "l", "đ": "d", "ı": "i"})
_WORD = re.compile(r"[^\W_]+")


def normalised_words(text: str) -> list[str]:
    """The words of `text`, accents dropped and case folded, split on anything that is not a
    letter or a digit ("HbA1c" stays one word, "7,2" is two)."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    folded = "".join(char for char in decomposed if not unicodedata.combining(char)).translate(_LIGATURES)
    return _WORD.findall(folded)


@lru_cache(maxsize=1)
def _stemmer():
    import snowballstemmer

    return snowballstemmer.stemmer("french")


@lru_cache(maxsize=50_000)
def _stem(word: str) -> str:
    # The pure-Python stemmer takes ~0.2 ms a word; a language's words repeat from one document
    # to the next, so most are stemmed once per process.
    return _stemmer().stemWord(word)


def _searchable(word: str) -> bool:
    return len(word) >= MIN_WORD and word not in STOP_WORDS


def document_terms(*texts: str) -> set[str]:
    """The clear terms of a document (before hashing): "w:" + each word's stem, "p:" + each of
    its prefixes. Never stored: only their hashes are (`keyed_terms`)."""
    terms: set[str] = set()
    for text in texts:
        for word in set(normalised_words(text)):
            if not _searchable(word):
                continue
            terms.add("w:" + _stem(word))
            terms.update("p:" + word[:length] for length in range(PREFIX_MIN, min(len(word), PREFIX_MAX) + 1))
    return terms


def query_terms(text: str) -> list[set[str]]:
    """For each searchable word of a query, the clear terms any of which a matching document
    holds. Empty when no word of the query can be searched ("de la")."""
    alternatives = []
    for word in dict.fromkeys(normalised_words(text)):
        if not _searchable(word):
            continue
        terms = {"w:" + _stem(word)}
        if len(word) >= PREFIX_MIN:
            terms.add("p:" + word[:PREFIX_MAX])
        alternatives.append(terms)
    return alternatives


def keyed_terms(record_id: int, terms: set[str], *, key: str | None = None) -> set[int]:
    """The hashes stored for (or looked up in) one record's documents: HMAC-SHA256 under the
    index key, over the record's id and the term, its first 64 bits as a signed integer."""
    secret = (key if key is not None else settings.SEARCH_INDEX_KEYS[0]).encode()
    prefix = f"{record_id}\x00".encode()
    return {
        int.from_bytes(hmac.new(secret, prefix + term.encode(), hashlib.sha256).digest()[:TERM_BYTES], "big",
                       signed=True)
        for term in terms
    }


def keyed_query(record_id: int, text: str) -> list[set[int]]:
    """`query_terms` hashed under every key of SEARCH_INDEX_KEYS (during a rotation, documents
    not yet re-indexed are found under the former key)."""
    return [
        set().union(*(keyed_terms(record_id, terms, key=key) for key in settings.SEARCH_INDEX_KEYS))
        for terms in query_terms(text)
    ]
