"""Problems found while parsing (see validators/yamlload.py, which reports them with the parser's marks)."""

CHECKS = (
    ("yaml-syntax", "error", "YAML syntax error, reported at its position instead of aborting the run"),
    ("duplicate-key", "error", "a key appears twice in one mapping; YAML would silently keep the last"),
    ("truthy", "error", "an unquoted yes/no/on/off that YAML 1.1 reads as a boolean: quote it"),
    ("nesting-too-deep", "error", "structure nested deeper than max_depth (default 64)"),
    ("too-many-nodes", "error", "more than max_nodes nodes, counting alias expansion (billion laughs)"),
    ("multiple-documents", "error", "more than one YAML document ('---') in the file"),
    ("yaml-tag", "error", "an explicit YAML tag such as !!python/object"),
    ("not-a-mapping", "error", "the top level is not a mapping of keys to values"),
)
