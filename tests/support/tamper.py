"""A signed token changed where it counts, never by chance back into itself.

Setting a token's last characters to a fixed string ("...xx") leaves it unchanged when they already were that
(1 in 4,096 runs for two characters: a failed CI run of `test_notify_links_reject_tampering_expiry_and_wrong_purpose`),
and the last base64 character of a signature also carries unused bits, so changing it can leave the bytes as they
were. The first character of the token's last dot-separated part (its signature) always counts.
"""

from __future__ import annotations


def tampered(token: str) -> str:
    """``token`` with the first character of its last ``.``-part replaced by another one.

    >>> tampered("eyJhIjoxfQ.Zm9v"), tampered("abc.Afoo"), tampered("opaque")
    ('eyJhIjoxfQ.Am9v', 'abc.Bfoo', 'Apaque')
    """
    head, dot, sig = token.rpartition(".")
    return f"{head}{dot}{'A' if sig[0] != 'A' else 'B'}{sig[1:]}"
