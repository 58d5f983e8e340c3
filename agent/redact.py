"""Secrets are redacted before anything is written to memory or transcripts."""

from __future__ import annotations

import re

# Each pattern's optional group `keep` is context that stays (a key's name, "Bearer "); the rest is the secret.
_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("private key", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S)),
    ("AWS access key", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("GitHub token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{40,})\b")),
    ("API key", re.compile(r"\bsk-(?:ant-|proj-)?[A-Za-z0-9_-]{20,}")),
    ("Slack token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}")),
    ("JWT", re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")),
    ("bearer token", re.compile(r"(?P<keep>\b[Bb]earer\s+)[A-Za-z0-9._~+/-]{16,}=*")),
    ("password in URL", re.compile(r"(?P<keep>://[^/\s:@]+:)[^/\s@]+(?=@)")),
    (
        "secret",
        re.compile(
            r"""(?ix)(?P<keep>\b[\w.-]*(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key)
                [\w.-]*["']?\s*[:=]\s*)(?:"[^"\n]{6,}"|'[^'\n]{6,}')"""
        ),
    ),
    (
        "secret",
        re.compile(
            r"""(?ix)(?P<keep>\b[\w.-]*(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key)
                [\w.-]*["']?\s*[:=]\s*["']?)(?![\[])[^\s"',;]{6,}"""
        ),
    ),
]


def redact(text: str) -> str:
    """`text` with every secret it contains replaced by a marker that names the kind of secret."""
    for kind, pattern in _PATTERNS:
        marker = f"[REDACTED {kind}]"

        def replace(match: re.Match[str], marker: str = marker) -> str:
            return (match.groupdict().get("keep") or "") + marker

        text = pattern.sub(replace, text)
    return text
