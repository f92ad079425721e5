"""Whisper's byte-level BPE tokenizer on tiktoken, built from a weight package's `tokenizer.json`.

Upstream: openai-whisper 20250625 `whisper/tokenizer.py` (`Tokenizer`, `get_encoding`,
`get_tokenizer`). Token ids, decodes, special tokens, sot sequences, `non_speech_tokens` and the
word splitting are the same as upstream's (tests/test_tokenizer.py compares them).

Vocabulary layout (ids):
    0 .. n_ranks-1     byte-level BPE tokens (n_ranks = 50256 for `.en` models, 50257 multilingual)
    n_ranks            <|endoftext|>
    n_ranks + 1        <|startoftranscript|>
    + 1 ..             one token per language (99, or 100 for large-v3 which adds <|yue|>)
    then               <|translate|> <|transcribe|> <|startoflm|> <|startofprev|> <|nospeech|>
                       <|notimestamps|> and 1501 timestamps <|0.00|> .. <|30.00|> (0.02 s apart)
so n_vocab = 51864 (.en), 51865 (multilingual, 99 languages), 51866 (100 languages).

Deviations from upstream:
- The BPE ranks come from the weight package's HF `tokenizer.json` (`model.vocab`, GPT-2
  byte-to-unicode text decoded back to bytes) instead of upstream's bundled `.tiktoken` files.
  The special tokens are generated in upstream's order and every `added_tokens` entry of the file
  is checked against them (the file's `<|nocaptions|>` is upstream's `<|nospeech|>` and the `.en`
  file's `<|iw|>` is upstream's `<|he|>`, same ids;
  `.en` files lack the timestamp tokens, whose ids follow the others).
- Bad arguments raise `ValueError` with the fix: an unknown language (upstream: "Unsupported
  language"), a language the model does not have (upstream: a bare `tuple.index` error), a
  language other than English for an English-only model (upstream silently uses English), a task
  other than transcribe/translate (upstream silently translates); `to_language_token` of an
  absent language raises ValueError (upstream: KeyError).
- `all_language_tokens` is in id order (upstream's follows a `set`, so its order varies by process).
"""

from __future__ import annotations

import functools
import json
import string
from pathlib import Path

import tiktoken

LANGUAGES = {
    "en": "english", "zh": "chinese", "de": "german", "es": "spanish", "ru": "russian",
    "ko": "korean", "fr": "french", "ja": "japanese", "pt": "portuguese", "tr": "turkish",
    "pl": "polish", "ca": "catalan", "nl": "dutch", "ar": "arabic", "sv": "swedish",
    "it": "italian", "id": "indonesian", "hi": "hindi", "fi": "finnish", "vi": "vietnamese",
    "he": "hebrew", "uk": "ukrainian", "el": "greek", "ms": "malay", "cs": "czech",
    "ro": "romanian", "da": "danish", "hu": "hungarian", "ta": "tamil", "no": "norwegian",
    "th": "thai", "ur": "urdu", "hr": "croatian", "bg": "bulgarian", "lt": "lithuanian",
    "la": "latin", "mi": "maori", "ml": "malayalam", "cy": "welsh", "sk": "slovak",
    "te": "telugu", "fa": "persian", "lv": "latvian", "bn": "bengali", "sr": "serbian",
    "az": "azerbaijani", "sl": "slovenian", "kn": "kannada", "et": "estonian", "mk": "macedonian",
    "br": "breton", "eu": "basque", "is": "icelandic", "hy": "armenian", "ne": "nepali",
    "mn": "mongolian", "bs": "bosnian", "kk": "kazakh", "sq": "albanian", "sw": "swahili",
    "gl": "galician", "mr": "marathi", "pa": "punjabi", "si": "sinhala", "km": "khmer",
    "sn": "shona", "yo": "yoruba", "so": "somali", "af": "afrikaans", "oc": "occitan",
    "ka": "georgian", "be": "belarusian", "tg": "tajik", "sd": "sindhi", "gu": "gujarati",
    "am": "amharic", "yi": "yiddish", "lo": "lao", "uz": "uzbek", "fo": "faroese",
    "ht": "haitian creole", "ps": "pashto", "tk": "turkmen", "nn": "nynorsk", "mt": "maltese",
    "sa": "sanskrit", "lb": "luxembourgish", "my": "myanmar", "bo": "tibetan", "tl": "tagalog",
    "mg": "malagasy", "as": "assamese", "tt": "tatar", "haw": "hawaiian", "ln": "lingala",
    "ha": "hausa", "ba": "bashkir", "jw": "javanese", "su": "sundanese", "yue": "cantonese",
}  # order matters: it is the order of the language tokens

