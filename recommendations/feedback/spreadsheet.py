"""Ids in an exported CSV that a spreadsheet will not run as formulas (OWASP's CSV-injection rule).

A cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is a formula to
Excel, LibreOffice and Google Sheets; a single quote in front makes it text. An id that already
starts with quotes before such a character gets one more, so ``unquote`` restores every id exactly.
"""

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# The quote ``quote`` adds, as a regular expression for reading a whole column at once.
ADDED_QUOTE = r"^'(?='*[=+\-@\t\r])"


def _is_quoted_formula(value):
    return value.lstrip("'").startswith(FORMULA_STARTS)


def quote(value):
    """Return ``value`` with a leading ``'`` when a spreadsheet would read it as a formula."""
    return f"'{value}" if _is_quoted_formula(value) else value


def unquote(value):
    """Return the id ``quote`` was given: drop the one quote it added."""
    if value.startswith("'") and _is_quoted_formula(value[1:]):
        return value[1:]
    return value
