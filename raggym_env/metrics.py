"""Answer and evidence metrics: official HotpotQA EM/F1, cover-EM, multiple-choice accuracy.

Everything here is a pure function of strings and ids, so the environment (rewards), the
benchmark runner (leaderboards) and the trainers (outcome labels) score answers the same way.
``normalize_answer``, ``exact_match`` and ``f1`` follow the definitions of the official
HotpotQA evaluation script (``hotpot_evaluate_v1.py``); a list of gold aliases is scored as
the maximum over aliases.

:func:`paper_score` is a second, looser scorer that reproduces the RAG-Gym paper's official
evaluation script (``src/evaluate.py``, arXiv 2502.13957) item by item. It differs from the
strict metrics above in three ways: it compares against ONE gold string (the answer the
official question files store), never the maximum over aliases; it first *locates* the
answer inside the raw model output with the script's ordered patterns (``answer": X}``,
``answer is X}``, ``Answer**: B`` ...), where the strict metrics score the extracted
final answer as given; and for multiple choice it keeps the script's letter normaliser,
which takes the first capital A-D anywhere in the located text (so "NA" reads as A),
where :func:`extract_choice` requires an asserted choice. The script's patterns are
re-implemented as linear-time scans with identical results, because model output is
untrusted and several of the original regular expressions take quadratic time.
"""

from __future__ import annotations

import bisect
import json
import re
import string
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

__all__ = [
    "cover_exact_match",
    "evidence_complete",
    "evidence_recall",
    "exact_match",
    "extract_choice",
    "f1",
    "f1_precision_recall",
    "locate_answer",
    "multiple_choice_accuracy",
    "normalize_answer",
    "normalize_multichoice",
    "paper_outcome",
    "paper_score",
    "score_answer",
]

_DROP_PUNCTUATION = str.maketrans("", "", string.punctuation)  # fastest on ASCII text
_PUNCTUATION_RUN = re.compile(f"[{re.escape(string.punctuation)}]+")  # fastest on other text
_ARTICLES = re.compile(r"\b(a|an|the)\b")
# Normalized answers the official script refuses to give partial F1 credit to.
_SPECIAL_ANSWERS = frozenset({"yes", "no", "noanswer"})


def normalize_answer(s: str) -> str:
    """Normalize an answer as the official HotpotQA script does.

    Lower-case, drop ASCII punctuation (``string.punctuation``), drop the articles
    ``a``/``an``/``the`` as whole words, and collapse whitespace, in that order.
    """
    text = s.lower()
    ascii_text = text.isascii()
    text = text.translate(_DROP_PUNCTUATION) if ascii_text else _PUNCTUATION_RUN.sub("", text)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def _gold_list(golds: Sequence[str] | str) -> Sequence[str]:
    """Treat a lone string as one gold answer (not as a sequence of characters)."""
    if isinstance(golds, str):
        return (golds,)
    if not golds:
        raise ValueError("expected at least one gold answer, got none")
    return golds


def exact_match(prediction: str | None, golds: Sequence[str]) -> float:
    """Return 1.0 if the normalized prediction equals some normalized gold alias, else 0.0.

    A ``None`` prediction (no answer given) scores 0.0. A lone string is one gold answer.
    """
    aliases = _gold_list(golds)
    if prediction is None:
        return 0.0
    pred = normalize_answer(prediction)
    return 1.0 if any(pred == normalize_answer(g) for g in aliases) else 0.0


def f1_precision_recall(prediction: str | None, gold: str) -> tuple[float, float, float]:
    """Official HotpotQA token-level ``(f1, precision, recall)`` against one gold answer.

    If either normalized side is ``yes``, ``no`` or ``noanswer`` and the two differ, all three
    are 0: a yes/no answer earns no partial credit. A ``None`` prediction scores 0.
    """
    if prediction is None:
        return 0.0, 0.0, 0.0
    pred = normalize_answer(prediction)
    ref = normalize_answer(gold)
    if (pred in _SPECIAL_ANSWERS or ref in _SPECIAL_ANSWERS) and pred != ref:
        return 0.0, 0.0, 0.0
    pred_tokens = pred.split()
    ref_tokens = ref.split()
    num_same = sum((Counter(pred_tokens) & Counter(ref_tokens)).values())
    if num_same == 0:
        return 0.0, 0.0, 0.0
    precision = num_same / len(pred_tokens)
    recall = num_same / len(ref_tokens)
    return 2 * precision * recall / (precision + recall), precision, recall


