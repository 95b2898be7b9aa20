"""Version detection and JSON Schema validation (see validators/schema.py and validators/schemas/)."""

CHECKS = (
    ("schema", "error", "the leaf does not match the qna.yaml schema of its branch and version"),
    ("version", "error", "a version that is missing, not a number or unsupported (knowledge needs 3); on changed "
     "leaves (check, validate --base, the workflow, the bot) anything older than 3, as upstream's CI"),
    ("old-version", "warning", "a leaf older than version 3 in a whole-tree check (accepted; changing it needs 3)"),
    ("leaf-branch", "error", "the leaf is not under knowledge/, compositional_skills/ or foundational_skills/"),
)
