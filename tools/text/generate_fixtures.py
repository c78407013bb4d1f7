#!/usr/bin/env python3
"""spaCy tokenizer and vocabulary fixtures for caption-text, from the real spaCy.

Writes into crates/caption-text/tests/fixtures/:
- flickr8k_tokens.json.gz: spaCy's tokens (text, trailing-space flag) for all 40,455 captions of
  ../shared/data/flickr8k/captions.txt, in file order;
- hard_cases.json: thousands of hand-written and generated strings covering every rule family
  (contractions and every other special case, possessives, hyphens, numbers, currency, units,
  percentages, times, abbreviations, URLs, e-mails, emoticons, quotes, brackets, Unicode
  punctuation, accents, tabs, newlines, runs of spaces), each with spaCy's tokens;
- flickr8k_vocab.json: the PyTorch original's vocabulary built from captions.txt at threshold 5
  (`Vocabulary.build_vocabulary` over `[tok.text.lower() for tok in spacy_eng.tokenizer(text)]`),
  and the frequency-ordered one.

Usage: tools/.venv/bin/python tools/text/generate_fixtures.py [--shared ../shared]
"""

import argparse
import csv
import gzip
import json
import random
from collections import Counter
from pathlib import Path

import spacy

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "crates" / "caption-text" / "tests" / "fixtures"


def tokens_of(tokenizer, text):
    doc = tokenizer(text)
    return [t.text for t in doc], "".join("1" if t.whitespace_ else "0" for t in doc)