def f1(prediction: str | None, golds: Sequence[str]) -> float:
    """Official HotpotQA token F1, maximised over gold aliases (0.0 for ``None``)."""
    return max(f1_precision_recall(prediction, g)[0] for g in _gold_list(golds))


def _contains_tokens(haystack: list[str], needle: list[str]) -> bool:
    """Whether ``needle`` occurs in ``haystack`` as a contiguous run of whole tokens."""
    n = len(needle)
    return any(haystack[i : i + n] == needle for i in range(len(haystack) - n + 1))


def cover_exact_match(prediction: str | None, golds: Sequence[str]) -> float:
    """Return 1.0 if some normalized gold occurs in the normalized prediction as whole tokens.

    This is stricter than the raw substring test some papers use: containment is checked on
    token boundaries, so gold ``"1"`` is not covered by ``"1999"`` and ``"art"`` not by
    ``"party"``. A gold that normalizes to nothing (e.g. ``"the"``) only covers a prediction
    that normalizes to nothing too.
    """
    aliases = _gold_list(golds)
    if prediction is None:
        return 0.0
    pred_tokens = normalize_answer(prediction).split()
    for gold in aliases:
        gold_tokens = normalize_answer(gold).split()
        if not gold_tokens:
            if not pred_tokens:
                return 1.0
            continue
        if _contains_tokens(pred_tokens, gold_tokens):
            return 1.0
    return 0.0


# --------------------------------------------------------------------------------------------
# Multiple choice
# --------------------------------------------------------------------------------------------

# Single letters that are also English words: "A patient with ...", "I think ...". After an
# answer phrase they only count when not followed by an ordinary word.
_WORD_LETTERS = frozenset("AI")
# Words that may follow an answer letter without making it read as an article or pronoun.
_CONNECTIVES = frozenset({"because", "since", "as", "is", "was", "which", "given", "due"})
_PHRASE = (
    r"(?:\banswer\b|\b(?:correct|right|best|final|most\s+likely)\s+(?:option|choice|letter)\b"
    r"|\b(?:choose|chose|select|pick|go\s+with)\b)"
    r"(?:\s+(?:is|was|(?:would|should|will|must|could|might|may|seems\s+to|appears\s+to)\s+be))?"
    r"(?:\s+(?:therefore|thus|then|clearly|likely|probably|definitely|indeed))?"
    r"\s*[:=\-\u2013\u2014]?"
)
# "answer is B", "Answer: (B)", "final answer: B", "answer is option D", "correct choice is b".
_PHRASE_LETTER = re.compile(
    _PHRASE + r"(?:\s*(?:option|choice|letter)\b)?\s*[(\[\"']?\s*([A-Za-z])(?![A-Za-z0-9])",
    re.IGNORECASE,
)
# "The answer is aspirin." -> the rest of the line, compared with the option texts.
_PHRASE_TEXT = re.compile(_PHRASE + r"\s*([^\n]+)", re.IGNORECASE)
# Another letter offered next to the first: "Answer: B or C", "answer is B, C".
_ALTERNATIVE = re.compile(r"[)\]]?\s*(?:,|/|\bor\b|\band\b)\s*[(\[]?([A-Z])(?![A-Za-z0-9'])")
# "B is correct", "(C) is the right answer", "option d is the best answer".
_LETTER_IS_CORRECT = re.compile(
    r"(?:(?i:\b(?:option|choice))\s*[(\[]?\s*([A-Za-z])|(?<![A-Za-z0-9'])[(\[]?([A-Z]))"
    r"(?![A-Za-z0-9])[)\]]?\s+(?i:is\s+(?:the\s+)?(?:correct|right|best|most\s+likely))\b"
)
# A letter standing alone, optionally decorated: "B", "(B)", "B.", "B)", "[B]", "'B'".
_BARE_LETTER = re.compile(r"[(\[\"']?\s*([A-Za-z])\s*[)\]\"']?\s*[.:)]?")
# A line opening with a letter and an option separator: "B. text", "(B) text", "B: text".
_LEADING_LETTER = re.compile(r"(?:[(\[]\s*([A-Za-z])\s*[)\]]|([A-Za-z])\s*([.):]))(?=\s|$)")
_JSON_ANSWER = re.compile(r"\b(?:answer|choice)[\"']?\s*:\s*[\"']([^\"'\n]*)[\"']", re.IGNORECASE)
_WHITESPACE_RUN = re.compile(r"\s{2,}")
_ABBREVIATION = re.compile(r"[./'\-][A-Za-z]")  # "e.g.", "b/c", "B-cell"
_NEXT_WORD = re.compile(r"\s+([A-Za-z][\w'-]*)")
_ANSWER_KEYS = ("answer", "answer_choice", "choice", "option", "final_answer")


