"""S-FEEL: DMN decision-table entries, translated into the pack expression language.

DMN tables write each input entry as *simple unary tests* (S-FEEL), a test
about one input value whose subject is implicit: ``>=18``, ``"Medium","Low"``,
``[1..5]``, ``not("High")``, ``-``. ``translate_cell`` turns one entry into a
condition of the pack language (``expressions.py``) about an explicit
subject, so DMN-style tables compile to the same checked, generated matchers
as ``when:`` conditions and no FEEL is ever evaluated.

Supported (the DMN S-FEEL grammar for unary tests, with literal endpoints)::

    tests     := '-' | 'not' '(' positives ')' | positives     (empty = '-')
    positives := positive (',' positive)*                       (a disjunction)
    positive  := ('<' | '<=' | '>' | '>=') literal | interval | literal | 'null'
    interval  := ('[' | '(' | ']') literal '..' literal (']' | ')' | '[')
    literal   := number | "string" | true | false | date("YYYY-MM-DD")

Numbers are FEEL decimals with an optional minus (``-5``, ``0.25``, ``.5``,
no exponent); strings use double quotes and the FEEL escapes ``\\" \\\\ \\'
\\n \\r \\t \\uXXXX \\UXXXXXX``. Everything else FEEL has (names of other
inputs, arithmetic, function calls other than ``date``, ``?``, contexts,
ranges of names, ``=``/``!=`` tests) is refused with an ``ExpressionError``
whose ``offset`` attribute is the 0-based character offset of the problem
in the entry, never guessed at.

A comma list of equality literals of one type becomes one ``subject in [...]``
(dates, which the pack's ``in`` lists do not take, become an ``or`` chain);
anything else in a list becomes an ``or`` of the parts. ``parse_output`` and
``parse_enumeration`` read output entries and ``inputValues``/``outputValues``,
which must be FEEL literals.

Nulls follow the pack's one rule (Kleene logic, a null condition does not
match), which is also DMN's: ``-`` matches everything including null, a
comparison or equality with a null input is null (no match), ``not(5)`` of a
null input is null (no match), and the test ``null`` matches exactly a null
input (``is_null(subject)``, never null itself).
"""

from __future__ import annotations

import datetime
import math
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from .errors import ExpressionError

__all__ = ["SUPPORTED", "parse_enumeration", "parse_output", "translate_cell"]

SUPPORTED = (
    "S-FEEL unary tests only (-, <, <=, >, >=, [a..b], literals, comma lists, not(...))"
)
_OUTPUT_SUPPORTED = 'FEEL literals only ("text", numbers, true, false, null, date("YYYY-MM-DD"))'
_LIST_SUPPORTED = "a comma list of FEEL literals only"

# The pack language refuses `in` lists longer than this; longer lists become `or` chains.
_MAX_IN_LIST = 256

_NUMBER_RE = re.compile(r"-?(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)")
_NAME_RE = re.compile(r"[^\W\d]\w*")
_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_IDENTIFIER_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_TWO_CHAR_OPS = ("<=", ">=", "..", "!=", "**")
_FEEL_ESCAPES = {'"': '"', "'": "'", "\\": "\\", "n": "\n", "r": "\r", "t": "\t"}
_COMPARISONS = ("<", "<=", ">", ">=")
_FEEL_KEYWORDS = frozenset(("and", "or", "if", "then", "else", "for", "in", "return", "some",
                            "every", "satisfies", "between", "instance", "of", "function"))


def _error(detail: str, offset: int, supported: str = SUPPORTED,
           what: str = "a cell") -> ExpressionError:
    """An ExpressionError without a location: the caller knows where the text came from.

    ``offset`` (0-based, into the entry text) lets the pack loader or the DMN
    importer turn it into a file position; ``detail`` is the message without
    the fixed prefix and suffix, for callers that word their own message.
    """
    exc = ExpressionError(f"unsupported FEEL in {what}: {detail}; {supported}", location=None)
    exc.offset = offset
    exc.detail = detail
    return exc


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # 'number', 'string', 'name', 'op', 'end'
    text: str
    value: Any
    offset: int


