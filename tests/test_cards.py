"""Porting cards (`python -m parity cards`, parity/cards.py): the committed cards are what the
generator renders today, every registered family has one, and the key-map matcher tells
renames, transposes, splits and dropped keys apart."""

from __future__ import annotations

import json

import numpy as np
import pytest

from parity import cards

REGENERATE = "regenerate with `python -m parity cards` and commit docs/models/"


def test_committed_cards_are_up_to_date(tmp_path):
    cards.write_cards(out=tmp_path, log=lambda *_: None)
    problems = cards.stale_cards(tmp_path)
    assert not problems, f"stale porting cards ({REGENERATE}): " + "; ".join(problems)


def test_stale_cards_names_an_edited_card(tmp_path):
    rendered, committed = tmp_path / "new", tmp_path / "old"
    cards.write_cards(out=rendered, only=["dac"], log=lambda *_: None)
    committed.mkdir()
    text = (rendered / "dac.md").read_text()
    (committed / "dac.md").write_text(text.replace("transpose(0, 2, 1)", "transpose(0, 1, 2)"))
    (committed / "gone.md").write_text("# a family no longer registered\n")
    assert cards.stale_cards(rendered, committed) == [
        "dac.md: differs from the generator's output",
        "gone.md: no registered family renders it"]


def test_every_registered_family_has_a_card_with_notes_and_key_map():
    from parity import registry

    fams = cards.families()
    assert sum(len(s) for s in fams.values()) == len(registry.SPECS)
    missing = []
    for fam in fams:
        for path, fix in ((cards.OUT / f"{fam}.md", REGENERATE),
                          (cards.OUT / cards.NOTES / f"{fam}.md",
                           f"write its sections {list(cards.NOTE_SECTIONS)}, then {REGENERATE}"),
                          (cards.OUT / cards.KEYMAPS / f"{fam}.json",
                           f"run `python -m parity cards --keymaps --only {fam}` (torch)")):
            if not path.is_file():
                missing.append(f"{path.relative_to(cards.ROOT)} ({fix})")
    assert not missing, "family without a complete card: " + "; ".join(missing)
    index = (cards.OUT / "README.md").read_text()
    assert all(f"]({fam}.md)" in index for fam in fams)


def test_every_card_lists_its_specs_taps_and_tolerances():
    for fam, specs in cards.families().items():
        text = (cards.OUT / f"{fam}.md").read_text()
        for spec in specs:
            assert f"`{spec.name}`" in text, f"{fam}.md does not list {spec.name}"
            for o in spec.tolerance("float32").overrides:
                assert f"`{o.pattern}`" in text, f"{fam}.md lacks {spec.name}'s override {o.pattern}"
            for tap in spec.taps:
                assert f"`{cards.fold(tap)}`" in text, f"{fam}.md lacks tap {tap}"
        for section in ("## Architecture at a glance", "## Checkpoint key map",
                        "## Numerics that bit us", "## Tolerances"):
            assert section in text, f"{fam}.md has no {section!r}"


def test_fold_numbers_layer_indices_in_order():
    assert cards.fold("encoder.blocks.3.attn") == "encoder.blocks.{i}.attn"
    assert cards.fold("decoder.model.2.block.1") == "decoder.model.{i}.block.{j}"
    assert cards.fold("quantizer.codes.0") == "quantizer.codes.{i}"
    assert cards.fold("encoder.conv1") == "encoder.conv1"  # a digit inside a name is no index


def test_match_keys_tells_renames_transposes_splits_and_dropped_keys():
    rng = np.random.default_rng(0)
    conv = rng.standard_normal((4, 3, 5)).astype(np.float32)  # torch (out, in, k)
    fused = rng.standard_normal((6, 3)).astype(np.float32)
    ones = np.ones(3, np.float32)  # equal values under two names: the name tail decides
    src = {"enc.conv.weight": conv, "mlp.gate_up_proj.weight": fused,
           "a.0.attn.q_proj.weight": rng.standard_normal((3, 3)).astype(np.float32),
           "enc_tf.ln.weight": ones, "dec_tf.ln.weight": ones.copy(),
           "head.istft.window": np.hanning(8).astype(np.float32)}
    dst = {"enc.conv.weight": conv.transpose(0, 2, 1), "mlp.gate_proj.weight": fused[:3],
           "mlp.up_proj.weight": fused[3:], "a.0.attn.query.weight": src["a.0.attn.q_proj.weight"],
           "[1] dec_tf.ln.weight": ones, "[1] enc_tf.ln.weight": ones}
    rows, dropped = cards.match_keys(src, dst)
    got = {r["ours"]: (r["upstream"], r["change"]) for r in rows}
    assert got == {
        "enc.conv.weight": ("enc.conv.weight", "transpose(0, 2, 1)"),
        "mlp.gate_proj.weight": ("mlp.gate_up_proj.weight", "rows 0:3 of (6, 3)"),
        "mlp.up_proj.weight": ("mlp.gate_up_proj.weight", "rows 3:6 of (6, 3)"),
        "a.0.attn.query.weight": ("a.0.attn.q_proj.weight", "unchanged"),
        "[1] dec_tf.ln.weight": ("dec_tf.ln.weight", "unchanged"),
        "[1] enc_tf.ln.weight": ("enc_tf.ln.weight", "unchanged")}
    assert dropped == ["head.istft.window"]