def _letter_keys(options: Mapping[str, str]) -> dict[str, str]:
    """Map the upper-case form of every single-letter option key to the key as given."""
    return {k.strip().upper(): k for k in options if len(k.strip()) == 1 and k.strip().isalpha()}


def _simplify(text: str) -> str:
    """Drop markdown emphasis and code markers and shrink each whitespace run to one character.

    Markup only decorates an answer; single whitespace characters keep the patterns below
    linear in the length of the text (no backtracking across long runs of spaces).
    """
    text = text.replace("*", "").replace("`", "").replace("__", "")
    return _WHITESPACE_RUN.sub(lambda m: "\n" if "\n" in m.group() else " ", text)


def _match_option_text(text: str, options: Mapping[str, str]) -> str | None:
    """Return the key of the only option whose normalized text equals the normalized ``text``."""
    norm = normalize_answer(text)
    if not norm:
        return None
    hits = {k for k, v in options.items() if normalize_answer(v) == norm}
    return hits.pop() if len(hits) == 1 else None


def _starts_with_option_text(text: str, option_text: str, pos: int = 0) -> bool:
    """Whether ``text`` from ``pos`` begins with the option's text, as normalized tokens."""
    option_tokens = normalize_answer(option_text).split()
    head = text[pos : pos + 4 * len(option_text) + 64]  # enough for the option; cheap
    return bool(option_tokens) and normalize_answer(head).split()[: len(option_tokens)] == (
        option_tokens
    )


def _bare_choice(text: str, options: Mapping[str, str]) -> str | None:
    """Return the option key when ``text`` is nothing but one (decorated) letter."""
    match = _BARE_LETTER.fullmatch(text.strip())
    if match is None:
        return None
    return _letter_keys(options).get(match.group(1).upper())


def _leading_choice(line: str, options: Mapping[str, str]) -> str | None:
    """Return the option key when ``line`` opens with "B. ...", "(B) ..." or "B: ...".

    A letter and a period followed by a lower-case word is read as an abbreviation
    ("C. difficile", "E. coli") unless the option's own text follows; a lower-case "a"/"i"
    followed by text is read as a word.
    """
    line = line.strip()
    match = _LEADING_LETTER.match(line)
    if match is None:
        return None
    letter = match.group(1) or match.group(2)
    key = _letter_keys(options).get(letter.upper())
    rest = line[match.end() :].strip()
    if key is None or not rest:
        return key
    if letter.islower() and letter.upper() in _WORD_LETTERS:
        return None
    if match.group(3) == "." and rest[0].islower():
        return key if _starts_with_option_text(rest, options[key]) else None
    return key


def _json_choice(text: str, options: Mapping[str, str]) -> str | None:
    """Return the choice in an ``{"answer": ...}`` object, parsed as data (never evaluated)."""
    value: object = None
    start, end = text.find("{"), text.rfind("}")
    if start != -1 and end > start:
        try:
            parsed = json.loads(text[start : end + 1])
        except (ValueError, RecursionError):
            parsed = None
        if isinstance(parsed, dict):
            lowered = {str(k).lower(): v for k, v in parsed.items()}
            value = next((lowered[k] for k in _ANSWER_KEYS if k in lowered), None)
    if value is None:
        match = _JSON_ANSWER.search(text)
        value = match.group(1) if match else None
    if not isinstance(value, str):
        return None
    return (
        _bare_choice(value, options)
        or _leading_choice(value, options)
        or _match_option_text(value, options)
    )