@dataclass(frozen=True, slots=True)
class _Literal:
    kind: str  # 'number', 'string', 'boolean', 'date'
    value: Any  # Decimal, str, bool, datetime.date
    offset: int

    def pack(self) -> str:
        """The literal in the pack language."""
        if self.kind == "number":
            return _number_text(self.value)
        if self.kind == "string":
            return quote_pack_string(self.value)
        if self.kind == "boolean":
            return "true" if self.value else "false"
        return f"date('{self.value.isoformat()}')"


@dataclass(frozen=True, slots=True)
class _Equal:
    literal: _Literal


@dataclass(frozen=True, slots=True)
class _Compare:
    op: str
    literal: _Literal


@dataclass(frozen=True, slots=True)
class _Interval:
    low: _Literal
    low_closed: bool
    high: _Literal
    high_closed: bool


@dataclass(frozen=True, slots=True)
class _Null:
    offset: int


_Test = _Equal | _Compare | _Interval | _Null


def quote_pack_string(value: str) -> str:
    """A pack-language string literal (single quotes) holding exactly ``value``."""
    escaped = (value.replace("\\", "\\\\").replace("'", "\\'")
               .replace("\n", "\\n").replace("\t", "\\t"))
    return f"'{escaped}'"


def _number_text(value: Decimal) -> str:
    # Plain decimal notation: the pack language reads it exactly like FEEL wrote it.
    text = format(value, "f")
    return "0" if text == "-0" else text


# ---------------------------------------------------------------------------
# Tokens
# ---------------------------------------------------------------------------


def _tokenize(text: str, what: str, supported: str) -> list[_Token]:
    tokens: list[_Token] = []
    n, i = len(text), 0
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
            continue
        number = _NUMBER_RE.match(text, i) if (c == "-" or c == "." or "0" <= c <= "9") else None
        if number and not text.startswith("..", i):
            literal = number.group()
            try:
                value = Decimal(literal)
            except InvalidOperation:  # pragma: no cover - the pattern admits only decimals
                raise _error(f"malformed number '{literal}'", i, supported, what) from None
            tokens.append(_Token("number", literal, value, i))
            i = number.end()
        elif c == '"':
            i = _string(text, i, tokens, what, supported)
        elif c == "'":
            raise _error("strings are written in double quotes in FEEL (\"text\")", i,
                         supported, what)
        elif c == "_" or c.isalpha():
            name = _NAME_RE.match(text, i).group()
            tokens.append(_Token("name", name, name, i))
            i += len(name)
        else:
            op = next((o for o in _TWO_CHAR_OPS if text.startswith(o, i)), c)
            tokens.append(_Token("op", op, op, i))
            i += len(op)
    tokens.append(_Token("end", "", None, n))
    return tokens


def _string(text: str, start: int, tokens: list[_Token], what: str, supported: str) -> int:
    chars: list[str] = []
    n, i = len(text), start + 1
    while True:
        if i >= n:
            raise _error("unterminated string", start, supported, what)
        c = text[i]
        if c == '"':
            break
        if c != "\\":
            chars.append(c)
            i += 1
            continue
        if i + 1 >= n:
            raise _error("unterminated string", start, supported, what)
        e = text[i + 1]
        if e in _FEEL_ESCAPES:
            chars.append(_FEEL_ESCAPES[e])
            i += 2
        elif e in "uU":
            width = 4 if e == "u" else 6
            digits = text[i + 2 : i + 2 + width]
            if len(digits) != width or not all(d in "0123456789abcdefABCDEF" for d in digits):
                raise _error(f"malformed escape '\\{e}' (expected {width} hex digits)", i,
                             supported, what)
            code = int(digits, 16)
            i += 2 + width
            if 0xD800 <= code <= 0xDBFF and text.startswith("\\u", i):
                low = text[i + 2 : i + 6]
                if len(low) == 4 and all(d in "0123456789abcdefABCDEF" for d in low):
                    low_code = int(low, 16)
                    if 0xDC00 <= low_code <= 0xDFFF:
                        code = 0x10000 + ((code - 0xD800) << 10) + (low_code - 0xDC00)
                        i += 6
            if 0xD800 <= code <= 0xDFFF or code > 0x10FFFF:
                raise _error(f"escape '\\{e}{digits}' is not a character", i - 2 - width,
                             supported, what)
            chars.append(chr(code))
        else:
            raise _error(f"unknown escape '\\{e}' in a string", i, supported, what)
    tokens.append(_Token("string", text[start : i + 1], "".join(chars), start))
    return i + 1