def test_match_keys_refuses_a_parameter_from_nowhere():
    with pytest.raises(cards.CardError, match="cannot tell which checkpoint key 'x'"):
        cards.match_keys({"a": np.zeros(3, np.float32)}, {"x": np.arange(4, dtype=np.float32)})


def test_notes_need_exactly_the_two_sections(tmp_path):
    path = tmp_path / "fam.md"
    path.write_text("## Architecture\n\nblocks\n\n## Numerics that bit us\n\n- one\n")
    assert cards.read_notes(path) == {"Architecture": "blocks", "Numerics that bit us": "- one"}
    path.write_text("## Architecture\n\nblocks\n\n## Numerics\n\n- one\n")
    with pytest.raises(cards.CardError, match="missing \\['Numerics that bit us'\\]"):
        cards.read_notes(path)
    assert cards.read_notes(tmp_path / "absent.md") is None


def test_whisper_key_map_is_what_its_converter_does():
    """The committed Whisper key map equals a fresh probe (whisper-test-tiny's weights are
    drawn in numpy: no torch needed); the other families' probes build torch checkpoints."""
    pytest.importorskip("mlx.core")
    from parity import registry

    committed = json.loads((cards.OUT / cards.KEYMAPS / "whisper.json").read_text())
    assert [p["spec"] for p in committed["probes"]] == ["whisper-test-tiny"]
    assert cards.probe_keymap(registry.get("whisper-test-tiny")) == committed["probes"][0]


def test_a_later_variant_shows_only_the_keys_the_first_lacks():
    def probe(spec, rows, dropped=()):
        return {"spec": spec, "converters": [{
            "converter": "mlx_impl.fam.convert.convert", "n_upstream": len(rows) + len(dropped),
            "n_ours": len(rows), "dropped": list(dropped),
            "rows": [{"ours": o, "upstream": u, "change": c, "shape": [1]} for o, u, c in rows]}]}

    enc = [("enc.layers.0.w", "enc.layers.0.w", "transpose(0, 2, 1)"),
           ("enc.layers.1.w", "enc.layers.1.w", "transpose(0, 2, 1)")]
    km = {"generator": "test", "probes": [
        probe("fam-ctc-test-tiny", enc + [("head.w", "ctc_head.w", "unchanged")]),
        probe("fam-tdt-test-tiny", enc + [("joint.w", "joint.w", "unchanged")], ["joint.win"]),
        probe("fam-rnnt-test-tiny", enc)]}
    text = "\n".join(cards._render_keymap("fam", km, cards.OUT))
    first, tdt = text.split("#### `fam-tdt-test-tiny`")
    tdt, rnnt = tdt.split("#### `fam-rnnt-test-tiny`")
    assert "| `enc.layers.{i}.w` | (same name) | transpose(0, 2, 1) | 2 |" in first
    assert "| `head.w` | `ctc_head.w` | unchanged | 1 |" in first
    assert "enc.layers" not in tdt and "Passed through (same name, same values, same layout): " \
        "`joint.w`." in tdt and "`joint.win`" in tdt
    assert rnnt.strip() == "No key beyond those above."


def test_a_golden_with_other_taps_than_its_spec_is_flagged(monkeypatch):
    from parity import registry

    spec = registry.get("dac-test-tiny")
    manifest = cards.golden_manifest(spec)
    assert "lists other taps" not in "\n".join(cards._render_taps([spec]))
    taps = manifest["cases"][0]["taps"]
    manifest["cases"][0]["taps"] = [taps[1], taps[0], *taps[2:]]
    monkeypatch.setattr(cards, "golden_manifest", lambda s: manifest)
    text = "\n".join(cards._render_taps([spec]))
    assert "**The golden of `dac-test-tiny` lists other taps than its spec**" in text


def test_every_repository_path_the_notes_cite_exists():
    import re

    cited = re.compile(r"`((?:mlx_impl|parity|reference|weights|benchmarks|tests|docs|scripts)"
                       r"/[^`\s:]*)(?:::(\w+))?")
    missing = []
    for notes in sorted((cards.OUT / cards.NOTES).glob("*.md")):
        for path, name in cited.findall(notes.read_text()):
            target = cards.ROOT / path
            if not target.exists():
                missing.append(f"{notes.name}: {path}")
            elif name and name not in target.read_text():
                missing.append(f"{notes.name}: {path}::{name}")
    assert not missing, "the notes cite what is not in the repository: " + "; ".join(missing)