def hard_cases(tokenizer, captions):
    rng = random.Random(20261126)
    cases = []
    add = cases.append
    # Every special case alone and in context.
    for special in tokenizer.rules:
        add(special)
        add(f"({special})")
        add(f'I said "{special}", then left.')
    families = {
        "possessives": ["dog's bone", "James' car", "the dogs' toys", "it's", "its", "Charles’s", "O'Neil's",
                        "the children's", "'s", "s'", "’s", "DOG'S", "rock 'n' roll", "'90s", "'tis"],
        "hyphens": ["well-known", "state-of-the-art", "e-mail", "A-1", "3-4", "x--y", "a—b", "a–b", "-a", "a-",
                    "--", "---", "a---b", "co-operate", "T-shirt", "x-ray", "5-year-old", "re-enter", "a-b-c-d",
                    "ab~cd", "1-2", "a-2", "2-a", "hi—there", "yes–no"],
        "numbers": ["1,000", "1,000,000", "3.14", "0.5", ".5", "1.000,50", "10km", "5kg", "10.5m", "1/2", "3x",
                    "2nd", "1st", "21st", "+5", "-5", "5+", "5-", "1e10", "#1", "No.1", "2+2=4", "3*4", "2^8",
                    "10-20", "100mph", "20km/h", "5MB", "3GB", "12°C", "12°F.", "98.6°", "1m²", "5cm³", "60kg.",
                    "6ft", "5'11\"", "0.001", "1,5", "42.", "7.5.", "8%.", "-3.2", "(5)", "[10]", "3.1.2",
                    "v1.2.3", "1990s", "24/7", "9/11", "1-800-555-0199", "+1 (555) 010-9999"],
        "currency": ["$5", "$5.00", "5$", "US$5", "C$10", "A$3", "€3", "3€", "£10", "¥100", "₹50", "$", "($5)",
                     "$5.", "5€.", "฿20", "₩1000", "$1,000,000", "-$5", "$-5", "USD5", "5USD"],
        "percentages": ["50%", "50 %", "%50", "(50%)", "50%.", "12.5%", "100%!", "%", "٪5"],
        "times": ["10:30", "10:30:45", "10:30am", "10.30", "10h30", "10a.m.", "10 p.m.", "3pm", "3 PM",
                  "noon:", "12:00.", "(10:30)", "at 5:00pm.", "a.m.", "p.m", "9am-5pm"],
        "abbreviations": ["Mr. Smith", "Mrs. Jones", "Dr. Who", "St. Louis", "e.g. this", "i.e. that",
                          "etc.", "U.S.", "U.K.", "U.S.A.", "Jan. 5", "Feb.", "vs.", "approx.", "No. 5",
                          "Inc.", "Ltd.", "Jr.", "a.k.a.", "Ph.D.", "A.B.C.", "ABC.", "abc.", "A.", "z.",
                          "Calif.", "Mass.", "Mt. Everest", "Sgt. Pepper", "Prof.", "p.s.", "P.S."],
        "urls": ["http://example.com", "https://www.example.com/path?q=1&b=2#frag", "www.example.com",
                 "example.com", "ftp://files.example.org/a.txt", "http://localhost:8080", "192.168.1.1",
                 "http://10.0.0.1/x", "(http://example.com)", "http://example.com.", "user@example.com",
                 "mailto:user@example.com", "john.doe@mail.example.co.uk", "see www.google.com, then",
                 "https://en.wikipedia.org/wiki/Dog_(disambiguation)", "example.co.uk/page",
                 "http://example.com/a-b_c.d", "<http://example.com>", "\"http://example.com\"",
                 "HTTP://EXAMPLE.COM", "a.b", "a.b.c", "file.txt", "readme.md.", "x@y", "@user", "#hashtag"],
        "emoticons": [":)", ":-)", ":(", ";)", ":D", "xD", ":P", "<3", "</3", ":'(", "^_^", "o_O", "(:", "):",
                      "=)", ":-))", "hello:)", "(:)", ":))", "a:)", ":)b", ":-P", ":p", ":/", ":|", "<33",
                      "XD", "8)", ";-)", "(^_^)", ":-D!", "=D", "-_-", ">:(", ":o)"],
        "quotes": ['"hello"', "'hi'", "“quoted”", "‘single’", "«guillemets»", "„German“", "``tex''", "'''",
                   '""', "\"'nested'\"", "'a", "a'", "’tis", "don’t", "can’t", "I’m", "‚low‘", "‹x›"],
        "brackets": ["(a)", "[b]", "{c}", "<d>", "((x))", "([{y}])", "(a", "a)", "f(x)", "a(b)c", "[1]", "{}",
                     "()", "a[b]", "（全角）", "【x】", "《y》", "「z」"],
        "unicode punctuation": ["…", "...", "....", "¿Qué?", "¡Hola!", "。", "、", "word…", "wait...what",
                                "a—b", "§5", "¶", "•", "·", "a·b", "※", "✓", "→", "a→b", "★★★", "♥", "©2024",
                                "®", "™", "°", "±5", "×", "÷", "¬", "‰", "†", "‡", "‽", "⁉", "¦", "؟", "،"],
        "accents": ["café", "naïve", "Zürich", "São Paulo", "façade", "crème brûlée", "Ελληνικά", "Москва",
                    "日本語", "한국어", "مرحبا", "ÀÉÎÕÜ", "Ångström", "Øre", "straße", "ĲSSEL", "e\u0301",
                    "Σίσυφος", "ΑΣ.", "İstanbul", "ǅ", "ﬁne"],
        "whitespace": ["a\tb", "a\nb", "a\r\nb", "a  b", "a   b", " a", "a ", "  a  ", "\ta", "a\u00a0b",
                       "a\u2003b", "a \n b", "\n", "", " ", "  ", "\t", "\x1c", "a\x1fb", "a\u200bb", "a \t b",
                       "a\n\n\nb", " \n ", "a\u3000b", "a\u2028b", "a\x0bb", "a\x0cb", "a\x85b", "end.\n",
                       "tab\tat\tend\t", "a  ", "  ", "a \u00a0 b"],
    }
    for family in families.values():
        for text in family:
            add(text)
            add(text + ".")
            add("(" + text + ")")
            add("A " + text + " here")
    pool = list("abcdeXYZ0123456789 .,;:!?'\"()[]{}<>-–—/\\@#$%^&*_+=~`|’“”‘«»…€£¥°²ñéü\t\n") + ["n't", "'s", "U.S.", "http://", ".com", "www.", "  ", ":)"]
    for _ in range(1500):
        add("".join(rng.choice(pool) for _ in range(rng.randint(1, 25))))
    for caption in rng.sample(captions, 400):
        variant = rng.choice([
            caption.upper(), caption.capitalize(), f'"{caption}"', caption.replace(" ", "  "),
            caption.replace(" ", "\t"), caption + "!!", f"({caption})", caption.replace("a ", "a-"),
            caption.replace(" .", "."), caption.replace(" ", "\n", 1),
        ])
        add(variant)
    # Tokens on either side of whitespace: spaCy's special-case matcher runs over the whole text, so a
    # match across a space (which never merges) still keeps an overlapping match from merging.
    neighbours = [")", "(", ":", ":)", "):", "(:", ":(", "'", "''", "'s", "e.g.", "x", "a.m.", "<3", "=", ";)",
                  "-", "...", "U.S.", "can't", "Mr.", "''x", ")x", ":)x", ":)e.g.", "x:)"]
    for left in neighbours:
        for right in neighbours:
            add(f"{left} {right}")
    fragments = neighbours + ["dog", "Dog's", "1,000", "3.14", "$5", "50%", "10:30am", ":-(", "[", "]", '"', "`",
                              "--", "—", "…", "!", "?", ",", ";", "/", "&", "#", "é", "中文", "😀", "👍🏽", "°C",
                              "http://x.com/a?b=c", "a@b.com", "’s", "n't", "“", "”", "\t", "  ", "\u00a0",
                              "I'm", "y'all", "gonna", "'90s", "well-known", "½", "İ", "ς", "Я"]
    for _ in range(1500):
        pieces = []
        for _ in range(rng.randint(1, 10)):
            pieces.append(rng.choice(fragments))
            if rng.random() < 0.6:
                pieces.append(" ")
        add("".join(pieces))
    seen = set()
    unique = [c for c in cases if not (c in seen or seen.add(c))]
    return [dict(zip(("tokens", "ws"), tokens_of(tokenizer, text)), text=text) for text in unique]