def _letter_is_asserted(letter: str, text: str, pos: int, option_text: str) -> bool:
    """Whether a letter found after an answer phrase (``text`` goes on at ``pos``) is a choice.

    Abbreviations ("e.g.", "b/c", "B-cell") never count. "A"/"I" (either case) followed by an
    ordinary word read as English ("Answer: A patient with ...") unless the word is a
    connective ("A because ...") or the option's own text follows. The text after ``pos``
    is read in place, never copied, so many phrases in a long text cost linear time.
    """
    if _ABBREVIATION.match(text, pos):
        return False
    if letter.upper() not in _WORD_LETTERS:
        return True
    word = _NEXT_WORD.match(text, pos)
    if word is None or word.group(1).lower() in _CONNECTIVES:
        return True
    return _starts_with_option_text(text, option_text, pos)


def _phrase_choices(text: str, options: Mapping[str, str]) -> set[str]:
    """Collect every option key asserted by an answer phrase ("the answer is (C)")."""
    keys = _letter_keys(options)
    found: set[str] = set()
    for match in _PHRASE_LETTER.finditer(text):
        key = keys.get(match.group(1).upper())
        end = match.end()
        if key is None or not _letter_is_asserted(match.group(1), text, end, options[key]):
            continue
        found.add(key)
        alternative = _ALTERNATIVE.match(text, end)
        if alternative is not None and alternative.group(1) in keys:
            other = keys[alternative.group(1)]
            if _letter_is_asserted(alternative.group(1), text, alternative.end(), options[other]):
                found.add(other)
    longest = 4 * max(len(v) for v in options.values()) + 64
    for match in _PHRASE_TEXT.finditer(text):
        if len(match.group(1)) <= longest:  # a longer rest is a sentence, not an option
            by_text = _match_option_text(match.group(1), options)
            if by_text is not None:
                found.add(by_text)
    for match in _LETTER_IS_CORRECT.finditer(text):
        key = keys.get((match.group(1) or match.group(2)).upper())
        if key is not None:
            found.add(key)
    return found


def _line_choices(text: str, options: Mapping[str, str]) -> set[str]:
    """Collect letters that open a line ("B. aspirin") or stand alone on one ("**C**")."""
    found: set[str] = set()
    for line in text.splitlines():
        key = _bare_choice(line, options) or _leading_choice(line, options)
        if key is not None:
            found.add(key)
    return found


def extract_choice(text: str | None, options: Mapping[str, str]) -> str | None:
    """Extract the option letter a model chose; ``None`` when none or several are asserted.

    Understands a bare letter ("B", "(B)", "B.", "B)", "**B**"), an answer equal to one
    option's text, JSON (``{"answer": "B"}``), answer phrases ("Answer: B", "The answer is
    (C).", "answer is option D", "B is correct") and a line opening with a letter ("B: text").
    Forms are tried from most to least explicit; within a form, two different letters make
    the answer ambiguous (``None``). "A"/"I" or a lower-case "a"/"i" followed by an ordinary
    word are read as English ("A patient with ..."), not as a choice. Only single-letter keys
    of ``options`` count, matched case-insensitively and returned as spelled in ``options``.
    """
    if not text or not text.strip() or not options:
        return None
    plain = _simplify(text)
    for single in (
        _bare_choice(plain, options),
        _match_option_text(plain, options),
        _json_choice(plain, options),
    ):
        if single is not None:
            return single
    for finder in (_phrase_choices, _line_choices):
        found = finder(plain, options)
        if found:
            return found.pop() if len(found) == 1 else None
    return None


