"""Greedy decoding for Parakeet: CTC (argmax per frame) and transducers (RNN-T, TDT).

Upstream: transformers 5.24.0 `ParakeetForCTC.generate` and `generation_parakeet.py`
(`ParakeetRNNTGenerationMixin`, `ParakeetTDTGenerationMixin`), reproduced step for step for one
clip, so tokens and durations are identical to upstream `generate()` output:
- the sequence starts with `decoder_start_token_id`, then one emission per step, blanks included;
  `durations` starts with 0, then the frame advance after each step;
- the prediction network runs on the first step (on the start token, from a zero state) and then
  only after a non-blank emission; after a blank its previous output is reused;
- the joint reads encoder frame min(frame, T' - 1);
- RNN-T: a blank advances one frame; after `max_symbols_per_step` consecutive non-blank
  emissions at one frame the frame advances anyway;
- TDT: the frame advances by the predicted duration; a blank with duration 0 advances 1;
- decoding stops when the frame reaches the clip's valid encoder length, or when the sequence
  (start token included) reaches `max_symbols_per_step * T'`, T' counting padding frames.
Deviations: the TDT token is the argmax over the token logits only; upstream takes the argmax
over the concatenated token+duration logits (a duration index can then come out as a "token",
which upstream's own embedding lookup cannot take); the two agree whenever the best token logit
beats every duration logit, and the reference adapter refuses weights where they don't. The
TDT duration is `durations[argmax]` (upstream uses the argmax index itself; equal for the
released (0, 1, 2, 3, 4)).
"""

from __future__ import annotations

from dataclasses import dataclass

import mlx.core as mx
import numpy as np

from mlx_impl.parakeet.model import ParakeetForTransducer


def ctc_greedy(logits: np.ndarray, valid: np.ndarray, blank: int) -> np.ndarray:
    """Best class per frame, (B, T', V) -> (B, T') int64, `blank` on padding frames
    (upstream fills them with pad_token_id, which is the CTC blank)."""
    ids = np.argmax(logits, axis=-1).astype(np.int64)
    return np.where(valid, ids, blank)


def ctc_collapse(ids, blank: int) -> list[tuple[int, int, int]]:
    """(token, first frame, last frame) for each run of one non-blank id in a greedy path."""
    out: list[tuple[int, int, int]] = []
    prev = None
    for t, i in enumerate(int(x) for x in ids):
        if i != blank and i == prev:
            tok, start, _ = out[-1]
            out[-1] = (tok, start, t)
        elif i != blank:
            out.append((i, t, t))
        prev = i
    return out


@dataclass(frozen=True)
class TransducerResult:
    tokens: np.ndarray  # (S + 1,) int64: start token, then every step's emission (blanks too)
    durations: np.ndarray  # (S + 1,) int64: 0, then the frame advance after each step
    joint: np.ndarray  # (S, n_out) float32: joint outputs (token logits, then duration logits)

    def emissions(self, blank: int) -> list[tuple[int, int, int]]:
        """(token, encoder frame, duration in frames) for each non-blank emission."""
        frames = np.concatenate([[0], np.cumsum(self.durations[1:])])  # frame before step k
        return [(int(t), int(frames[k - 1]), int(self.durations[k]))
                for k, t in enumerate(self.tokens) if k > 0 and t != blank]


def transducer_greedy(model: ParakeetForTransducer, enc: mx.array, valid_length: int
                      ) -> TransducerResult:
    """Greedy RNN-T / TDT decoding of one clip. enc (1, T', D) projected encoder output;
    valid_length: encoder frames that belong to the clip (<= T')."""
    cfg = model.config
    if enc.ndim != 3 or enc.shape[0] != 1:
        raise ValueError(f"transducer_greedy decodes one clip: expected enc (1, T', D), got "
                         f"{enc.shape}")
    n_frames = enc.shape[1]
    tdt = cfg.durations is not None
    blank, vocab = cfg.blank_token_id, cfg.vocab_size
    max_len = cfg.max_symbols_per_step * n_frames
    tokens, durations, joints = [cfg.decoder_start_token_id], [0], []
    state = model.decoder.initial_state(1, enc.dtype)
    dec = None
    frame, symbols = 0, 0
    while frame < valid_length and len(tokens) < max_len:
        if dec is None or tokens[-1] != blank:
            dec, state = model.decoder.step(mx.array([tokens[-1]]), state)
        out = model.joint(enc[0, min(frame, n_frames - 1)], dec[0])
        out_np = np.array(out.astype(mx.float32))
        joints.append(out_np)
        tok = int(np.argmax(out_np[:vocab]))
        if tdt:
            dur = int(cfg.durations[int(np.argmax(out_np[vocab:]))])
            if tok == blank and dur == 0:
                dur = 1
        else:
            symbols = 0 if tok == blank else symbols + 1
            force = symbols >= cfg.max_symbols_per_step
            dur = int(tok == blank or force)
            if dur:
                symbols = 0
        frame += dur
        tokens.append(tok)
        durations.append(dur)
    return TransducerResult(np.array(tokens, dtype=np.int64), np.array(durations, dtype=np.int64),
                            np.stack(joints) if joints else np.zeros((0, model.joint.head.weight.shape[0]),
                                                                     np.float32))