def original_vocabulary(tokenizer, captions, threshold=5):
    """The PyTorch original's Vocabulary.build_vocabulary, verbatim."""
    frequencies = {}
    itos = ["<PAD>", "<SOS>", "<EOS>", "<UNK>"]
    for sentence in captions:
        for word in [tok.text.lower() for tok in tokenizer(sentence)]:
            frequencies[word] = frequencies.get(word, 0) + 1
            if frequencies[word] == threshold:
                itos.append(word)
    frequency = sorted((w for w, c in frequencies.items() if c >= threshold), key=lambda w: (-frequencies[w], w))
    return itos, ["<PAD>", "<SOS>", "<EOS>", "<UNK>"] + frequency, {w: frequencies[w] for w in itos[4:]}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", default=str(ROOT.parent / "shared"))
    args = parser.parse_args()
    tokenizer = spacy.blank("en").tokenizer
    with open(Path(args.shared) / "data" / "flickr8k" / "captions.txt", newline="", encoding="utf-8") as f:
        captions = [row["caption"] for row in csv.DictReader(f)]
    OUT.mkdir(parents=True, exist_ok=True)
    version = {"spacy": spacy.__version__}

    flickr = [list(tokens_of(tokenizer, c)) for c in captions]
    with gzip.open(OUT / "flickr8k_tokens.json.gz", "wt", encoding="utf-8", compresslevel=9) as f:
        f.write(json.dumps({"versions": version, "captions": flickr}, ensure_ascii=False, separators=(",", ":")))
    print("flickr8k tokens:", sum(len(t) for t, _ in flickr), "tokens for", len(flickr), "captions")

    cases = hard_cases(tokenizer, captions)
    (OUT / "hard_cases.json").write_text(
        json.dumps({"versions": version, "cases": cases}, ensure_ascii=False, indent=0) + "\n", encoding="utf-8"
    )
    print("hard cases:", len(cases))

    seed, frequency, counts = original_vocabulary(tokenizer, captions)
    (OUT / "flickr8k_vocab.json").write_text(
        json.dumps({"versions": version, "threshold": 5, "seed": seed, "frequency": frequency, "counts": counts},
                   ensure_ascii=False, indent=0) + "\n", encoding="utf-8")
    print("vocabulary:", len(seed), "ids")


if __name__ == "__main__":
    main()