def multiple_choice_accuracy(
    prediction: str | None, answer_letter: str, options: Mapping[str, str]
) -> float:
    """Return 1.0 if the letter extracted from ``prediction`` is ``answer_letter``, else 0.0."""
    if answer_letter not in options:
        raise ValueError(
            f"answer_letter {answer_letter!r} is not one of the options {sorted(options)}"
        )
    return 1.0 if extract_choice(prediction, options) == answer_letter else 0.0


# --------------------------------------------------------------------------------------------
# Evidence and aggregate scoring
# --------------------------------------------------------------------------------------------


def evidence_recall(retrieved_ids: Iterable[str], gold_ids: Sequence[str]) -> float | None:
    """Fraction of distinct gold document ids among ``retrieved_ids``; ``None`` without gold."""
    gold = set(gold_ids)
    if not gold:
        return None
    return len(gold.intersection(retrieved_ids)) / len(gold)


def evidence_complete(retrieved_ids: Iterable[str], gold_ids: Sequence[str]) -> float | None:
    """Return 1.0 if every gold document was retrieved, else 0.0; ``None`` without gold."""
    recall = evidence_recall(retrieved_ids, gold_ids)
    if recall is None:
        return None
    return 1.0 if recall == 1.0 else 0.0


def score_answer(
    prediction: str | None,
    answers: Sequence[str],
    *,
    options: Mapping[str, str] | None = None,
    answer_letter: str | None = None,
) -> dict[str, float]:
    """Score one final answer: ``em``, ``f1`` and ``cover_em``, plus ``accuracy`` for MCQ.

    For multiple choice (``options`` given) a choice is right or wrong, so ``em``, ``f1``
    and ``cover_em`` all equal ``accuracy`` (the extracted letter against
    ``answer_letter``). String metrics on letters would mislead: the official
    normalisation deletes the article "a", so option "A" would normalise to nothing.
    """
    if options is not None or answer_letter is not None:
        if options is None or answer_letter is None:
            raise ValueError("multiple-choice scoring needs both options and answer_letter")
        accuracy = multiple_choice_accuracy(prediction, answer_letter, options)
        return {"em": accuracy, "f1": accuracy, "cover_em": accuracy, "accuracy": accuracy}
    scores = {
        "em": exact_match(prediction, answers),
        "f1": f1(prediction, answers),
        "cover_em": cover_exact_match(prediction, answers),
    }
    return scores


# --------------------------------------------------------------------------------------------
# The RAG-Gym paper's scoring (official src/evaluate.py), in linear time
# --------------------------------------------------------------------------------------------
#
# Each function below reproduces one of the script's regular expressions as a left-to-right
# scan. The regex it stands for is quoted in its docstring; tests compare both on many
# thousands of random strings. The scans touch every character a bounded number of times,
# so adversarial output (thousands of unclosed ``answer": `` prefixes) costs linear time.

_QUOTE_CHARS = "\"'"
_CHOICE_LETTERS = "ABCD"
_WHITESPACE = re.compile(r"\s+")  # linear: one pass, no backtracking between runs
_NO_TAIL = -1
_SPACE_RUN = re.compile(r"\s*")  # anchored at one position by match(): linear in the run
_CLOSE_BRACE = re.compile(r"\}")
_NEWLINE = re.compile(r"\n")