# language code by English name, plus upstream's aliases
TO_LANGUAGE_CODE = {
    **{name: code for code, name in LANGUAGES.items()},
    "burmese": "my", "valencian": "ca", "flemish": "nl", "haitian": "ht", "letzeburgesch": "lb",
    "pushto": "ps", "panjabi": "pa", "moldavian": "ro", "moldovan": "ro", "sinhalese": "si",
    "castilian": "es", "mandarin": "zh",
}

# same pre-tokenizer regex as GPT-2 / upstream
PAT_STR = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""

N_TIMESTAMPS = 1501  # <|0.00|> .. <|30.00|>
# languages written without spaces: words are split wherever the tokens decode to whole characters
NO_SPACE_LANGUAGES = frozenset({"zh", "ja", "th", "lo", "my", "yue"})
# names the HF files use for a special token upstream calls otherwise (same id)
_SPECIAL_ALIASES = {"<|nocaptions|>": "<|nospeech|>", "<|iw|>": "<|he|>"}


def gpt2_bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character map used by byte-level BPE vocab files.

    Printable Latin-1 bytes map to themselves; the other 68 bytes (controls, space, 0x7f-0xa0,
    0xad) map, in byte order, to the code points 256, 257, ...
    """
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
                 *range(ord("®"), ord("ÿ") + 1)]
    mapping = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in mapping:
            mapping[b] = chr(256 + extra)
            extra += 1
    return mapping


def special_token_names(num_languages: int) -> list[str]:
    """The special tokens in id order (they follow the BPE ranks), as upstream generates them."""
    return [
        "<|endoftext|>",
        "<|startoftranscript|>",
        *[f"<|{code}|>" for code in list(LANGUAGES)[:num_languages]],
        "<|translate|>",
        "<|transcribe|>",
        "<|startoflm|>",
        "<|startofprev|>",
        "<|nospeech|>",
        "<|notimestamps|>",
        *[f"<|{i * 0.02:.2f}|>" for i in range(N_TIMESTAMPS)],
    ]


def vocab_info(n_vocab: int) -> tuple[bool, int]:
    """(multilingual, num_languages) of a model with this `n_vocab`, derived as upstream does."""
    multilingual = n_vocab >= 51865
    num_languages = n_vocab - 51765 - int(multilingual)
    if not 1 <= num_languages <= len(LANGUAGES):
        raise ValueError(f"n_vocab={n_vocab} is not a Whisper vocabulary size "
                         f"(51864 for .en models, 51865 or 51866 for multilingual ones)")
    return multilingual, num_languages


@functools.lru_cache(maxsize=8)
def load_encoding(tokenizer_json: str | Path, num_languages: int = 99) -> tiktoken.Encoding:
    """A tiktoken `Encoding`: the BPE of an HF `tokenizer.json` plus Whisper's special tokens."""
    path = Path(tokenizer_json)
    if not path.is_file():
        raise FileNotFoundError(f"tokenizer file not found: {path}; pass the tokenizer.json "
                                f"that ships with the weights (WhisperWeights.tokenizer_json)")
    spec = json.loads(path.read_text(encoding="utf-8"))
    model = spec.get("model") or {}
    if model.get("type") != "BPE" or "vocab" not in model:
        raise ValueError(f"{path} is not a byte-level BPE tokenizer.json (model.type="
                         f"{model.get('type')!r}); expected the HF file shipped with Whisper "
                         f"weights")
    if not 1 <= num_languages <= len(LANGUAGES):
        raise ValueError(f"num_languages={num_languages}; Whisper models have 1..{len(LANGUAGES)}")

    added = {tok["content"]: tok["id"] for tok in spec.get("added_tokens", [])}
    byte_of = {ch: b for b, ch in gpt2_bytes_to_unicode().items()}
    ranks: dict[bytes, int] = {}
    for text, rank in model["vocab"].items():
        if text in added:  # <|endoftext|> is also a vocab entry in GPT-2 files; it is a special
            continue
        try:
            ranks[bytes(byte_of[ch] for ch in text)] = rank
        except KeyError as e:
            raise ValueError(f"{path}: vocab entry {text!r} has a character outside GPT-2's "
                             f"byte-to-unicode map; not a byte-level BPE vocabulary") from e
    if sorted(ranks.values()) != list(range(len(ranks))):
        raise ValueError(f"{path}: BPE ranks are not 0..{len(ranks) - 1} once specials are removed")

    specials = {name: len(ranks) + i for i, name in enumerate(special_token_names(num_languages))}
    if "<|startoftranscript|>" in added and "<|translate|>" in added:
        file_languages = added["<|translate|>"] - added["<|startoftranscript|>"] - 1
    else:
        file_languages = num_languages  # no language tokens listed: the ids check below suffices
    if file_languages != num_languages:
        raise ValueError(f"{path} has {file_languages} language tokens but num_languages="
                         f"{num_languages}; pass the num_languages of the model "
                         f"(vocab_info(n_vocab))")
    for text, token_id in added.items():
        name = _SPECIAL_ALIASES.get(text, text)
        if specials.get(name) != token_id:
            raise ValueError(f"{path}: added token {text!r} has id {token_id}, but Whisper's "
                             f"layout gives {specials.get(name)}; the file does not match "
                             f"Whisper's special-token layout")

    return tiktoken.Encoding(
        name=f"whisper-{path.parent.name}",
        pat_str=PAT_STR,
        mergeable_ranks=ranks,
        special_tokens=specials,
        explicit_n_vocab=len(ranks) + len(specials),
    )


