"""Bytes that are not a text file we can read: refused up front, before any parsing."""

CHECKS = (
    ("empty-file", "error", "the file is empty or holds only comments (upstream silently accepts it)"),
    ("file-too-large", "error", "the file is larger than max_file_bytes (default 256 KiB)"),
    ("binary-file", "error", "the file holds NUL bytes: it is binary, not YAML"),
    ("encoding", "error", "the file is not valid UTF-8"),
)
