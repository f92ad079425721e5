"""SentencePiece-style piece vocabulary and detokenizer for Parakeet.

The released Parakeet models use a SentencePiece (unigram/BPE) vocabulary whose pieces mark a
word start with "▁" (U+2581); text is the concatenation of the pieces with "▁" read as a space.
Upstream: transformers 5.24.0 `ParakeetTokenizer._decode` (CTC: consecutive repeats are grouped
and the blank, the pad token, dropped; then the tokenizers decode). This module decodes a list
of pieces (vocab.json, index = id) the same way; no SentencePiece model is needed for decoding.

`synthetic_vocab(n)` builds a deterministic n-piece vocabulary in code (no download) for the
seeded random-weight models used in parity tests; its pieces are real-looking but the model
output over them is not language.
"""

from __future__ import annotations

import string

WORD_START = "\u2581"

_WORDS = ["the", "of", "and", "to", "a", "in", "is", "it", "you", "that", "he", "was", "for", "on", "are", "with", "as", "i", "his", "they", "be", "at", "one", "have", "this", "from", "or", "had", "by", "hot", "word", "but", "what", "some", "we", "can", "out", "other", "were", "all", "there", "when", "up", "use", "your", "how", "said", "an", "each", "she", "which", "do", "their", "time", "if", "will", "way", "about", "many", "then", "them", "write", "would", "like", "so", "these", "her", "long", "make", "thing", "see", "him", "two", "has", "look", "more", "day", "could", "go", "come", "did", "number", "sound", "no", "most", "people", "my", "over", "know", "water", "than", "call", "first", "who", "may", "down", "side", "been", "now", "find", "any", "new", "work", "part", "take", "get", "place", "made", "live", "where", "after", "back", "little", "only", "round", "man", "year", "came", "show", "every", "good", "me", "give", "our", "under", "name", "very", "through", "just", "form", "sentence", "great", "think", "say", "help", "low", "line", "differ", "turn", "cause", "much", "mean", "before", "move", "right", "boy", "old", "too", "same", "tell", "does", "set", "three", "want", "air", "well", "also", "play", "small", "end", "put", "home", "read", "hand", "port", "large", "spell", "add", "even", "land", "here", "must", "big", "high", "such", "follow", "act", "why", "ask", "men", "change", "went", "light", "kind", "off", "need", "house", "picture", "try", "us", "again", "animal", "point", "mother", "world", "near", "build", "self", "earth", "father"]


def synthetic_vocab(size: int) -> list[str]:
    """`size` distinct pieces: "<unk>", word-start letters, letters, "▁word" pieces, letter
    pairs, punctuation; the last id is the blank "<blank>" (as the released models put it)."""
    if size < 2 + 2 * 26:
        raise ValueError(f"synthetic vocab size must be >= {2 + 2 * 26}, got {size}")
    pieces = ["<unk>"]
    pieces += [WORD_START + c for c in string.ascii_lowercase]
    pieces += list(string.ascii_lowercase)
    pieces += [WORD_START + w for w in _WORDS if len(w) > 1]
    pieces += list(".,?'-")
    pieces += [a + b for a in string.ascii_lowercase for b in string.ascii_lowercase]
    pieces += [WORD_START + a + b for a in string.ascii_lowercase for b in string.ascii_lowercase]
    seen, out = set(), []
    for p in pieces:
        if p not in seen:
            seen.add(p)
            out.append(p)
    if len(out) < size - 1:
        raise ValueError(f"synthetic vocab has only {len(out) + 1} pieces, asked for {size}")
    return out[:size - 1] + ["<blank>"]


class PieceTokenizer:
    """Decode ids over a piece list (index = id); `blank` is skipped."""

    def __init__(self, pieces: list[str], blank: int):
        if not 0 <= blank < len(pieces):
            raise ValueError(f"blank id {blank} is outside the vocab of {len(pieces)} pieces")
        self.pieces, self.blank = list(pieces), blank

    def piece(self, i: int) -> str:
        if not 0 <= i < len(self.pieces):
            raise ValueError(f"token id {i} is outside the vocab of {len(self.pieces)} pieces")
        return self.pieces[i]

    def is_word_start(self, i: int) -> bool:
        return self.piece(i).startswith(WORD_START)

    def decode(self, ids) -> str:
        """Text of non-blank ids, pieces joined, "▁" as a space, outer spaces stripped."""
        text = "".join(self.piece(int(i)) for i in ids if int(i) != self.blank)
        return text.replace(WORD_START, " ").strip()

    def decode_ctc(self, ids) -> str:
        """Upstream ParakeetTokenizer.decode of a CTC path: group repeats, drop blanks."""
        grouped = [int(i) for k, i in enumerate(ids) if k == 0 or int(ids[k - 1]) != int(i)]
        return self.decode(grouped)