# ---------------------------------------------------------------------------
# Parser
# ---------------------------------------------------------------------------


class _Parser:
    """Recursive descent over the tokens of one entry; the first problem is reported."""

    def __init__(self, text: str, what: str, supported: str) -> None:
        self.what = what
        self.supported = supported
        self.tokens = _tokenize(text, what, supported)
        self.pos = 0

    def error(self, detail: str, offset: int) -> ExpressionError:
        return _error(detail, offset, self.supported, self.what)

    def peek(self, ahead: int = 0) -> _Token:
        return self.tokens[min(self.pos + ahead, len(self.tokens) - 1)]

    def advance(self) -> _Token:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def at(self, kind: str, *texts: str) -> bool:
        token = self.peek()
        return token.kind == kind and (not texts or token.text in texts)

    def unexpected(self, token: _Token, expected: str) -> ExpressionError:
        """Say what FEEL construct was found where S-FEEL allows only ``expected``."""
        index = next(i for i, t in enumerate(self.tokens) if t is token)
        before = self.tokens[index - 1] if index else None
        after = self.tokens[index + 1] if token.kind != "end" else token
        text = token.text
        if token.kind == "end":
            return self.error(f"expected {expected}, found the end", token.offset)
        if token.kind == "name":
            if text == "not" and self.what == "a cell":
                if after.text == "(":
                    return self.error("not(...) must enclose the whole cell", token.offset)
                return self.error("'not' needs parentheses: not(...)", token.offset)
            if after.text == "(":
                return self.error(f"function call '{text}(...)'", token.offset)
            if text in _FEEL_KEYWORDS:
                return self.error(f"FEEL expression keyword '{text}'", token.offset)
            if (before is not None and before.kind == "number"
                    and before.offset + len(before.text) == token.offset and text[0] in "eE"):
                return self.error("exponent notation (FEEL numbers are plain decimals)",
                                  before.offset)
            why = {"a cell": "only literals can be compared with the input",
                   "an output entry": "an output entry must be a literal"}.get(
                       self.what, "only literals are allowed here")
            return self.error(f"name '{text}' ({why})", token.offset)
        if token.kind == "op":
            follows_value = before is not None and (
                before.kind in ("number", "string", "name") or before.text in (")", "]")
            )
            if text == "?":
                return self.error("'?' (FEEL expressions over the input)", token.offset)
            if text in ("+", "*", "/", "**") or (text == "-" and follows_value):
                return self.error(f"arithmetic '{text}'", token.offset)
            if text == "-" and self.what == "a cell":
                return self.error("'-' (any value) must be the whole cell", token.offset)
            if text in ("=", "!="):
                return self.error(f"'{text}' tests (write the literal alone, or not(...))",
                                  token.offset)
            if text == "{":
                return self.error("FEEL contexts", token.offset)
            return self.error(f"expected {expected}, found '{text}'", token.offset)
        return self.error(f"expected {expected}, found {text}", token.offset)

    def expect_end(self) -> None:
        if not self.at("end"):
            raise self.unexpected(self.peek(), "',' or the end")

    # -- unary tests ----------------------------------------------------------

    def unary_tests(self) -> tuple[bool, list[_Test]] | None:
        """None for '-' (any value); else (negated, disjunction of tests)."""
        if self.at("end"):
            return None
        if self.at("op", "-") and self.peek(1).kind == "end":
            return None
        if self.at("name", "not") and self.peek(1).text == "(":
            self.pos += 2
            tests = self.positives()
            if not self.at("op", ")"):
                raise self.unexpected(self.peek(), "',' or ')' to close not(...)")
            self.advance()
            self.expect_end()
            return True, tests
        tests = self.positives()
        self.expect_end()
        return False, tests

    def positives(self) -> list[_Test]:
        tests = [self.positive()]
        while self.at("op", ","):
            self.advance()
            tests.append(self.positive())
        return tests

    def positive(self) -> _Test:
        token = self.peek()
        if token.kind == "op" and token.text in _COMPARISONS:
            self.advance()
            literal = self.literal(f"a literal after '{token.text}'")
            if literal.kind == "boolean":
                raise self.error(f"'{token.text}' needs a number, string or date",
                                 literal.offset)
            return _Compare(token.text, literal)
        if token.kind == "op" and token.text in ("[", "(", "]"):
            return self.interval()
        if token.kind == "name" and token.text == "null":
            self.advance()
            return _Null(token.offset)
        return _Equal(self.literal("a literal, a comparison or an interval"))

    def interval(self) -> _Interval:
        start = self.advance()
        low = self.literal("the interval's lower end")
        if not self.at("op", ".."):
            raise self.unexpected(self.peek(), "'..' in the interval")
        self.advance()
        high = self.literal("the interval's upper end")
        end = self.peek()
        if not (end.kind == "op" and end.text in ("]", ")", "[")):
            raise self.unexpected(end, "']', ')' or '[' to close the interval")
        self.advance()
        if low.kind == "boolean" or high.kind == "boolean":
            raise self.error("an interval needs numbers, strings or dates", start.offset)
        if low.kind != high.kind:
            raise self.error(f"the interval's ends are a {low.kind} and a {high.kind}",
                             start.offset)
        return _Interval(low, start.text == "[", high, end.text == "]")

    # -- literals -------------------------------------------------------------

    def literal(self, expected: str) -> _Literal:
        token = self.peek()
        if token.kind == "number":
            self.advance()
            return _Literal("number", token.value, token.offset)
        if token.kind == "string":
            self.advance()
            return _Literal("string", token.value, token.offset)
        if token.kind == "name" and token.text in ("true", "false"):
            self.advance()
            return _Literal("boolean", token.text == "true", token.offset)
        if token.kind == "name" and token.text == "date" and self.peek(1).text == "(":
            return self.date()
        raise self.unexpected(token, expected)

    def date(self) -> _Literal:
        start = self.advance()
        self.advance()  # '('
        arg = self.peek()
        if arg.kind != "string":
            raise self.error('date() needs a string literal like date("2024-01-31")',
                             arg.offset)
        self.advance()
        if not self.at("op", ")"):
            raise self.unexpected(self.peek(), "')' after the date")
        self.advance()
        try:
            if not _DATE_RE.fullmatch(arg.value):
                raise ValueError(arg.value)
            value = datetime.date.fromisoformat(arg.value)
        except ValueError:
            raise self.error(f"invalid date {arg.text} (write YYYY-MM-DD)", arg.offset) from None
        return _Literal("date", value, start.offset)