def resolve_language(language: str) -> str:
    """A language code from a code or an English name (any case); ValueError names where to look."""
    key = language.lower()
    if key in LANGUAGES:
        return key
    if key in TO_LANGUAGE_CODE:
        return TO_LANGUAGE_CODE[key]
    raise ValueError(f"unknown language {language!r}; pass a code such as 'en', 'de', 'zh' or an "
                     f"English name such as 'german' (all codes: "
                     f"mlx_impl.whisper.tokenizer.LANGUAGES, names: TO_LANGUAGE_CODE)")


def _special_token(name: str) -> property:
    """A read-only `Tokenizer` property: the id of the special token `name`."""
    return property(lambda self: self.special_tokens[name], doc=f"The id of {name}.")


class Tokenizer:
    """Token ids of Whisper's vocabulary, its special tokens and its prompt (sot) sequence."""

    def __init__(self, encoding: tiktoken.Encoding, num_languages: int,
                 language: str | None = None, task: str | None = None):
        self.encoding = encoding
        self.num_languages = num_languages
        self.language = language
        self.task = task
        self.special_tokens: dict[str, int] = {
            name: encoding.encode_single_token(name) for name in encoding.special_tokens_set}

        sequence = [self.sot]
        if language is not None:
            sequence.append(self.to_language_token(language))
        if task is not None:
            if task not in ("transcribe", "translate"):
                raise ValueError(f"task={task!r}; pass 'transcribe' or 'translate'")
            sequence.append(self.transcribe if task == "transcribe" else self.translate)
        self.sot_sequence: tuple[int, ...] = tuple(sequence)

    def __repr__(self) -> str:
        return (f"Tokenizer(n_vocab={self.n_vocab}, num_languages={self.num_languages}, "
                f"language={self.language!r}, task={self.task!r})")

    # ---- encode / decode
    def encode(self, text: str, **kwargs) -> list[int]:
        return self.encoding.encode(text, **kwargs)

    def decode(self, token_ids: list[int], **kwargs) -> str:
        """Text of the tokens, timestamp tokens dropped."""
        return self.encoding.decode([t for t in token_ids if t < self.timestamp_begin], **kwargs)

    def decode_with_timestamps(self, token_ids: list[int], **kwargs) -> str:
        """Text of the tokens with timestamps written out, e.g. "<|1.08|>"."""
        return self.encoding.decode(token_ids, **kwargs)

    # ---- special tokens
    @property
    def n_vocab(self) -> int:
        return self.encoding.n_vocab

    eot = _special_token("<|endoftext|>")
    sot = _special_token("<|startoftranscript|>")
    transcribe = _special_token("<|transcribe|>")
    translate = _special_token("<|translate|>")
    sot_lm = _special_token("<|startoflm|>")
    sot_prev = _special_token("<|startofprev|>")
    no_speech = _special_token("<|nospeech|>")
    no_timestamps = _special_token("<|notimestamps|>")
    timestamp_begin = _special_token("<|0.00|>")

    @property
    def language_token(self) -> int:
        if self.language is None:
            raise ValueError("this tokenizer has no language set; build it with language=")
        return self.to_language_token(self.language)

    def to_language_token(self, language: str) -> int:
        token = self.special_tokens.get(f"<|{language}|>")
        if token is None:
            raise ValueError(f"language {language!r} is not in this model's {self.num_languages} "
                             f"languages; valid codes: tokenizer.all_language_codes")
        return token

    @functools.cached_property
    def all_language_tokens(self) -> tuple[int, ...]:
        return tuple(self.special_tokens[f"<|{code}|>"]
                     for code in list(LANGUAGES)[: self.num_languages])

    @functools.cached_property
    def all_language_codes(self) -> tuple[str, ...]:
        return tuple(list(LANGUAGES)[: self.num_languages])

    @property
    def sot_sequence_including_notimestamps(self) -> tuple[int, ...]:
        return (*self.sot_sequence, self.no_timestamps)

    @functools.cached_property
    def non_speech_tokens(self) -> tuple[int, ...]:
        """Tokens suppressed during decoding so that speaker tags and sound annotations
        ("♪♪♪", "( SPEAKING FOREIGN LANGUAGE )", "[DAVID] Hey") are not generated; basic
        punctuation stays allowed. Same set as upstream's."""
        symbols = list('"#()*+/:;<=>@[\\]^_`{|}~「」『』')
        symbols += ["<<", ">>", "<<<", ">>>", "--", "---", "-(", "-[", "('", '("', "((", "))",
                    "(((", ")))", "[[", "]]", "{{", "}}", "♪♪", "♪♪♪"]
        # Musical symbols (U+2640..U+267F) share the first two of their three UTF-8 bytes, so when
        # one is split into several tokens its first token is suppressed.
        musical = set("♩♪♫♬♭♮♯")
        # "-" and "'" are allowed between words but not starting one
        result = {self.encode(" -")[0], self.encode(" '")[0]}
        for symbol in symbols + sorted(musical):
            for tokens in (self.encode(symbol), self.encode(" " + symbol)):
                if len(tokens) == 1 or symbol in musical:
                    result.add(tokens[0])
        return tuple(sorted(result))

    # ---- word splitting (for word timestamps)
    def split_to_word_tokens(self, tokens: list[int]) -> tuple[list[str], list[list[int]]]:
        """(words, tokens of each word): at spaces, or at character boundaries for languages
        written without spaces (zh, ja, th, lo, my, yue)."""
        if self.language in NO_SPACE_LANGUAGES:
            return self.split_tokens_on_unicode(tokens)
        return self.split_tokens_on_spaces(tokens)

    def split_tokens_on_unicode(self, tokens: list[int]) -> tuple[list[str], list[list[int]]]:
        """Cut wherever the tokens so far decode to whole characters.

        A group ends at a token after which the decoded text has no U+FFFD, or whose U+FFFD is
        really in the full text (an invalid byte that no later token completes).
        """
        full = self.decode_with_timestamps(tokens)
        words: list[str] = []
        groups: list[list[int]] = []
        pending: list[int] = []
        offset = 0  # characters of `full` already assigned to words
        for token in tokens:
            pending.append(token)
            text = self.decode_with_timestamps(pending)
            bad = text.find("\ufffd")
            if bad < 0 or full[offset + bad] == "\ufffd":
                words.append(text)
                groups.append(pending)
                pending = []
                offset += len(text)
        return words, groups

    def split_tokens_on_spaces(self, tokens: list[int]) -> tuple[list[str], list[list[int]]]:
        """Join character groups into words: a new word starts at a special token, a leading
        space, or a punctuation-only group."""
        words: list[str] = []
        groups: list[list[int]] = []
        for sub, sub_tokens in zip(*self.split_tokens_on_unicode(tokens)):
            starts_word = (sub_tokens[0] >= self.eot or sub.startswith(" ")
                           or sub.strip() in string.punctuation or not words)
            if starts_word:
                words.append(sub)
                groups.append(sub_tokens)
            else:
                words[-1] += sub
                groups[-1].extend(sub_tokens)
        return words, groups


