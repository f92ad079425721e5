"""Decoding of one 30-s window: greedy, temperature sampling (best-of-N) and beam search.

Upstream: openai-whisper 20250625, `whisper/decoding.py`. Same options, logit filters, candidate
ranking and results; written for MLX:
- The decoder runs once per step on only the new tokens (self-attention KV cache); the audio
  features and the cross-attention keys/values are computed once per window.
- Log-softmax, argmax, sampling and the logit filters run in MLX on the (batch, vocab) logits.
  The token history stays on the host as Python lists (the timestamp rules and beam search read
  it), so each step makes one host sync: the chosen tokens (greedy/sampling) or the top
  `beam_size + 1` candidates per beam (beam search). Greedy decoding and sampling queue the next
  decoder step on the chosen tokens before that sync (`DecodingTask.pipeline`), so building a
  step's graph on the host overlaps the previous step's computation.

Deviations:
- Sampling uses `mx.random.categorical` with an explicit key from `DecodingOptions.seed`, so sampled
  tokens differ from torch's global RNG; the sampling semantics (softmax(logits / T), best-of-N
  ranked by length-normalised log probability) are the same. Greedy and beam search are
  deterministic and give upstream's tokens. With `DecodingOptions.noise` the draw is instead
  `mlx_impl.layers.sampling.sample(logits, noise((rows, vocab)), T, "gumbel")`, i.e.
  argmax(logits / T + g): a reference that adds the same Gumbel array g draws the same tokens
  (the parity check replays it into openai-whisper: reference/whisper.py `sampling_noise`).
- No `fp16` option: the precision is the model's dtype (`load(..., dtype=)`).
- Beam search and best-of-N share one encoder pass per audio; the cross-attention K/V are
  repeated per beam/sample.
- `DecodingResult` has no `audio_features` field; `decode` accepts encoder output in place of a
  mel, so a caller that needs the features computes them once and passes them in.
- `decode` takes the tokenizer (`tokenizer=`): ours is built from the weights' tokenizer.json, not
  from files bundled with the package.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
import dataclasses
import zlib
from dataclasses import dataclass, field

import mlx.core as mx
import numpy as np

from mlx_impl.layers import sampling
from mlx_impl.layers.activations import logsumexp
from mlx_impl.whisper.tokenizer import Tokenizer, resolve_language
from weights.whisper_audio import CHUNK_LENGTH


def compression_ratio(text: str) -> float:
    """zlib compression ratio of the UTF-8 text; repetitive (looping) output compresses well."""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data))


def log_softmax(x: mx.array) -> mx.array:
    # `logsumexp` of mlx_impl.layers: on the CPU it avoids MLX's scalar exp (two of these per
    # greedy step over 51865 logits took 2.5 ms of whisper-base's ~20 ms step; now ~0.1 ms)
    x = x.astype(mx.float32)
    return x - logsumexp(x, axis=-1, keepdims=True)


def task_tokenizer(tokenizer: Tokenizer, multilingual: bool, language: str | None,
                   task: str | None) -> Tokenizer:
    """The same vocabulary with the start-of-transcript sequence for `language` and `task`
    (upstream's `get_tokenizer(multilingual, language=, task=)`); English-only models have no
    language or task tokens."""
    if not multilingual:
        if language is not None and resolve_language(language) != "en":
            raise ValueError(f"language={language!r} with an English-only model; pass "
                             "language='en' or None, or use a multilingual model")
        language, task = None, None
    else:
        language = resolve_language(language) if language is not None else "en"
        task = task or "transcribe"
    if (tokenizer.language, tokenizer.task) == (language, task):
        return tokenizer
    return Tokenizer(tokenizer.encoding, tokenizer.num_languages, language=language, task=task)


@dataclass(frozen=True)
class DecodingOptions:
    # "transcribe" (X -> X) or "translate" (X -> English)
    task: str = "transcribe"
    # language code of the audio ("en", "de", ...); None detects it (multilingual models)
    language: str | None = None
    # sampling temperature; 0 is greedy or, with beam_size, beam search
    temperature: float = 0.0
    # most tokens to sample; None means n_text_ctx // 2
    sample_len: int | None = None
    # independent samples when temperature > 0; the most likely one is kept
    best_of: int | None = None
    # beams in beam search (temperature 0 only)
    beam_size: int | None = None
    # beam search patience (arxiv:2204.05424): finished candidates wanted = beam_size * patience
    patience: float | None = None
    # Google NMT length penalty alpha for ranking candidates; None divides by length instead
    length_penalty: float | None = None
    # text or tokens of the previous context, fed after <|startofprev|>
    prompt: str | list[int] | None = None
    # text or tokens that start the current window's output
    prefix: str | list[int] | None = None
    # token ids (list or comma-separated) to suppress; "-1" means tokenizer.non_speech_tokens
    suppress_tokens: str | list[int] | tuple[int, ...] | None = "-1"
    # suppress a blank or <|endoftext|> as the first sampled token
    suppress_blank: bool = True
    # sample text tokens only, after <|notimestamps|>
    without_timestamps: bool = False
    # latest allowed first timestamp in seconds; None leaves it free
    max_initial_timestamp: float | None = 1.0
    # seed of the sampling RNG (temperature > 0); equal seeds give equal samples
    seed: int = 0
    # injected randomness for sampling (temperature > 0): called once per sampled step with the
    # logits' shape (rows, n_vocab), returns float32 Gumbel(0, 1) noise of that shape (e.g.
    # `sampling.draw_noise(rng, "gumbel", shape)`); None draws from MLX's RNG (`seed`)
    noise: Callable[[tuple[int, ...]], np.ndarray] | None = None


@dataclass(frozen=True)
class DecodingResult:
    language: str  # language code used (given or detected)
    language_probs: dict[str, float] | None = None  # detection probabilities, when detected
    tokens: list[int] = field(default_factory=list)  # sampled tokens, without special tokens
    text: str = ""
    avg_logprob: float = np.nan  # sum of token log probabilities / (len(tokens) + 1)
    no_speech_prob: float = np.nan  # P(<|nospeech|>) at the first step, at <|startoftranscript|>
    temperature: float = np.nan
    compression_ratio: float = np.nan


def detect_language(model, mel_or_features: mx.array, tokenizer: Tokenizer):
    """Most likely language token and per-language probabilities, from one decoder step.

    `mel_or_features`: mel (n_frames, n_mels) / (B, n_frames, n_mels) or encoder output
    (B, n_audio_ctx, n_audio_state). Returns (token ids (B,), [dict code -> probability]); a single
    2-D mel gives a single token and dict.
    """
    if not model.dims.is_multilingual or not tokenizer.num_languages:
        raise ValueError("this model is English-only and has no language tokens, so it cannot "
                         "detect the language; pass language='en' or use a multilingual model")
    single = mel_or_features.ndim == 2
    x = mel_or_features[None] if single else mel_or_features
    if x.shape[-2:] != (model.dims.n_audio_ctx, model.dims.n_audio_state):
        x = model.encoder(x)
    sot = mx.full((x.shape[0], 1), tokenizer.sot, dtype=mx.int32)
    logits = model.decoder(sot, x)[0][:, 0]  # (B, V)
    lang_tokens = list(tokenizer.all_language_tokens)
    keep = np.zeros(logits.shape[-1], dtype=bool)
    keep[lang_tokens] = True
    logits = mx.where(mx.array(keep), logits, -mx.inf)
    best = mx.argmax(logits, axis=-1)
    probs = np.array(mx.softmax(logits, axis=-1)[:, mx.array(lang_tokens)])
    codes = tokenizer.all_language_codes
    dicts = [{c: float(p[j]) for j, c in enumerate(codes)} for p in probs]
    best = [int(t) for t in best.tolist()]
    return (best[0], dicts[0]) if single else (best, dicts)


# ---- logit filters: (logits (B, V) float32, token history per row) -> filtered logits ----------

def _banned_mask(n_vocab: int, rows: list[list[tuple[int, int]]]) -> mx.array | None:
    """Boolean (B, V) mask, True inside any of each row's [lo, hi) token intervals (built on the
    host: a few slices, where the (B, K, V) comparisons in MLX took ~0.4 ms per step).
    `mx.where(mask, -inf, logits)` bans them, as upstream's `logits[mask] = -inf` (nan too); on
    such interval masks it takes 0.05 ms on (1, 51865)."""
    if not any(rows):
        return None
    mask = np.zeros((len(rows), n_vocab), dtype=bool)
    for i, r in enumerate(rows):
        for lo, hi in r:
            mask[i, lo:hi] = True
    return mx.array(mask)


def _token_mask(n_vocab: int, ids) -> mx.array:
    """Boolean (V,) mask, True at the token ids `ids`."""
    mask = np.zeros(n_vocab, dtype=bool)
    mask[list(ids)] = True
    return mx.array(mask)


class LogitFilter(ABC):
    @abstractmethod
    def apply(self, logits: mx.array, tokens: list[list[int]]) -> mx.array:
        """Return `logits` (B, V) with disallowed tokens set to -inf."""


class SuppressBlank(LogitFilter):
    """At the first sampled position, forbid a leading blank and <|endoftext|>."""

    def __init__(self, tokenizer: Tokenizer, sample_begin: int):
        self.sample_begin = sample_begin
        self.ids = sorted(set(tokenizer.encode(" ") + [tokenizer.eot]))

    def apply(self, logits, tokens):
        if len(tokens[0]) != self.sample_begin:
            return logits
        return mx.where(_token_mask(logits.shape[-1], self.ids), -mx.inf, logits)


class SuppressTokens(LogitFilter):
    def __init__(self, suppress_tokens, n_vocab: int):
        self.mask = _token_mask(n_vocab, suppress_tokens)

    def apply(self, logits, tokens):
        return mx.where(self.mask, -mx.inf, logits)


class ApplyTimestampRules(LogitFilter):
    """Timestamps come in pairs (except right before EOT), never decrease, and the first one is
    at most `max_initial_timestamp_index`; when the timestamps' total probability beats every
    text token, a timestamp must come next."""

    def __init__(self, tokenizer: Tokenizer, sample_begin: int,
                 max_initial_timestamp_index: int | None):
        self.tokenizer = tokenizer
        self.sample_begin = sample_begin
        self.max_initial_timestamp_index = max_initial_timestamp_index
        self._force_masks: mx.array | None = None  # (2, V), see apply

    def apply(self, logits, tokens):
        tok = self.tokenizer
        tb, eot, n_vocab = tok.timestamp_begin, tok.eot, logits.shape[-1]
        rows = []
        for seq in tokens:
            sampled = seq[self.sample_begin:]
            banned = []
            if tok.no_timestamps is not None:
                banned.append((tok.no_timestamps, tok.no_timestamps + 1))
            last_was_ts = len(sampled) >= 1 and sampled[-1] >= tb
            penultimate_was_ts = len(sampled) < 2 or sampled[-2] >= tb
            if last_was_ts:
                # after a pair (or a first timestamp), text; after a lone one, a timestamp or EOT
                banned.append((tb, n_vocab) if penultimate_was_ts else (0, eot))
            stamps = [t for t in sampled if t >= tb]
            if stamps:
                # no decreasing timestamps; a new segment must have nonzero length
                last = stamps[-1] if last_was_ts and not penultimate_was_ts else stamps[-1] + 1
                banned.append((tb, last))
            if len(seq) == self.sample_begin:
                banned.append((0, tb))  # the output starts with a timestamp
                if self.max_initial_timestamp_index is not None:
                    banned.append((tb + self.max_initial_timestamp_index + 1, n_vocab))
            rows.append(banned)
        mask = _banned_mask(n_vocab, rows)
        if mask is not None:
            logits = mx.where(mask, -mx.inf, logits)

        logprobs = log_softmax(logits)
        timestamp_logprob = logsumexp(logprobs[:, tb:], axis=-1)
        max_text_logprob = mx.max(logprobs[:, :tb], axis=-1)
        force_timestamp = timestamp_logprob > max_text_logprob  # (B,)
        # per row, mask 0 (nothing banned) or mask 1 (every text token banned)
        if self._force_masks is None or self._force_masks.shape[-1] != n_vocab:
            self._force_masks = _banned_mask(n_vocab, [[], [(0, tb)]])
        return mx.where(self._force_masks[force_timestamp.astype(mx.int32)], -mx.inf, logits)


# ---- token decoders -----------------------------------------------------------------------------

class TokenDecoder(ABC):
    def reset(self) -> None:
        """Forget the state of a previous window."""

    @abstractmethod
    def update(self, tokens: list[list[int]], logits: mx.array, sum_logprobs: np.ndarray,
               cache) -> tuple[list[list[int]], bool]:
        """Append the next token to each row (in place on `sum_logprobs`, float32 (B,));
        return the new rows and whether decoding is complete."""

    @abstractmethod
    def finalize(self, tokens: list[list[list[int]]], sum_logprobs: np.ndarray):
        """Candidates per audio (lists of token lists ending in EOT) and their log probs."""


class GreedyDecoder(TokenDecoder):
    """Argmax at temperature 0, else one sample from softmax(logits / temperature) per row."""

    def __init__(self, temperature: float, eot: int, seed: int = 0,
                 noise: Callable[[tuple[int, ...]], np.ndarray] | None = None):
        self.temperature = temperature
        self.eot = eot
        self.seed = seed
        self.noise = noise  # DecodingOptions.noise
        self.key = None

    def reset(self):
        self.key = mx.random.key(self.seed)

    def propose(self, logits: mx.array) -> tuple[mx.array, mx.array]:
        """The next token of every row and its log probability, as lazy arrays (B,), (B,)."""
        if self.temperature == 0:
            next_tokens = mx.argmax(logits, axis=-1)
        elif self.noise is not None:  # argmax(logits / T + g), g injected (replayable)
            g = self.noise(tuple(logits.shape))
            next_tokens = sampling.sample(logits, g, self.temperature, "gumbel")
        else:
            self.key, step_key = mx.random.split(self.key)
            next_tokens = mx.random.categorical(logits / self.temperature, key=step_key)
        # the chosen token's log probability, logit - logsumexp (log_softmax at one index)
        chosen = mx.take_along_axis(logits.astype(mx.float32), next_tokens[:, None], axis=-1)
        current = chosen[:, 0] - logsumexp(logits.astype(mx.float32), axis=-1)
        return next_tokens, current

    def commit(self, tokens, proposal, sum_logprobs):
        """Read a `propose` result on the host (the one sync of a step) and append it; rows that
        have ended get <|endoftext|> again whatever was proposed."""
        next_tokens, current = proposal
        mx.eval(next_tokens, current)
        current = np.array(current, dtype=np.float32)
        active = np.array([seq[-1] != self.eot for seq in tokens])
        sum_logprobs[active] += current[active]
        new = [seq + [int(t) if a else self.eot]
               for seq, t, a in zip(tokens, next_tokens.tolist(), active)]
        return new, all(seq[-1] == self.eot for seq in new)

    def update(self, tokens, logits, sum_logprobs, cache):
        return self.commit(tokens, self.propose(logits), sum_logprobs)

    def finalize(self, tokens, sum_logprobs):
        # every candidate ends with at least one EOT
        return ([[seq + [self.eot] for seq in group] for group in tokens],
                [[float(x) for x in row] for row in sum_logprobs])


class BeamSearchDecoder(TokenDecoder):
    """Keep the `beam_size` most likely unfinished sequences per audio; stop once
    `round(beam_size * patience)` sequences have ended, per audio."""

    def __init__(self, beam_size: int, eot: int, patience: float | None = None):
        self.beam_size = beam_size
        self.eot = eot
        self.patience = patience or 1.0
        self.max_candidates = round(beam_size * self.patience)
        self.finished: list[dict] | None = None
        if self.max_candidates <= 0:
            raise ValueError(f"beam_size={beam_size} with patience={patience} keeps no candidates")

    def reset(self):
        self.finished = None

    def update(self, tokens, logits, sum_logprobs, cache):
        n_rows = len(tokens)
        if n_rows % self.beam_size:
            raise ValueError(f"{n_rows} rows are not a multiple of beam_size={self.beam_size}")
        n_audio = n_rows // self.beam_size
        if self.finished is None:
            self.finished = [{} for _ in range(n_audio)]

        k = self.beam_size + 1
        logprobs = log_softmax(logits)
        top = mx.argpartition(-logprobs, kth=k - 1, axis=-1)[:, :k]
        top_lp = mx.take_along_axis(logprobs, top, axis=-1)
        top, top_lp = np.array(top), np.array(top_lp, dtype=np.float32)

        next_tokens, sources, new_finished = [], [], []
        for i in range(n_audio):
            scores, source, finished = {}, {}, {}
            # candidates of every beam, each beam's in descending log probability
            for j in range(self.beam_size):
                row = i * self.beam_size + j
                order = sorted(range(k), key=lambda c: (-top_lp[row, c], top[row, c]))
                for c in order:
                    seq = tuple(tokens[row] + [int(top[row, c])])
                    scores[seq] = float(np.float32(sum_logprobs[row]) + top_lp[row, c])
                    source[seq] = row
            saved = 0
            for seq in sorted(scores, key=scores.get, reverse=True):
                if seq[-1] == self.eot:
                    finished[seq] = scores[seq]
                else:
                    sum_logprobs[len(next_tokens)] = scores[seq]
                    next_tokens.append(list(seq))
                    sources.append(source[seq])
                    saved += 1
                    if saved == self.beam_size:
                        break
            new_finished.append(finished)

        if sources != list(range(len(sources))):
            cache.reorder(mx.array(sources, dtype=mx.int32))
        for previous, newly in zip(self.finished, new_finished):
            for seq in sorted(newly, key=newly.get, reverse=True):
                if len(previous) >= self.max_candidates:
                    break
                previous[seq] = newly[seq]
        done = all(len(f) >= self.max_candidates for f in self.finished)
        return next_tokens, done

    def finalize(self, tokens, sum_logprobs):
        # too few finished: add the unfinished beams, most likely first
        for i, finished in enumerate(self.finished):
            if len(finished) < self.beam_size:
                for j in np.argsort(sum_logprobs[i], kind="stable")[::-1]:
                    finished[tuple(tokens[i][j] + [self.eot])] = float(sum_logprobs[i][j])
                    if len(finished) >= self.beam_size:
                        break
        return ([[list(seq) for seq in f] for f in self.finished],
                [list(f.values()) for f in self.finished])


class MaximumLikelihoodRanker:
    """Pick the candidate with the highest log probability divided by its length, or by the
    Google NMT penalty ((5 + length) / 6) ** alpha when `length_penalty` is set."""

    def __init__(self, length_penalty: float | None):
        self.length_penalty = length_penalty

    def rank(self, tokens: list[list[list[int]]], sum_logprobs: list[list[float]]) -> list[int]:
        def score(logprob, length):
            if self.length_penalty is None:
                return logprob / length
            return logprob / ((5 + length) / 6) ** self.length_penalty

        return [int(np.argmax([score(lp, len(t)) for t, lp in zip(ts, lps)]))
                for ts, lps in zip(tokens, sum_logprobs)]


# ---- one window ---------------------------------------------------------------------------------

class DecodingTask:
    pipeline = True  # queue each greedy/sampling step before reading the last (_main_loop)

    def __init__(self, model, options: DecodingOptions, tokenizer: Tokenizer):
        self.model = model
        self.options = options = self._verify_options(options)
        self.tokenizer = tok = task_tokenizer(tokenizer, model.dims.is_multilingual,
                                              options.language, options.task)
        self.n_group = options.beam_size or options.best_of or 1
        self.n_ctx = model.dims.n_text_ctx
        self.sample_len = options.sample_len or model.dims.n_text_ctx // 2

        self.sot_sequence = (tok.sot_sequence_including_notimestamps
                             if options.without_timestamps else tok.sot_sequence)
        self.initial_tokens = self._initial_tokens()
        self.sample_begin = len(self.initial_tokens)
        self.sot_index = self.initial_tokens.index(tok.sot)

        self.ranker = MaximumLikelihoodRanker(options.length_penalty)
        if options.beam_size is not None:
            self.decoder: TokenDecoder = BeamSearchDecoder(options.beam_size, tok.eot,
                                                           options.patience)
        else:
            self.decoder = GreedyDecoder(options.temperature, tok.eot, options.seed,
                                         options.noise)

        n_vocab = model.dims.n_vocab
        self.logit_filters: list[LogitFilter] = []
        if options.suppress_blank:
            self.logit_filters.append(SuppressBlank(tok, self.sample_begin))
        if options.suppress_tokens:
            self.logit_filters.append(SuppressTokens(self._suppress_tokens(), n_vocab))
        if not options.without_timestamps:
            precision = CHUNK_LENGTH / model.dims.n_audio_ctx  # 0.02 s per timestamp step
            max_initial = None
            if options.max_initial_timestamp:
                max_initial = round(options.max_initial_timestamp / precision)
            self.logit_filters.append(ApplyTimestampRules(tok, self.sample_begin, max_initial))

    @staticmethod
    def _verify_options(options: DecodingOptions) -> DecodingOptions:
        if options.task not in ("transcribe", "translate"):
            raise ValueError(f"task must be 'transcribe' or 'translate', got {options.task!r}")
        if options.beam_size is not None and options.best_of is not None:
            raise ValueError("beam_size and best_of can't be given together; beam search is "
                             "for temperature 0, best_of for temperature > 0")
        if options.temperature == 0 and options.best_of is not None:
            raise ValueError("best_of needs temperature > 0 (greedy decoding has one result)")
        if options.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {options.temperature}")
        if options.patience is not None and options.beam_size is None:
            raise ValueError("patience requires beam_size")
        if options.length_penalty is not None and not 0 <= options.length_penalty <= 1:
            raise ValueError("length_penalty (alpha) must be between 0 and 1, got "
                             f"{options.length_penalty}")
        for name in ("beam_size", "best_of", "sample_len"):
            value = getattr(options, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        return options

    def _initial_tokens(self) -> tuple[int, ...]:
        tokens = list(self.sot_sequence)
        if prefix := self.options.prefix:
            prefix_tokens = (self.tokenizer.encode(" " + prefix.strip())
                             if isinstance(prefix, str) else list(prefix))
            if self.sample_len is not None:
                # upstream's slice; note [-0:] keeps everything, as upstream's does
                prefix_tokens = prefix_tokens[-(self.n_ctx // 2 - self.sample_len):]
            tokens = tokens + prefix_tokens
        if prompt := self.options.prompt:
            prompt_tokens = (self.tokenizer.encode(" " + prompt.strip())
                             if isinstance(prompt, str) else list(prompt))
            tokens = [self.tokenizer.sot_prev] + prompt_tokens[-(self.n_ctx // 2 - 1):] + tokens
        return tuple(tokens)

    def _suppress_tokens(self) -> tuple[int, ...]:
        tok = self.tokenizer
        suppress = self.options.suppress_tokens
        if isinstance(suppress, str):
            suppress = [int(t) for t in suppress.split(",")]
        suppress = list(suppress)
        if -1 in suppress:
            suppress = [t for t in suppress if t >= 0] + list(tok.non_speech_tokens)
        suppress += [tok.transcribe, tok.translate, tok.sot, tok.sot_prev, tok.sot_lm]
        if tok.no_speech is not None:
            suppress.append(tok.no_speech)  # its probability is reported separately
        bad = [t for t in suppress if not 0 <= t < self.model.dims.n_vocab]
        if bad:
            raise ValueError(f"suppress_tokens {bad} are outside the vocabulary "
                             f"(0..{self.model.dims.n_vocab - 1})")
        return tuple(sorted(set(suppress)))

    def _audio_features(self, mel: mx.array) -> mx.array:
        dims = self.model.dims
        if mel.shape[-2:] == (dims.n_audio_ctx, dims.n_audio_state):
            return mel  # already encoded
        return self.model.encoder(mel)

    def _main_loop(self, audio_features: mx.array, tokens: list[list[int]]):
        n_rows = len(tokens)
        sum_logprobs = np.zeros(n_rows, dtype=np.float32)
        no_speech_probs = [np.nan] * n_rows
        cache = self.model.decoder.new_cache(audio_features)
        if self.n_group > 1:
            cache.cross = [(mx.repeat(k, self.n_group, axis=0), mx.repeat(v, self.n_group, axis=0))
                           for k, v in cache.cross]
        # Greedy decoding and sampling queue each step before the host reads the previous one
        # (below); beam search reorders the cache by the host's choice first, so it cannot.
        pipelined = self.pipeline and isinstance(self.decoder, GreedyDecoder)
        logits = None  # the queued step's logits
        fed = 0  # tokens of each row already in the KV cache
        for i in range(self.sample_len):
            if logits is None:
                new = mx.array([seq[fed:] for seq in tokens], dtype=mx.int32)
                logits, cache = self.model.decoder(new, None, cache=cache)
            fed = len(tokens[0])
            if i == 0 and self.tokenizer.no_speech is not None:
                probs = mx.softmax(logits[:, self.sot_index], axis=-1)
                no_speech_probs = probs[:, self.tokenizer.no_speech].tolist()
            step = logits[:, -1]
            for logit_filter in self.logit_filters:
                step = logit_filter.apply(step, tokens)
            logits = None
            if not pipelined:
                tokens, completed = self.decoder.update(tokens, step, sum_logprobs, cache)
            else:
                proposal = self.decoder.propose(step)
                if i + 1 < self.sample_len and fed + 1 <= self.n_ctx:
                    # Queue the next decoder step on the proposed (still lazy) tokens, then read
                    # them: MLX computes that step while the host appends the tokens and builds
                    # the next step's graph (whisper-base on the CPU: ~3.5 ms of Python per step
                    # otherwise in series). Rows that have ended feed their proposal instead of
                    # <|endoftext|>; what those rows compute next is never read. At the end of a
                    # window the queued step is discarded with the cache.
                    logits, cache = self.model.decoder(proposal[0][:, None].astype(mx.int32),
                                                       None, cache=cache)
                    mx.async_eval(*proposal, logits)
                tokens, completed = self.decoder.commit(tokens, proposal, sum_logprobs)
            if completed or len(tokens[0]) > self.n_ctx:
                break
        return tokens, sum_logprobs, no_speech_probs

    def run(self, mel: mx.array) -> list[DecodingResult]:
        """mel (B, n_frames, n_mels) or audio features (B, n_audio_ctx, n_audio_state)."""
        tok = self.tokenizer
        self.decoder.reset()
        audio_features = self._audio_features(mel)
        n_audio = audio_features.shape[0]
        tokens = [list(self.initial_tokens) for _ in range(n_audio)]

        languages = [self.options.language] * n_audio
        language_probs = [None] * n_audio
        if self.options.language is None:
            lang_tokens, language_probs = detect_language(self.model, audio_features, tok)
            languages = [max(p, key=p.get) for p in language_probs]
            for seq, t in zip(tokens, lang_tokens):
                seq[self.sot_index + 1] = t

        tokens = [list(seq) for seq in tokens for _ in range(self.n_group)]
        tokens, sum_logprobs, no_speech_probs = self._main_loop(audio_features, tokens)
        no_speech_probs = no_speech_probs[:: self.n_group]

        grouped = [tokens[i * self.n_group:(i + 1) * self.n_group] for i in range(n_audio)]
        candidates, cand_logprobs = self.decoder.finalize(
            grouped, sum_logprobs.reshape(n_audio, self.n_group))
        candidates = [[seq[self.sample_begin: seq.index(tok.eot, self.sample_begin)]
                       for seq in group] for group in candidates]
        selected = self.ranker.rank(candidates, cand_logprobs)

        results = []
        for i, s in enumerate(selected):
            seq, lp = candidates[i][s], cand_logprobs[i][s]
            text = tok.decode(seq).strip()
            results.append(DecodingResult(
                language=languages[i], language_probs=language_probs[i], tokens=seq,
                text=text, avg_logprob=lp / (len(seq) + 1), no_speech_prob=no_speech_probs[i],
                temperature=self.options.temperature, compression_ratio=compression_ratio(text)))
        return results


def decode(model, mel: mx.array, options: DecodingOptions = DecodingOptions(), *,
           tokenizer: Tokenizer, **overrides) -> DecodingResult | list[DecodingResult]:
    """Decode 30-s window(s): mel (n_frames, n_mels) or (B, n_frames, n_mels), channels-last.

    Keyword `overrides` replace fields of `options`. A 2-D mel gives one result, else a list.
    """
    single = mel.ndim == 2
    if single:
        mel = mel[None]
    if overrides:
        options = dataclasses.replace(options, **overrides)
    results = DecodingTask(model, options, tokenizer).run(mel)
    return results[0] if single else results
