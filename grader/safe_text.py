"""Text from outside the grader (file names, what a student's code raised) made safe to show.

Each function fits one destination: a terminal line, a Markdown page, a CSV cell, a file name.
"""

from __future__ import annotations

import hashlib
import re

# C0 and C1 controls but newline and tab: a terminal obeys them (ESC sequences rewrite the
# screen, a carriage return overwrites the score line).
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# Lone surrogates: what Python makes of undecodable bytes in a file name (surrogateescape) or
# of "\ud800" in a notebook's JSON; UTF-8 cannot encode them.
_SURROGATE = re.compile("[\ud800-\udfff]")


def printable(text: str, newlines: bool = True) -> str:
    """`text` with control characters and lone surrogates written as escapes (\\x1b, \\udcff);
    newlines too unless `newlines`."""
    text = _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    text = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
    return text if newlines else text.replace("\n", "\\n").replace("\t", "\\t")


def one_line(text: str, limit: int = 300) -> str:
    """`text` as one printable line of at most about `limit` characters."""
    text = printable(text, newlines=False)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# Every ASCII punctuation character CommonMark lets a backslash escape, but the three that
# become HTML entities (& < >).
_MARKDOWN_PUNCTUATION = re.compile(r"""([!"#$%'()*+,\-./:;=?@\[\\\]^_`{|}~])""")
# GitHub links bare URLs and www. names itself (its autolink extension), escapes or not.
_AUTOLINK = re.compile(r"(?i)(:)(//)|\b(www)(\.)")
WORD_JOINER = "\u2060"


def markdown_text(text: str) -> str:
    """`text` as Markdown that renders as exactly that text, on one line: no HTML, link, image,
    code span or emphasis can come out of it, and it stays inside a table cell."""
    text = re.sub(r"\s+", " ", printable(text))  # one line (a newline would end a table row)
    text = _AUTOLINK.sub(lambda m: WORD_JOINER.join(g for g in m.groups() if g), text)
    text = _MARKDOWN_PUNCTUATION.sub(r"\\\1", text)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def markdown_with_code(text: str) -> str:
    """Like markdown_text, but the kit's `code` spans stay code (as <code>, their contents
    escaped alike): a backtick the student wrote can only shift which parts look like code."""
    parts = text.split("`")
    if len(parts) % 2 == 0:  # an odd number of backticks: no pairing to trust
        return markdown_text(text)
    return "".join(
        f"<code>{markdown_text(part)}</code>" if i % 2 else markdown_text(part)
        for i, part in enumerate(parts)
    )


# A spreadsheet runs a cell that starts with these as a formula (=HYPERLINK(...), =cmd|...).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(text: str) -> str:
    """A CSV cell a spreadsheet shows as text: printable, never read as a formula."""
    text = printable(text, newlines=False)
    return "'" + text if text.startswith(_FORMULA_START) else text


# Characters a file name must not hold here or on the file systems outputs are copied to.
_NOT_IN_NAMES = set('\\/:*?"<>|')
MAX_NAME_BYTES = 150  # a name's readable part; Linux allows 255 bytes ("-digest.json.tmp" too)


def _plain(character: str) -> bool:
    return character.isprintable() and character not in _NOT_IN_NAMES  # lone surrogates: not


def file_name(key: str) -> str:
    """A file name for a submission's outputs, one for each `key` (its path under the
    submissions): `ada__01_pytorch_workflow__01_pytorch_workflow`, as it is where it is plain
    and short; else a plain cut of it with a digest of the key (`caf___x-87196c81d85701a9`)."""
    readable = key.replace("/", "__")
    if (
        "__" not in key
        and all(_plain(c) for c in key.replace("/", ""))
        and len(readable.encode()) <= MAX_NAME_BYTES
        and not readable.startswith(".")
    ):
        return readable
    cleaned = "".join(c if _plain(c) else "_" for c in readable).lstrip(".")
    cut = cleaned.encode()[:MAX_NAME_BYTES].decode("utf-8", "ignore")
    digest = hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return f"{cut}-{digest}"


def error_text(error: BaseException, limit: int = 100_000) -> str:
    """`str(error)`, cut to `limit` characters, or a note where the student's exception class
    cannot say it (its `__str__` raises, or returns something other than text)."""
    try:
        text = error.msg if isinstance(error, SyntaxError) else str(error)
        if type(text) is not str:
            raise TypeError("not text")
        return text[:limit]
    except BaseException:  # a student's __str__ may raise anything, even SystemExit
        return "(its message could not be read: its __str__ failed)"


def type_name(value: object) -> str:
    """`type(value).__name__`, or "Exception" where a metaclass made it other than text."""
    name = type(value).__name__  # a metaclass may make it anything
    return name if type(name) is str else "Exception"