# ---------------------------------------------------------------------------
# Translation
# ---------------------------------------------------------------------------


def _is_atomic(subject: str) -> bool:
    """True when ``subject`` needs no parentheses: a name, or fully parenthesised text."""
    if _IDENTIFIER_RE.fullmatch(subject):
        return True
    if not subject.endswith(")"):
        return False
    call = _IDENTIFIER_RE.match(subject)
    start = call.end() if call else 0
    if start >= len(subject) or subject[start] != "(":
        return False
    depth, quote, i = 0, None, start
    while i < len(subject):
        c = subject[i]
        if quote:
            if c == "\\":
                i += 1
            elif c == quote:
                quote = None
        elif c in "'\"":
            quote = c
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return i == len(subject) - 1
        i += 1
    return False


def _condition(test: _Test, subject: str) -> str:
    if isinstance(test, _Null):
        return f"is_null({subject})"
    if isinstance(test, _Equal):
        return f"{subject} == {test.literal.pack()}"
    if isinstance(test, _Compare):
        return f"{subject} {test.op} {test.literal.pack()}"
    low_op = "<=" if test.low_closed else "<"
    high_op = "<=" if test.high_closed else "<"
    return f"{test.low.pack()} {low_op} {subject} {high_op} {test.high.pack()}"


def _disjunction(tests: list[_Test], subject: str) -> str:
    """The tests ORed together (one ``in`` list when all are equality literals)."""
    literals = [t.literal for t in tests if isinstance(t, _Equal)]
    if (
        len(literals) == len(tests) > 1
        and len(literals) <= _MAX_IN_LIST
        and literals[0].kind != "date"
        and all(lit.kind == literals[0].kind for lit in literals)
    ):
        return f"{subject} in [{', '.join(lit.pack() for lit in literals)}]"
    return " or ".join(_condition(test, subject) for test in tests)