class _LazyTables:
    r"""Finds, for a lazy ``(.+?)["']?\s*\}`` group, where it ends, in O(log n) per start.

    The closing tail ``["']?\s*\}`` matches exactly at the ``}`` itself, in the whitespace
    run just before it and at one quote just before that run. So the shortest group from
    ``start`` ends at the first such position after ``start`` attached to the first ``}``
    after ``start``, unless a newline (which ``.`` does not match) comes first. The ``}``
    and newline positions are collected once; each run before a ``}`` is walked once.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.n = len(text)
        self.closes = [m.start() for m in _CLOSE_BRACE.finditer(text)]
        self.newlines = [m.start() for m in _NEWLINE.finditer(text)]
        self._tail_starts: dict[int, int] = {}

    def _tail_start(self, close: int) -> int:
        """The first position from which the tail reaches the ``}`` at ``close``."""
        cached = self._tail_starts.get(close)
        if cached is None:
            text = self.text
            i = close
            while i > 0 and text[i - 1].isspace():
                i -= 1
            if i > 0 and text[i - 1] in _QUOTE_CHARS:
                i -= 1
            cached = self._tail_starts[close] = i
        return cached

    def group_end(self, start: int) -> int:
        """End of the shortest ``.+?`` group from ``start`` that a closing tail follows."""
        if start >= self.n:
            return _NO_TAIL
        k = bisect.bisect_left(self.closes, start + 1)
        if k == len(self.closes):
            return _NO_TAIL
        end = max(start + 1, self._tail_start(self.closes[k]))
        j = bisect.bisect_left(self.newlines, start)
        if j < len(self.newlines) and self.newlines[j] < end:
            return _NO_TAIL
        return end


def _lazy_answer(text: str, tables: _LazyTables, body: int) -> str | None:
    r"""Match ``\s*\{?["']?(.+?)["']?\s*\}`` at ``body``, in the regex engine's order.

    ``\s*`` is greedy: its longest run is tried first (with an optional brace and quote,
    each tried present before absent), then each shorter run, where the group starts on a
    whitespace character. The first start with a closing tail before any newline wins.
    """
    run = _SPACE_RUN.match(text, body)
    run_end = run.end() if run is not None else body
    starts: list[int] = []
    braces = (1, 0) if run_end < tables.n and text[run_end] == "{" else (0,)
    for brace in braces:
        quoted = run_end + brace < tables.n and text[run_end + brace] in _QUOTE_CHARS
        starts.extend(run_end + brace + quote for quote in ((1, 0) if quoted else (0,)))
    starts.extend(range(run_end - 1, body - 1, -1))
    for start in starts:
        end = tables.group_end(start)
        if end != _NO_TAIL:
            return text[start:end]
    return None


def _locate_lazy(text: str, prefix: str, after_prefix: str) -> str | None:
    """First ``prefix`` + ``after_prefix`` occurrence whose lazy answer group closes.

    ``after_prefix`` is ``"quote-colon"`` (``prefix["']:``) or ``"optional-colon"``
    (``prefix:?``, the colon tried present first, then absent).
    """
    tables: _LazyTables | None = None
    width = len(prefix)
    last_close = text.rfind("}")  # a group needs a "}" after it: no later prefix can match
    i = text.find(prefix, 0, max(last_close, 0))
    while i != -1:
        bodies: list[int] = []
        j = i + width
        if after_prefix == "quote-colon":
            if text[j : j + 1] in ("'", '"') and text[j + 1 : j + 2] == ":":
                bodies.append(j + 2)
        else:
            if text[j : j + 1] == ":":
                bodies.append(j + 1)
            bodies.append(j)
        for body in bodies:
            if tables is None:
                tables = _LazyTables(text)
            found = _lazy_answer(text, tables, body)
            if found is not None:
                return found
        i = text.find(prefix, i + 1, last_close)
    return None


def _skip_space(text: str, i: int) -> int:
    """The first index at or after ``i`` that is not whitespace."""
    n = len(text)
    while i < n and text[i].isspace():
        i += 1
    return i


def _skip_stars(text: str, i: int) -> int:
    r"""Skip at most two ``*`` (the regex ``\*?\*?``, greedy)."""
    for _ in range(2):
        if text[i : i + 1] == "*":
            i += 1
    return i


def _letter_at(text: str, i: int) -> str | None:
    """The choice letter A-D at index ``i``, if there is one."""
    ch = text[i : i + 1]
    return ch if ch and ch in _CHOICE_LETTERS else None


def _answer_colon_letter(text: str) -> str | None:
    r"""Stand-in for ``re.search(r"[Aa]nswer\*?\*?:\s*(A|B|C|D)", text).group(1)``.

    Backtracking cannot help: fewer stars leave a ``*`` where ``:`` must be, and a shorter
    whitespace run leaves whitespace where the letter must be.
    """
    j = text.find("nswer", 1)
    while j != -1:
        if text[j - 1] in "Aa":
            k = _skip_stars(text, j + 5)
            if text[k : k + 1] == ":":
                letter = _letter_at(text, _skip_space(text, k + 1))
                if letter is not None:
                    return letter
        j = text.find("nswer", j + 1)
    return None


def _is_letter(text: str) -> str | None:
    r"""Stand-in for ``re.search(r"is:?\s*\*?\*?(A|B|C|D)", text).group(1)``.

    Without the optional colon the letter would have to be the colon itself, so only the
    greedy reading can match.
    """
    i = text.find("is")
    while i != -1:
        k = i + 2
        if text[k : k + 1] == ":":
            k += 1
        letter = _letter_at(text, _skip_stars(text, _skip_space(text, k)))
        if letter is not None:
            return letter
        i = text.find("is", i + 1)
    return None


def locate_answer(text: str | None) -> str:
    """Find the answer inside raw model output as the official RAG-Gym script does.

    Whitespace runs become one space; then, in order, ``answer_choice": X}``, ``answer": X}``,
    ``answer is X}`` (each ``X`` the shortest text before an optional quote and a ``}``),
    ``Answer**: B`` and ``is: **B``; else the whole stripped text. ``None`` gives ``"NA"``.
    """
    if text is None:
        return "NA"
    text = _WHITESPACE.sub(" ", text)
    for prefix, after in (
        ("answer_choice", "quote-colon"),
        ("answer", "quote-colon"),
        ("answer is", "optional-colon"),
    ):
        found = _locate_lazy(text, prefix, after)
        if found is not None:
            return found
    letter = _answer_colon_letter(text) or _is_letter(text)
    return letter if letter is not None else text.strip()


def normalize_multichoice(text: str) -> str:
    """The official script's multiple-choice normaliser: the first capital A-D, else the text.

    The script tries twelve letter patterns in order, but the first, ``(A|B|C|D)`` anywhere,
    already matches whenever any later one could (each needs a capital A-D), so the first
    such letter in the text always decides; text without one is returned stripped.
    """
    hits = [i for i in (text.find(letter) for letter in _CHOICE_LETTERS) if i != -1]
    return text[min(hits)] if hits else text.strip()


def _prediction_text(prediction: object) -> str:
    """The text the script scores: a dict's smallest value, ``str()`` of anything else."""
    if isinstance(prediction, Mapping):
        try:
            prediction = sorted(prediction.values())[0]
        except (IndexError, TypeError) as exc:
            raise ValueError(
                "a dict prediction needs at least one value, all of one sortable type; "
                f"got {prediction!r}"
            ) from exc
    return str(prediction)


def paper_score(prediction: object, gold: str, multiple_choice: bool = False) -> dict[str, float]:
    """Score one item exactly as the RAG-Gym paper's ``src/evaluate.py`` does.

    The answer is located in ``str(prediction)`` (a dict's smallest value; ``None`` becomes
    ``"None"``, as the script's ``str()`` call makes it) and compared with the ONE ``gold``
    string: ``em``, ``f1``, ``precision`` and ``recall`` by the HotpotQA definitions, plus
    ``acc`` (first capital A-D of each side equal) when ``multiple_choice``.
    """
    located = locate_answer(_prediction_text(prediction))
    f1_value, precision, recall = f1_precision_recall(located, gold)
    scores = {
        "em": 1.0 if normalize_answer(located) == normalize_answer(gold) else 0.0,
        "f1": f1_value,
        "precision": precision,
        "recall": recall,
    }
    if multiple_choice:
        same = normalize_multichoice(located) == normalize_multichoice(gold)
        scores["acc"] = 1.0 if same else 0.0
    return scores


def paper_outcome(answer: str | None, gold: str, multiple_choice: bool = False) -> float:
    """The outcome the RAG-Gym paper's collection filters episodes on (not its scorer).

    Its reward labelers read the final answer as given, without locating it: token F1
    against the ONE gold string for open questions, exact match after HotpotQA
    normalisation for multiple choice (so ``"B"`` matches the gold letter ``"B"`` but
    ``"B. Aspirin"`` does not). No answer scores 0.
    """
    if answer is None:
        return 0.0
    if multiple_choice:
        return 1.0 if normalize_answer(answer) == normalize_answer(gold) else 0.0
    return f1_precision_recall(answer, gold)[0]
