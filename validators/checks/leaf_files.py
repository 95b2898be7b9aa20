"""What may sit in a leaf folder (checked by validators/tree.py, which sees the file system)."""

CHECKS = (
    ("leaf-filename", "error", "a misnamed leaf file (qna.yml, QnA.yaml, ...) that upstream silently skips"),
    ("leaf-files", "error", "a file in a leaf folder other than qna.yaml and attribution.txt"),
    ("symlink", "error", "a symbolic link in the taxonomy (never followed: it could point outside the tree)"),
    ("unreadable", "error", "a file that cannot be read"),
)