def get_tokenizer(tokenizer_json: str | Path, *, multilingual: bool, num_languages: int = 99,
                  language: str | None = None, task: str | None = None) -> Tokenizer:
    """Upstream's `get_tokenizer`, reading the vocabulary from `tokenizer_json`.

    Multilingual: language defaults to "en" and task to "transcribe", so sot_sequence is
    (sot, language, task). English-only: language must be None or English and is dropped, task is
    dropped, so sot_sequence is (sot,).
    """
    if language is not None:
        language = resolve_language(language)
    if multilingual:
        language = language or "en"
        task = task or "transcribe"
        if list(LANGUAGES).index(language) >= num_languages:
            raise ValueError(f"language {language!r} is not one of this model's {num_languages} "
                             f"languages (large-v3 models have 100 and add 'yue')")
    else:
        if language not in (None, "en"):
            raise ValueError(f"language={language!r} with an English-only model; pass "
                             f"language='en' or None, or use a multilingual model")
        language, task = None, None
    encoding = load_encoding(str(tokenizer_json), num_languages)
    return Tokenizer(encoding, num_languages, language=language, task=task)


def tokenizer_for_model(tokenizer_json: str | Path, n_vocab: int, *, language: str | None = None,
                        task: str | None = None) -> Tokenizer:
    """The tokenizer of a model with this `n_vocab` (multilingual and language count from it)."""
    multilingual, num_languages = vocab_info(n_vocab)
    tokenizer = get_tokenizer(tokenizer_json, multilingual=multilingual,
                              num_languages=num_languages, language=language, task=task)
    if tokenizer.n_vocab != n_vocab:
        raise ValueError(f"{tokenizer_json} gives {tokenizer.n_vocab} tokens but the model has "
                         f"n_vocab={n_vocab}; the tokenizer.json belongs to another model")
    return tokenizer
