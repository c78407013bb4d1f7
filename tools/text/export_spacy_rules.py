#!/usr/bin/env python3
"""Exports spaCy's English tokenizer rules as data for caption-text.

Writes crates/caption-text/data/spacy-en.json: the prefix, suffix and infix patterns and the URL
pattern of `spacy.blank("en").tokenizer`, its 1,347 special cases (tokenizer exceptions, ORTH only),
and the code points Python's `str.isspace()` accepts. caption-text reimplements the tokenizer's
algorithm in Rust; these tables are its rules (spaCy is MIT-licensed).

Python `re` and Rust's regex syntax differ, so each pattern is parsed with Python's own regex
parser and written back out in a form whose meaning is the same under fancy-regex:
- `\\d`, `\\w`, `\\s` (and negations) become explicit classes of exactly the code points Python's
  `re` matches with them (they differ from Unicode's definitions at the edges);
- every literal is written as `\\x{...}`, so nothing is read as a set operation or nested class;
- Python's `$` (end, or before a final newline) becomes `(?=\\n?\\z)`.

Usage: tools/.venv/bin/python tools/text/export_spacy_rules.py
"""

import json
import re
import sys
from pathlib import Path

try:
    import re._parser as sre_parse
    import re._constants as sre_constants
except ImportError:  # Python < 3.11
    import sre_parse
    import sre_constants

import spacy

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "crates" / "caption-text" / "data" / "spacy-en.json"
MAX = sys.maxunicode


def ranges(predicate):
    """Code point ranges [lo, hi] where predicate(chr(c)) holds."""
    out = []
    start = None
    for c in range(MAX + 2):
        inside = c <= MAX and predicate(chr(c))
        if inside and start is None:
            start = c
        elif not inside and start is not None:
            out.append((start, c - 1))
            start = None
    return out


CATEGORY_RANGES = {}
for name, pattern in [("DIGIT", r"\d"), ("WORD", r"\w"), ("SPACE", r"\s")]:
    compiled = re.compile(pattern)
    CATEGORY_RANGES[name] = ranges(lambda ch, compiled=compiled: compiled.fullmatch(ch) is not None)


def char(c):
    return f"\\x{{{c:X}}}"


def class_body(items):
    parts = []
    for lo, hi in items:
        parts.append(char(lo) if lo == hi else f"{char(lo)}-{char(hi)}")
    return "".join(parts)


def category(code, inside_class):
    name = str(code).replace("CATEGORY_", "")
    negate = name.startswith("NOT_")
    base = name.replace("NOT_", "")
    if base not in CATEGORY_RANGES:
        raise ValueError(f"unsupported category {code}")
    body = class_body(CATEGORY_RANGES[base])
    if negate:
        return f"[^{body}]"
    return body if inside_class else f"[{body}]"


def emit(parsed):
    return "".join(emit_node(op, av) for op, av in parsed)


def emit_node(op, av):
    c = sre_constants
    if op is c.LITERAL:
        return char(av)
    if op is c.NOT_LITERAL:
        return f"[^{char(av)}]"
    if op is c.ANY:
        return "[^\\n]"
    if op is c.IN:
        negate = False
        parts = []
        for item_op, item_av in av:
            if item_op is c.NEGATE:
                negate = True
            elif item_op is c.LITERAL:
                parts.append(char(item_av))
            elif item_op is c.RANGE:
                parts.append(f"{char(item_av[0])}-{char(item_av[1])}")
            elif item_op is c.CATEGORY:
                parts.append(category(item_av, inside_class=True))
            else:
                raise ValueError(f"unsupported class item {item_op}")
        return f"[{'^' if negate else ''}{''.join(parts)}]"
    if op is c.BRANCH:
        return "(?:" + "|".join(emit(branch) for branch in av[1]) + ")"
    if op is c.SUBPATTERN:
        group, add_flags, del_flags, pattern = av
        if add_flags & ~re.UNICODE or del_flags:
            raise ValueError(f"unsupported inline flags {add_flags} {del_flags}")
        return "(?:" + emit(pattern) + ")"
    if op in (c.MAX_REPEAT, c.MIN_REPEAT):
        lo, hi, pattern = av
        hi_text = "" if hi is c.MAXREPEAT else str(hi)
        quantifier = f"{{{lo},{hi_text}}}"
        if op is c.MIN_REPEAT:
            quantifier += "?"
        return "(?:" + emit(pattern) + ")" + quantifier
    if op is c.AT:
        return {
            c.AT_BEGINNING: "^",
            c.AT_BEGINNING_STRING: "\\A",
            c.AT_END: "(?=\\n?\\z)",
            c.AT_END_STRING: "\\z",
        }[av]
    if op in (c.ASSERT, c.ASSERT_NOT):
        direction, pattern = av
        kind = {(c.ASSERT, 1): "?=", (c.ASSERT, -1): "?<=", (c.ASSERT_NOT, 1): "?!", (c.ASSERT_NOT, -1): "?<!"}[
            (op, direction)
        ]
        return f"({kind}" + emit(pattern) + ")"
    if op is c.CATEGORY:
        return category(av, inside_class=False)
    raise ValueError(f"unsupported regex node {op}")


def translate(pattern, flags):
    if flags & ~(re.UNICODE):
        raise ValueError(f"unsupported flags {flags}")
    return emit(sre_parse.parse(pattern, flags))


def main():
    nlp = spacy.blank("en")
    tokenizer = nlp.tokenizer
    assert tokenizer.token_match is None, "English has no token_match"
    patterns = {}
    for name, function in [
        ("prefix", tokenizer.prefix_search),
        ("suffix", tokenizer.suffix_search),
        ("infix", tokenizer.infix_finditer),
        ("url", tokenizer.url_match),
    ]:
        compiled = function.__self__
        patterns[name] = translate(compiled.pattern, compiled.flags)
    rules = {}
    for string, substrings in sorted(tokenizer.rules.items()):
        orths = [s[65] if 65 in s else s["ORTH"] for s in substrings]
        assert "".join(orths) == string
        rules[string] = orths
    data = {
        "spacy_version": spacy.__version__,
        "language": "en",
        "source": 'spacy.blank("en").tokenizer, exported by tools/text/export_spacy_rules.py',
        "faster_heuristics": bool(tokenizer.faster_heuristics),
        "prefix": patterns["prefix"],
        "suffix": patterns["suffix"],
        "infix": patterns["infix"],
        "url": patterns["url"],
        "whitespace": ranges(str.isspace),
        "special_cases": rules,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(data, ensure_ascii=False, indent=0) + "\n")
    print(f"wrote {OUT} ({OUT.stat().st_size / 1e3:.0f} kB, {len(rules)} special cases)")


if __name__ == "__main__":
    main()
