"""Text-quality checks for a prose section the small model wrote, and a conservative repair of a cut ending.

:func:`check_text` reports, as short human-readable problems (:class:`TextQuality`):

- **empty**: a text of fewer than three words (in scripts written without spaces, each letter counts as a word);
- **complete**: the last line must finish a sentence (``.``, ``!``, ``?``, ``…`` and their CJK, Devanagari and
  Arabic forms, possibly followed by closing brackets, quotes, emphasis, a ``[1]`` citation, an emoji or a
  parenthetical) or be a list item, a short ``Label: value`` line or a bold ``**Label: value**`` with content that
  does not end on a connector ("and", "of", ",", ":" ...). A Markdown heading, an ellipsis that trails off or a
  non-final abbreviation ("e.g.") is never an ending. A completion cut at its token limit (``truncated``) must
  end with sentence punctuation;
- **empty list items**: a line that is only a list marker ("2.", "3)", "-", "*", "**") anywhere in the text, a
  line of markers only ("1. 2. 3."), and a trailing horizontal rule;
- **scripts**: letters from a script the request does not use (Latin is always allowed; Kana allows Han). Digits,
  punctuation, currency signs, symbols and emoji belong to no script, and a lone Greek letter ("Δ", "β") is a
  symbol, not foreign text;
- **placeholders**: bracketed stand-ins ("[Insert name]", "[Company Name]", "<name>", "{company}"), "XYZ",
  "ABC Company/Corp/Inc/Ltd", "Lorem ipsum", "TBD"/"TBA"/"TBC", "John Doe", "$XX"/"X%", fill-in blanks ("____"),
  lines that are only "..." or "etc.", and lists of "Item 1", "Item 2". Citations ("[1]"), links ("[text](url)"),
  checkboxes, HTML tags, "Q1", "B2B" and "ABC analysis" are normal prose.

:func:`repair` drops what a cut completion leaves at its end (trailing empty list items, rules and ellipses, then
an unfinished last sentence or list item, unless fewer than three words would remain) and trailing whitespace;
it only ever returns a prefix of its input.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

# --- scripts -----------------------------------------------------------------------------------------------------

_SCRIPT_ALIASES = {
    "CJK": "Han",
    "IDEOGRAPHIC": "Han",
    "HIRAGANA": "Kana",
    "KATAKANA": "Kana",
    "KATAKANA-HIRAGANA": "Kana",
    "HANGUL": "Hangul",
}
_LETTER_WORDS = frozenset({"LETTER", "SYLLABLE", "SYLLABICS", "CHARACTER", "LIGATURE", "IDEOGRAPH"})
_CASE_WORDS = frozenset({"SMALL", "CAPITAL"})
_COMMON_LETTERS = frozenset({"MICRO SIGN", "FEMININE ORDINAL INDICATOR", "MASCULINE ORDINAL INDICATOR"})
_MIN_WORDS = 3
_UNSPACED = frozenset({"Han", "Kana", "Thai", "Lao", "Khmer", "Myanmar", "Tibetan"})


@lru_cache(maxsize=8192)
def _letter_script(ch: str) -> str | None:
    """The script of a letter (``None`` for anything else, and for letter-like symbols such as "ℓ" or "µ")."""
    if not ch.isalpha() or unicodedata.name(ch, "") in _COMMON_LETTERS:
        return None
    base = next((c for c in unicodedata.normalize("NFKC", ch) if c.isalpha()), None)  # "Ａ" -> "A", "ﬁ" -> "f"
    name = unicodedata.name(base, "") if base is not None else ""
    if not name or name.startswith("MODIFIER LETTER"):
        return None
    words = name.split()
    if words[0] in _SCRIPT_ALIASES:
        return _SCRIPT_ALIASES[words[0]]
    for i, word in enumerate(words):
        if word in _LETTER_WORDS or word.startswith("IDEOGRAPH-"):
            head = [w for w in words[:i] if w not in _CASE_WORDS]
            return " ".join(head).title() if head else None
    return None  # a symbol named without "LETTER" ("TURNED CAPITAL F")


def scripts_of(text: str) -> set[str]:
    """The Unicode scripts of the letters in ``text`` ("Latin", "Cyrillic", "Greek", "Han", "Kana", "Hangul",
    "Arabic", ...); digits, punctuation, symbols, currency signs and emoji have none."""
    return {s for s in map(_letter_script, text) if s is not None}


def _foreign_letters(text: str, allowed: set[str]) -> tuple[dict[str, int], str]:
    """Counts of the letters of ``text`` outside ``allowed``, by script, and the first such run of letters."""
    counts: dict[str, int] = {}
    sample = ""
    run: list[str] = []
    run_script: str | None = None

    def flush() -> None:
        nonlocal sample
        if run_script is None or run_script in allowed or (run_script == "Greek" and len(run) == 1):
            return
        counts[run_script] = counts.get(run_script, 0) + len(run)
        sample = sample or "".join(run[:20])

    for ch in text:
        script = _letter_script(ch)
        if script != run_script:
            flush()
            run, run_script = [], script
        run.append(ch)
    flush()
    return counts, sample


def _word_count(text: str) -> int:
    """Words with a letter; in a script written without spaces each letter counts as one."""
    n = 0
    for token in re.findall(r"\w+", text):
        unspaced = sum(1 for ch in token if _letter_script(ch) in _UNSPACED)
        n += unspaced or any(ch.isalpha() for ch in token)
    return n


# --- lines: list markers, headings, endings ----------------------------------------------------------------------

_MARKER = r"(?:[-*+•–—]|\d{1,3}(?:\.\d{1,3})*[.)]|\(\d{1,3}\)|[A-Za-z][.)]|[ivxIVX]{1,5}[.)])"
_ITEM = re.compile(rf"^{_MARKER}\s+(?P<content>\S.*)$")
_DANGLING = re.compile(rf"^(?:{_MARKER}|#{{1,6}})[\s*_:.\-–—]*$")
_MARKERS_ONLY = re.compile(r"^(?:\d{1,3}[.)]\s*){2,}$")
_RULE = re.compile(r"^(?:[-*_]\s*){3,}$")
_ELLIPSIS_LINE = re.compile(rf"^(?:{_MARKER}\s*)?(?:\.{{2,}}|…+|etc\.?|and so on\.?)$", re.I)
_HEADING = re.compile(r"^#{1,6}\s+\S")
_BOLD_LINE = re.compile(r"^(?:\*\*|__)(?P<inner>[^*_].*?)(?:\*\*|__)\s*:?$")
_LABEL = re.compile(r"^(?P<label>[^:\n]{1,40}):\s+(?P<value>\S.*)$")

_SENTENCE_END = (".", "!", "?", "…", "。", "！", "？", "।", "؟")
_CLOSERS = ")]}\"'”’»」』）】〉》*_` "
_CITATION_TAIL = re.compile(r"\[\d{1,3}(?:\s*[,\-–]\s*\d{1,3})*\]$")
_STRIPPED_TAIL = frozenset({"So", "Sk", "Cf", "Mn", "Me", "Cn", "Co"})  # emoji, variation selectors, marks
_SENTENCE_END_IN = re.compile(r"(?:[.!?…।؟][)\]\"'”’»*_]*(?=\s)|[。！？][」』）】*_]*)")
_NON_FINAL = frozenset({"e.g", "i.e", "vs", "approx", "incl", "esp", "cf", "viz", "mr", "mrs", "ms", "dr", "fig"})
_CONNECTOR_WORDS = """a an the and or but nor of to in on at by for from with into onto than that which who whose as via
per our their its his her your is are was were be been will would shall should can could may might must has have this
these those such including plus versus both either neither between among through"""
_CONNECTORS = frozenset(_CONNECTOR_WORDS.split())


def _filler(line: str) -> str | None:
    """What a content-less line is: "marker" ("2.", "-", "**"), "markers" ("1. 2. 3."), "rule" ("---"),
    "ellipsis" ("...", "etc."); ``None`` for a line with content."""
    if _RULE.match(line):
        return "rule"
    if _MARKERS_ONLY.match(line):
        return "markers"
    if _DANGLING.match(line):
        return "marker"
    if _ELLIPSIS_LINE.match(line):
        return "ellipsis"
    return None


def _quote(text: str, limit: int = 40) -> str:
    """``text`` quoted, or its last words within ``limit`` characters after "..."."""
    text = " ".join(text[-4 * limit :].split()) if len(text) > 4 * limit else " ".join(text.split())
    if len(text) <= limit:
        return f"'{text}'"
    tail = text[-limit:]
    if text[-limit - 1] != " " and " " in tail[:-1]:
        tail = tail.split(" ", 1)[1]  # no partial first word
    return f"'...{tail}'"


def _strip_tail(s: str) -> str:
    """``s`` without trailing whitespace, emoji and other symbols, and ``[1]`` citations."""
    end = len(s)
    while True:
        before = end
        while end and (s[end - 1].isspace() or unicodedata.category(s[end - 1]) in _STRIPPED_TAIL):
            end -= 1
        citation = _CITATION_TAIL.search(s, 0, end)
        end = citation.start() if citation is not None else end
        if end == before:
            return s[:end]


def _ends_sentence(s: str) -> bool:
    """Whether ``s`` (tail-stripped) ends with sentence punctuation, maybe inside closers or before a
    parenthetical ("... grows 8%. (see table)")."""
    if s.rstrip(_CLOSERS).endswith(_SENTENCE_END):
        return True
    if s.endswith(")"):
        i = s.rfind("(")
        return i > 0 and _ends_sentence(_strip_tail(s[:i]))
    return False


def _last_word(s: str) -> str:
    words = s.rstrip(_CLOSERS + ".").split()
    return words[-1].strip("*_`\"'“”‘’(").lower() if words else ""


def _dangles(content: str) -> bool:
    """Whether an item's content stops where more must follow: on a comma, colon, dash or connector, or inside
    an open bracket."""
    c = content.rstrip(" *_`")
    return (
        not c
        or c[-1] in ",;:-–—/(&+="
        or c.count("(") > c.count(")")
        or c.count("[") > c.count("]")
        or _last_word(c) in _CONNECTORS
    )


def _label(s: str) -> re.Match[str] | None:
    m = _LABEL.match(s.replace("**", "").replace("__", ""))
    if m is None or len(m["label"].split()) > 4 or len(m["value"].split()) > 10:
        return None
    return m


def _ending(line: str, truncated: bool) -> str | None:
    """Why ``line`` does not finish the text, in a few words (``None`` when it does)."""
    s = _strip_tail(line.strip())
    if _ends_sentence(s):
        core = s.rstrip(_CLOSERS)
        if core.endswith(("...", "…")) and _ends_sentence(core):
            return "trails off"
        if _last_word(core) in _NON_FINAL:
            return "ends mid-sentence"
        return None
    if _HEADING.match(s):
        return "ends with a heading"
    bold = _BOLD_LINE.match(s)
    if bold is not None and _label(bold["inner"]) is None:
        return "ends with a heading"
    item = _ITEM.match(s)
    content = item["content"] if item is not None else (s if bold is not None or _label(s) is not None else None)
    if content is None:
        return "ends mid-sentence"
    if _dangles(content):
        return "ends with an unfinished list item"
    if truncated:
        return "ends without sentence punctuation at the token limit"
    return None


# --- placeholders --------------------------------------------------------------------------------------------------

_BRACKETED = re.compile(r"\[(?P<inner>[^\[\]\n]{1,80})\](?!\()")
_CITATION = re.compile(r"^\s*\d{1,3}(?:\s*[,\-–]\s*\d{1,3})*\s*$")
_PLACEHOLDER_WORDS = re.compile(
    r"\b(?:insert|your|name|company|business|enter|add|placeholder|tbd|tba|date|amount|number|city|country|"
    r"location|address|product|service|describe|description|here|fill|specify|todo|x{2,})\b|\.\.\.|…|_{3,}",
    re.I,
)
_TITLE_PHRASE = re.compile(r"^(?:[A-Z][A-Za-z'&-]*)(?:\s+[A-Z][A-Za-z'&-]*){0,5}$")
_ANGLED = re.compile(r"<(?P<inner>[A-Za-z](?:[A-Za-z0-9 _-]{0,40}[A-Za-z0-9])?)>")
_TAG_NAMES = "a b i u p s em strong br hr li ul ol div span sup sub small code pre table tr td th blockquote mark"
_HTML_TAGS = frozenset(_TAG_NAMES.split())
_PLACEHOLDERS = (
    re.compile(r"\{\{?\s*[A-Za-z_][A-Za-z0-9_ -]{0,40}\s*\}?\}"),
    re.compile(r"\((?:insert|enter|add your|your)\b[^()\n]{0,60}\)", re.I),
    re.compile(r"\bXYZ\b", re.I),
    re.compile(r"\bABC\s+(?:Company|Co\.?|Corp\.?|Corporation|Inc\.?|Ltd\.?|Limited|LLC|GmbH)(?!\w)", re.I),
    re.compile(r"\blorem\s+ipsum\b", re.I),
    re.compile(r"\bTB[ADC]\b", re.I),
    re.compile(r"\b(?:John|Jane)\s+Doe\b"),
    re.compile(r"\bexample\.(?:com|org|net)\b", re.I),
    re.compile(r"[$€£¥]\s?X{1,3}(?:[,.]X{1,3})*(?!\w)|\bX{1,3}(?:[,.]X{1,3})*\s?%|\bX{2,}\b"),
    re.compile(r"_{4,}"),
)
_LIST_STAND_IN = re.compile(
    r"^(?:item|point|text|step|option|example|placeholder|bullet|entry|task|goal|name|description)\s*\d*$", re.I
)


_MAX_PLACEHOLDERS = 8


def _bracket_placeholders(text: str) -> list[re.Match[str]]:
    found = []
    for m in _BRACKETED.finditer(text):
        inner = m["inner"].strip()
        if not inner or inner.lower() == "x" or _CITATION.match(inner):
            continue  # a checkbox or a citation
        if _PLACEHOLDER_WORDS.search(inner) or _TITLE_PHRASE.match(inner):
            found.append(m)
    found.extend(m for m in _ANGLED.finditer(text) if m["inner"].lower() not in _HTML_TAGS)
    return found


def _placeholder_lists(lines: list[str]) -> list[str]:
    """Runs of at least two list items that are all stand-ins ("Item 1", "Item 2")."""
    found: list[str] = []
    group: list[str] = []
    for line in [*lines, "end"]:
        if not line:
            continue
        item = _ITEM.match(line)
        content = item["content"].strip(" *_:.") if item is not None else None
        if content is not None and _LIST_STAND_IN.match(content):
            group.append(content)
            continue
        if len(group) >= 2:
            found.append("placeholder list: " + ", ".join(f"'{c}'" for c in group[:3]) + (", ..." * (len(group) > 3)))
        group = []
    return found


def _placeholders(text: str, lines: list[str]) -> list[str]:
    """Each distinct placeholder in the order of the text (the first few), then stand-in lists."""
    found = _bracket_placeholders(text)
    for pattern in _PLACEHOLDERS:
        found.extend(pattern.finditer(text))
    unique = list(dict.fromkeys(" ".join(m[0].split()) for m in sorted(found, key=lambda m: m.start())))
    problems = [f"placeholder: {_quote(f)}" for f in unique[:_MAX_PLACEHOLDERS]]
    if len(unique) > _MAX_PLACEHOLDERS:
        more = len(unique) - _MAX_PLACEHOLDERS
        problems.append(f"{more} more placeholder{'s' * (more > 1)}")
    return problems + _placeholder_lists(lines)


# --- the check and the repair ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TextQuality:
    """The problems :func:`check_text` found in a text (none: the text is fine)."""

    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        if self.ok:
            return "no text problems"
        head = f"{len(self.problems)} text problem{'s' * (len(self.problems) > 1)}"
        return head + "".join(f"\n- {p}" for p in self.problems)

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "problems": list(self.problems)}


def _structure(lines: list[str], truncated: bool) -> list[str]:
    """Empty list items anywhere, then the ending: the last line with content must finish the text."""
    problems = []
    last = None
    for number, line in enumerate(lines, 1):
        kind = _filler(line) if line else None
        if kind == "marker":
            num = re.match(r"\(?(\d{1,3}(?:\.\d{1,3})*)", line)
            problems.append(f"empty list item {num[1]}" if num else f"empty list item on line {number}: '{line}'")
        elif kind == "markers":
            problems.append(f"placeholder list: '{line}'")
        elif kind == "ellipsis":
            problems.append(f"placeholder: '{line}'")
        elif line and kind is None:
            last = line
    tail = [ln for ln in lines if ln]
    if tail and _filler(tail[-1]) == "rule":
        problems.append("ends with a horizontal rule")
    if last is not None and (ending := _ending(last, truncated)) is not None:
        problems.append(f"{ending}: {_quote(last)}")
    return problems


def check_text(text: str, request: str, *, truncated: bool = False) -> TextQuality:
    """The quality problems of a section ``text`` written for ``request`` (see the module's docstring);
    ``truncated``: the completion stopped at its token limit."""
    words = _word_count(text)
    if words < _MIN_WORDS:
        return TextQuality((f"empty text ({words} word{'s' * (words != 1)})",))
    lines = [ln.strip() for ln in text.split("\n")]
    problems = _structure(lines, truncated)
    allowed = scripts_of(request) | {"Latin"}
    if "Kana" in allowed:
        allowed.add("Han")  # Japanese writes Han with its Kana
    counts, sample = _foreign_letters(text, allowed)
    if counts:
        found = ", ".join(f"{s} ({n})" for s, n in sorted(counts.items(), key=lambda sn: (-sn[1], sn[0])))
        problems.append(f"characters from a script the request does not use: {found}, e.g. '{sample}'")
    problems.extend(_placeholders(text, lines))
    return TextQuality(tuple(problems))


def _rstrip_end(text: str, end: int) -> int:
    while end and text[end - 1].isspace():
        end -= 1
    return end


def _drop_filler(text: str, end: int) -> int:
    """Where ``text[:end]`` ends without trailing whitespace and trailing content-less lines."""
    end = _rstrip_end(text, end)
    while end:
        start = text.rfind("\n", 0, end) + 1
        if _filler(text[start:end].strip()) is None:
            break
        end = _rstrip_end(text, start)
    return end


_MAX_CUTS = 20  # sentence ends of a last line tried, from its end


def _cut_step(text: str, end: int) -> int:
    """Where ``text[:end]`` (without trailing filler) ends once an unfinished last line is cut: after its last
    finished sentence, else before the line."""
    start = text.rfind("\n", 0, end) + 1
    line = text[start:end]
    if _ending(line, False) is None:
        return end
    for m in list(_SENTENCE_END_IN.finditer(line))[: -_MAX_CUTS - 1 : -1]:
        head = line[: m.end()]
        if _filler(head.strip()) is None and _ending(head, False) is None:
            return _drop_filler(text, start + m.end())
    return _drop_filler(text, start)


def repair(text: str) -> str:
    """``text`` with what a cut completion leaves at its end removed: trailing empty list items, rules and
    ellipses, then an unfinished last sentence or list item (repeatedly), and trailing whitespace. Only the end
    changes (the result is a prefix of ``text``); a finished text comes back unchanged (less trailing
    whitespace), and when cutting would leave fewer than three words, only the trailing empty items go."""
    kept = _drop_filler(text, len(text))
    cut = kept
    while (shorter := _cut_step(text, cut)) != cut:
        cut = shorter
    return text[:cut] if _word_count(text[:cut]) >= _MIN_WORDS else text[:kept]
