"""Knowledge documents: where they live and whether they exist (validators/documents.py resolves them)."""

CHECKS = (
    ("document-repo", "error", "document repo URL not on the allowed hosts (no file://, loopback or private hosts)"),
    ("document-commit", "error", "document commit is not a full 40-hex SHA, or does not exist in the repo"),
    ("document-patterns", "error", "a document pattern that matches no .md/.pdf file at the commit, or escapes it"),
    ("document-fetch", "error", "the document repository could not be fetched"),
)
