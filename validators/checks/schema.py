"""Version detection and JSON Schema validation (see validators/schema.py and validators/schemas/)."""

CHECKS = (
    ("schema", "error", "the leaf does not match the qna.yaml schema of its branch and version"),
    ("version", "error", "a version that is missing, not a number, or unsupported (knowledge needs 3)"),
    ("leaf-branch", "error", "the leaf is not under knowledge/, compositional_skills/ or foundational_skills/"),
)
