"""CTC character tokenizer: greedy-path ids -> text and word frame offsets.

Upstream: transformers 5.24.0 `Wav2Vec2CTCTokenizer` (`_decode`, `convert_tokens_to_string`,
`_compute_offsets`, `_get_word_offsets`), whose behaviour this mirrors, quirks included:
- ids -> tokens (an id outside the vocab becomes the unk token);
- with `skip_special_tokens`, special tokens (pad included, the word delimiter excluded) are
  removed *before* repeats are collapsed, so "A <pad> A" decodes to "A" (not "AA");
- repeats are collapsed, then the pad token (the CTC blank) is dropped, the word delimiter becomes
  a space, and the joined string is stripped.
Offsets are in output frames (multiply by `samples_per_frame / sample_rate` for seconds).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path

# facebook/wav2vec2-base-960h vocab.json: blank, specials, word delimiter, then the letters by
# frequency in LibriSpeech.
BASE_960H_VOCAB: dict[str, int] = {
    tok: i for i, tok in enumerate(
        ["<pad>", "<s>", "</s>", "<unk>", "|", *"ETAONIHSRDLUMWCFGYPBVK'XJQZ"])}


@dataclass(frozen=True)
class CharOffset:
    char: str  # the character (a space for the word delimiter)
    token_id: int
    start: int  # first output frame of the collapsed run
    end: int  # one past its last frame


@dataclass(frozen=True)
class WordOffset:
    word: str
    start: int  # output frames
    end: int


class CTCTokenizer:
    def __init__(self, vocab: dict[str, int], pad_token: str = "<pad>", bos_token: str = "<s>",
                 eos_token: str = "</s>", unk_token: str = "<unk>",
                 word_delimiter_token: str = "|"):
        for name, tok in (("pad_token", pad_token), ("unk_token", unk_token),
                          ("word_delimiter_token", word_delimiter_token)):
            if tok not in vocab:
                raise ValueError(f"{name} {tok!r} is not in the vocab; pass the vocab.json that "
                                 "came with the checkpoint")
        ids = sorted(vocab.values())
        if len(set(ids)) != len(ids):
            raise ValueError("the vocab maps two tokens to one id")
        self.vocab = dict(vocab)
        self.id_to_token = {i: t for t, i in vocab.items()}
        self.pad_token, self.unk_token = pad_token, unk_token
        self.word_delimiter_token = word_delimiter_token
        self.pad_id = vocab[pad_token]
        self.special_tokens = {t for t in (pad_token, bos_token, eos_token, unk_token)}

    @classmethod
    def from_file(cls, path: str | Path, **kw) -> CTCTokenizer:
        return cls(json.loads(Path(path).read_text(encoding="utf-8")), **kw)

    def save_vocab(self, path: str | Path) -> Path:
        """Write vocab.json atomically (the file transformers' tokenizer reads)."""
        path = Path(path)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".vocab-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(self.vocab, f, ensure_ascii=False)
        os.replace(tmp, path)
        return path

    def _tokens(self, ids, skip_special_tokens: bool) -> list[tuple[str, int, int]]:
        """(token, id, frame) per frame, specials removed first when asked (upstream order)."""
        out = []
        for frame, i in enumerate(ids):
            tok = self.id_to_token.get(int(i), self.unk_token)
            if skip_special_tokens and tok in self.special_tokens:
                continue
            out.append((tok, int(i), frame))
        return out

    def char_offsets(self, ids, skip_special_tokens: bool = False) -> list[CharOffset]:
        """Collapsed, blank-free characters with their frame spans.

        With skip_special_tokens the spans count the remaining frames (upstream's behaviour),
        so they are frame positions only when nothing was skipped."""
        toks = self._tokens(ids, skip_special_tokens)
        out, pos = [], 0
        for tok, run in groupby(toks, key=lambda t: t[0]):
            n = len(list(run))
            if tok != self.pad_token:
                char = " " if tok == self.word_delimiter_token else tok
                out.append(CharOffset(char, self.vocab.get(tok, self.vocab[self.unk_token]),
                                      pos, pos + n))
            pos += n
        return out

    def decode(self, ids, skip_special_tokens: bool = False) -> str:
        """Greedy-path ids (one per frame) -> text, as `Wav2Vec2CTCTokenizer.decode`."""
        return "".join(c.char for c in self.char_offsets(ids, skip_special_tokens)).strip()

    def word_offsets(self, ids, skip_special_tokens: bool = False) -> list[WordOffset]:
        """Words split at spaces, each with its first and one-past-last frame."""
        words: list[WordOffset] = []
        cur: list[CharOffset] = []
        for c in self.char_offsets(ids, skip_special_tokens) + [CharOffset(" ", -1, 0, 0)]:
            if c.char == " ":
                if cur:
                    word = "".join(x.char for x in cur)
                    words.append(WordOffset(word, cur[0].start, cur[-1].end))
                cur = []
            else:
                cur.append(c)
        return words