def _cell_text(cell: Any) -> str | None:
    """A YAML cell as S-FEEL text; None for 'any value'."""
    if cell is None:
        return None
    if isinstance(cell, bool):
        return "true" if cell else "false"
    if isinstance(cell, int):
        return str(cell)
    if isinstance(cell, float):
        if not math.isfinite(cell):
            raise _error(f"the number {cell!r}", 0)
        return _number_text(Decimal(repr(cell)))
    if isinstance(cell, Decimal):
        if not cell.is_finite():
            raise _error(f"the number {cell}", 0)
        return _number_text(cell)
    if isinstance(cell, str):
        return cell
    raise _error(f"a cell must be text, a number or a boolean, got {type(cell).__name__}", 0)


def translate_cell(cell: str | int | float | bool | None, subject: str) -> str:
    """Translate one DMN input entry into a pack condition about ``subject``.

    ``subject`` is pack expression text for the input (``age``,
    ``(sales - sales_prev)``); it is parenthesised here where precedence needs
    it. YAML numbers and booleans mean the same literal as their text
    (``18``, ``true``); None, empty text and ``-`` mean any value (``true``).
    Raises ExpressionError (no location; ``offset`` into the cell text) for
    anything that is not S-FEEL unary tests.
    """
    text = _cell_text(cell)
    if text is None:
        return "true"
    parsed = _Parser(text, "a cell", SUPPORTED).unary_tests()
    if parsed is None:
        return "true"
    negated, tests = parsed
    if not _is_atomic(subject):
        subject = f"({subject})"
    body = _disjunction(tests, subject)
    if negated:
        return f"not ({body})"
    return body


def parse_output(text: str) -> Any:
    """Parse a DMN output entry that must be a FEEL literal.

    ``"..."`` gives str, a number gives an exact ``decimal.Decimal``,
    ``true``/``false`` bool, ``null`` None and ``date("YYYY-MM-DD")`` a
    ``datetime.date``. Anything else raises ExpressionError (no location;
    ``offset`` into the text).
    """
    what = "an output entry"
    if not isinstance(text, str):
        raise _error(f"an output entry must be text, got {type(text).__name__}", 0,
                     _OUTPUT_SUPPORTED, what)
    parser = _Parser(text, what, _OUTPUT_SUPPORTED)
    if parser.at("name", "null"):
        parser.advance()
        value = None
    else:
        value = parser.literal("a literal").value
    if not parser.at("end"):
        raise parser.unexpected(parser.peek(), "the end of the literal")
    return value


def parse_enumeration(text: str) -> list[Any]:
    """Parse a comma list of FEEL literals (DMN ``inputValues``/``outputValues``).

    Values are typed as in ``parse_output``; anything but literals raises
    ExpressionError (no location; ``offset`` into the text).
    """
    what = "a list of values"
    if not isinstance(text, str):
        raise _error(f"a list of values must be text, got {type(text).__name__}", 0,
                     _LIST_SUPPORTED, what)
    parser = _Parser(text, what, _LIST_SUPPORTED)
    values = [parser.literal("a literal").value]
    while parser.at("op", ","):
        parser.advance()
        values.append(parser.literal("a literal").value)
    if not parser.at("end"):
        raise parser.unexpected(parser.peek(), "',' or the end")
    return values
