"""Write a realistic synthetic taxonomy of valid InstructLab v3 leaves, deterministically for a seed.

Leaves are spread like a real taxonomy: ~35% knowledge, ~50% compositional skills (freeform and
grounded, half each), ~15% foundational skills, 2-4 folders deep under their branch, with lowercase
``_`` folder names. Each leaf is a ``qna.yaml`` in the style of the hand-written leaves in ``taxonomy/``
(folded ``>-`` blocks, 2-space sequences; knowledge: 5 seeds of one 60-200 word context and 3 Q&A;
skills: 5-8 seeds, grounded ones with a context each) of 2-12 KB, plus an ``attribution.txt``
(CC-BY-4.0). Text comes from seeded sentence templates over a word list, so no two files are alike.

``errors`` (a fraction, e.g. 0.05) spoils that share of leaves with one mistake a contributor makes:
a missing required key, an unquoted ``yes``/``no`` answer (a YAML 1.1 boolean), or a duplicated key.
Both upstream's ``TaxonomyParser`` and ``labrador validate`` must report every one of them.

    .venv/bin/python benchmarks/gen_taxonomy.py OUT [--leaves 2000] [--seed 0] [--errors 0.05]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import textwrap
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ERROR_KINDS = ("missing_key", "unquoted_yes", "duplicate_key")
WIDTH = 78  # wrap column, as in the hand-written leaves

# ---------------------------------------------------------------- word lists

AREAS = {
    "knowledge": {
        "history": ["ancient_rome", "printing", "exploration", "industrial_revolution", "trade_routes",
                    "medieval_europe", "dynasties", "revolutions", "empires", "archives"],
        "science": ["astronomy", "chemistry", "geology", "biology", "physics", "ecology", "oceanography",
                    "meteorology", "genetics", "botany"],
        "technology": ["version_control", "networking", "databases", "compilers", "storage", "cryptography",
                       "operating_systems", "web_standards", "robotics", "telecommunications"],
        "geography": ["rivers", "mountains", "islands", "deserts", "cities", "climate_zones", "lakes"],
        "economics": ["banking", "trade", "labour_markets", "public_finance", "currencies", "agriculture"],
        "medicine": ["anatomy", "immunology", "public_health", "pharmacology", "nutrition", "epidemiology"],
        "arts": ["architecture", "music_theory", "painting", "literature", "theatre", "photography"],
    },
    "freeform": {
        "writing": ["emails", "poetry", "stories", "speeches", "letters", "slogans", "reviews"],
        "roleplay": ["customer_support", "tutoring", "interviews", "tour_guides"],
        "coding": ["python", "shell", "sql", "regex", "code_review"],
        "communication": ["feedback", "apologies", "invitations", "negotiation"],
        "humor": ["puns", "limericks", "riddles"],
    },
    "grounded": {
        "summarization": ["meetings", "articles", "reports", "support_tickets", "research_abstracts"],
        "extraction": ["tables", "entities", "dates", "contacts", "invoices"],
        "rewriting": ["plain_language", "formal_tone", "bullet_points", "headlines"],
        "classification": ["sentiment", "topics", "intent", "priority"],
        "question_answering": ["policies", "manuals", "contracts", "schedules"],
    },
    "foundational": {
        "reasoning": ["arithmetic", "logic", "common_sense", "temporal", "spatial", "probability"],
        "mathematics": ["algebra", "geometry", "statistics", "number_theory"],
        "linguistics": ["grammar", "word_sense", "analogies"],
    },
}

SUBTOPICS = ["methods", "key_figures", "applications", "regional", "overview", "case_studies", "advanced"]
NOUNS = """archive harbour council river valley market bridge charter engine signal method survey
treaty colony merchant guild printer scholar farmer vessel observatory telescope reactor catalyst
mineral glacier forest canal railway cathedral monastery library ledger census tariff currency loan
harvest drought epidemic vaccine clinic hospital network protocol packet router database index query
compiler kernel module storage sensor satellite orbit comet nebula crater volcano earthquake delta
estuary plateau frontier province dynasty republic parliament assembly reform standard measurement
sample specimen theory experiment instrument laboratory workshop factory furnace textile pottery
manuscript journal pamphlet newspaper chronicle inscription mosaic fresco sculpture symphony opera
ballad festival ritual ceremony expedition voyage caravan pilgrimage garrison fortress aqueduct road
lighthouse shipyard dock warehouse exchange budget policy committee agreement contract invoice
""".split()
ADJS = """early late northern southern coastal inland ancient modern rural urban royal public private
costly rare common local regional national important famous careful detailed accurate reliable
durable fragile heavy light narrow wide shallow deep steady rapid gradual seasonal annual formal
informal experimental practical technical official independent wealthy modest crowded remote fertile
arid humid volcanic metallic portable printed handwritten digital mechanical electrical chemical
""".split()
VERBS_PAST = """built recorded described measured founded reformed replaced improved expanded
surveyed published translated studied designed restored traded exported imported financed governed
mapped catalogued standardised introduced abandoned discovered tested adopted
""".split()
VERBS_PRESENT = """shape limit explain support reduce increase protect connect influence record
measure control describe predict require replace
""".split()
FIRST = """Ada Alan Amara Anna Bao Beatriz Carlos Chen Dara Elena Emil Fatima Grace Hana Ibrahim Ines
Jonas Kaito Lena Lucia Mateo Mei Nadia Omar Priya Rafael Sofia Tariq Uma Viktor Yara Zofia""".split()
LAST = """Almeida Becker Castro Dubois Eriksen Fischer García Haddad Ivanova Jansen Kowalski Larsen
Moreau Nakamura Okafor Petrov Quinn Rossi Schöffer Tanaka Uddin Varga Weber Xu Yilmaz Zhou""".split()
PLACES = """Lisbon Mainz Venice Bruges Kyoto Cairo Zürich Lagos Quito Oslo Krakow Dakar Lima Hanoi
Seville Tunis Riga Bergen Porto Cusco Delft Fez Izmir Leiden Lyon Nairobi Perth Tartu Turin""".split()
ADVERBS = """quickly slowly steadily carefully widely gradually rarely often""".split()
FORMS = ["email", "short story", "poem", "product description", "cover letter", "speech", "limerick",
         "thank-you note", "summary", "press release", "haiku", "blog post"]
USERS = ["maintainer_bot", "jdoe", "a-contributor", "labrador-maintainers", "taxonomy-fan", "mlee", "kpatel"]
_UNITS = ["kilometres", "litres", "kilograms", "hours", "metres", "tonnes", "days"]


# ---------------------------------------------------------------- text

def plural(noun: str) -> str:
    if noun.endswith("y") and noun[-2] not in "aeiou":
        return noun[:-1] + "ies"
    return noun + ("es" if noun.endswith(("s", "x", "ch", "sh")) else "s")


_A_AN = re.compile(r"\b([Aa]) (?=[aeiou])")


def _an(text: str) -> str:
    return _A_AN.sub(r"\1n ", text)


class Text:
    """Sentences, questions and answers from templates, all drawn from one seeded RNG."""

    def __init__(self, rng: random.Random) -> None:
        self.r = rng

    def pick(self, seq):
        return self.r.choice(seq)

    def pl(self) -> str:
        return plural(self.pick(NOUNS))

    def person(self) -> str:
        return f"{self.pick(FIRST)} {self.pick(LAST)}"

    def year(self) -> int:
        return self.r.randint(1200, 2020)

    def sentence(self) -> str:
        p, r = self.pick, self.r
        templates = (
            lambda: f"The {p(ADJS)} {p(NOUNS)} of {p(PLACES)} was {p(VERBS_PAST)} by {self.person()} "
                    f"in {self.year()}.",
            lambda: f"{self.person()} argued that {self.pl()} {p(VERBS_PRESENT)} the {p(ADJS)} {p(NOUNS)} "
                    f"more than any {p(NOUNS)} did.",
            lambda: f"By {self.year()}, more than {r.randint(3, 900)} {self.pl()} had been {p(VERBS_PAST)} "
                    f"across {p(PLACES)} and {p(PLACES)}.",
            lambda: f"Scholars estimate that about {r.randint(2, 98)} percent of the {self.pl()} in "
                    f"{p(PLACES)} were {p(ADJS)}.",
            lambda: f"Because the {p(NOUNS)} was {p(ADJS)}, the {self.pl()} were {p(VERBS_PAST)} "
                    f"{p(ADVERBS)}, and the {p(NOUNS)} grew {p(ADJS)}.",
            lambda: f"It is often called the {p(ADJS)} {p(NOUNS)}, because its {self.pl()} "
                    f"{p(VERBS_PRESENT)} the {p(NOUNS)} of the {p(NOUNS)}.",
            lambda: f"A {p(ADJS)} {p(NOUNS)} weighing {r.randint(2, 400)} kilograms was {p(VERBS_PAST)} "
                    f"near {p(PLACES)}, {r.randint(2, 90)} km from the {p(NOUNS)}.",
            lambda: f"In {p(PLACES)}, {self.person()} {p(VERBS_PAST)} a {p(ADJS)} {p(NOUNS)} that later "
                    f"served as a model for the {self.pl()} of {p(PLACES)}.",
            lambda: f"Its {self.pl()} {p(VERBS_PRESENT)} the {p(NOUNS)}, so the {p(ADJS)} {p(NOUNS)} "
                    f"stayed in use until {self.year()}.",
        )
        return _an(p(templates)())

    def passage(self, lo: int, hi: int) -> str:
        target = self.r.randint(lo, hi)
        out: list[str] = []
        words = 0
        while True:
            s = self.sentence()
            n = len(s.split())
            if out and (words + n > hi or (words >= lo and words + n > target)):
                break
            out.append(s)
            words += n
        return " ".join(out)

    def question(self) -> str:
        p, r = self.pick, self.r
        return _an(p((
            f"What did {self.person()} do with the {p(NOUNS)} of {p(PLACES)}?",
            f"Why was the {p(NOUNS)} in {p(PLACES)} considered {p(ADJS)}?",
            f"How many {self.pl()} had been {p(VERBS_PAST)} by {self.year()}, and where?",
            f"When was the {p(ADJS)} {p(NOUNS)} {p(VERBS_PAST)}, and by whom?",
            f"What is the {p(ADJS)} {p(NOUNS)} called, and why?",
            f"According to the passage, how did the {p(NOUNS)} {p(VERBS_PRESENT)} the {self.pl()} "
            f"of {p(PLACES)} during the {r.randint(12, 20)}th century?",
        )))

    def answer(self, lo: int, hi: int) -> str:
        return self.passage(lo, hi)

    def unique(self, make, seen: set[str]) -> str:
        """``make()`` until it gives text not in ``seen`` (duplicate seeds are findings in both tools)."""
        while (text := make()) in seen:
            pass
        seen.add(text)
        return text

    def skill_question(self, kind: str) -> str:
        return _an(self._skill_question(kind))

    def _skill_question(self, kind: str) -> str:
        p = self.pick
        if kind == "grounded":
            return p((
                "Summarise the passage above in two sentences.",
                f"List every {p(NOUNS)} mentioned in the context, with its year.",
                f"Rewrite this passage in plain language for a reader who knows nothing about {self.pl()}.",
                f"Extract the names of the people and the places from the context as a list of {self.pl()}.",
                f"What does the context say about the {p(NOUNS)} of {p(PLACES)}? Answer in one paragraph.",
                f"Classify the tone of this note about the {p(ADJS)} {p(NOUNS)} as formal or informal.",
            ))
        if kind == "foundational":
            a, b = self.r.randint(2, 500), self.r.randint(2, 60)
            return p((
                f"A {p(NOUNS)} holds {a} {p(_UNITS)} and a second one holds {b} more. What is the total?",
                f"If every {p(NOUNS)} is {p(ADJS)} and the {p(NOUNS)} in {p(PLACES)} is a {p(NOUNS)}, "
                f"what follows?",
                f"Is a {p(ADJS)} {p(NOUNS)} always {p(ADJS)}? Explain step by step.",
                f"There are {a} {self.pl()} shared equally among {b} {self.pl()}. How many does each get?",
            ))
        return p((
            f"Write a {p(FORMS)} about a {p(ADJS)} {p(NOUNS)} in {p(PLACES)}.",
            f"Draft a {p(FORMS)} inviting {self.person()} to visit the {p(NOUNS)}.",
            f"Can you write a {p(FORMS)} that explains the {p(NOUNS)} to a child?",
            f"Compose a {p(ADJS)} {p(FORMS)} thanking the {p(NOUNS)} team in {p(PLACES)}.",
        ))

    def outline(self, topic: str) -> str:
        return f"Overview of {topic.replace('_', ' ')}: " + self.passage(25, 55)


# ---------------------------------------------------------------- YAML emitting

def folded(key: str, text: str, indent: int, lead: str = "") -> list[str]:
    """``key: >-`` with ``text`` wrapped below it (``lead`` replaces the indent, e.g. ``'  - '``)."""
    head = (lead or " " * indent) + f"{key}: >-"
    body = textwrap.wrap(text, width=WIDTH - indent - 2, break_long_words=False, break_on_hyphens=False)
    return [head, *(" " * (indent + 2) + line for line in body)]


@dataclass
class Leaf:
    path: str  # taxonomy-relative folder, e.g. knowledge/science/astronomy/comets
    kind: str  # knowledge | freeform | grounded | foundational
    error: str | None = None  # one of ERROR_KINDS, or None for a valid leaf
    size: int = 0


def knowledge_yaml(t: Text, e: Text, leaf: Leaf, topic: str) -> str:
    """``t`` draws the content; ``e`` draws only the injected error, so a spoiled leaf is its clean twin
    with one edit."""
    error = leaf.error
    drop = e.pick(("domain", "document_outline", "created_by")) if error == "missing_key" else None
    yes_at = (e.r.randrange(5), e.r.randrange(3)) if error == "unquoted_yes" else None
    lines = ["version: 3"]
    user = t.pick(USERS)
    if drop != "created_by":
        lines.append(f"created_by: {user}")
    if error == "duplicate_key":
        lines.append(f"created_by: {e.pick(USERS)}")
    if drop != "domain":
        lines.append(f"domain: {leaf.path.split('/')[1]}")
    outline = folded("document_outline", t.outline(topic), 0)
    if drop != "document_outline":
        lines += outline
    lines.append("seed_examples:")
    asked: set[str] = set()
    for i in range(5):
        lines += folded("context", t.passage(60, 200), 4, lead="  - ")
        lines.append("    questions_and_answers:")
        for j in range(3):
            lines += folded("question", t.unique(t.question, asked), 8, lead="      - ")
            answer = folded("answer", t.answer(12, 40), 8)
            if yes_at == (i, j):
                lines.append(f"        answer: {e.pick(('yes', 'Yes', 'no', 'No'))}")
            else:
                lines += answer
    sha = "".join(t.pick("0123456789abcdef") for _ in range(40))
    lines += [
        "document:",
        f"  repo: https://github.com/{t.pick(USERS).replace('_', '-')}/{topic.replace('_', '-')}-docs",
        f'  commit: "{sha}"',
        "  patterns:",
        f"    - {topic}/*.md",
    ]
    return "\n".join(lines) + "\n"


def skill_yaml(t: Text, e: Text, leaf: Leaf, topic: str) -> str:
    error = leaf.error
    n = t.r.randint(5, 8)
    drop = e.pick(("task_description", "created_by", "answer")) if error == "missing_key" else None
    bad_seed = e.r.randrange(n)
    top_dup = error == "duplicate_key" and e.r.random() < 0.5
    lines = ["version: 3"]
    user = t.pick(USERS)
    if drop != "created_by":
        lines.append(f"created_by: {user}")
    task = folded("task_description", f"{topic.replace('_', ' ').capitalize()}: " + t.passage(20, 50), 0)
    if drop != "task_description":
        lines += task
    if top_dup:  # pasted a second description under the first
        lines += folded("task_description", e.passage(15, 30), 0)
    lines.append("seed_examples:")
    with_context = leaf.kind == "grounded" or (leaf.kind == "foundational" and t.r.random() < 0.3)
    asked: set[str] = set()
    for i in range(n):
        lead = "  - "
        if with_context and (leaf.kind == "grounded" or t.r.random() < 0.5):
            lines += folded("context", t.passage(40, 150), 4, lead=lead)
            lead = ""
        lines += folded("question", t.unique(lambda: t.skill_question(leaf.kind), asked), 4, lead=lead)
        if error == "duplicate_key" and not top_dup and i == bad_seed:  # a second question in one seed
            lines += folded("question", e.unique(lambda: e.skill_question(leaf.kind), asked), 4)
        answer = folded("answer", t.answer(25, 110), 4)
        if i == bad_seed and error == "unquoted_yes":
            lines.append(f"    answer: {e.pick(('yes', 'Yes', 'no', 'No'))}")
        elif not (i == bad_seed and drop == "answer"):
            lines += answer
    return "\n".join(lines) + "\n"


def attribution_txt(t: Text, topic: str) -> str:
    return (f"Title of work: {topic.replace('_', ' ').title()} seed examples\n"
            f"Link to work: https://github.com/labrador-ai/labrador\n"
            f"Revision: {t.pick(('original', 'v1', 'main', '2024-06-01'))}\n"
            "License of the work: CC-BY-4.0\n"
            f"Creator names: {t.person()}\n")


# ---------------------------------------------------------------- layout

def _name(t: Text) -> str:
    n = t.pick(NOUNS)
    name = t.pick((f"{t.pick(ADJS)}_{n}", f"{n}_{t.pick(NOUNS)}", f"{t.pick(PLACES).lower()}_{n}"))
    return plural(name).replace("ü", "u")


def _folder(t: Text, kind: str) -> tuple[str, str]:
    """(taxonomy-relative leaf folder, topic): 2-4 folders below the branch."""
    r = t.r
    depth = r.choice((2, 3, 3, 4))
    if kind == "knowledge":
        area = t.pick(sorted(AREAS["knowledge"]))
        parts = [area, t.pick(AREAS["knowledge"][area])][:depth - 1]
        branch = "knowledge"
    elif kind == "grounded":
        cat = t.pick(sorted(AREAS["grounded"]))
        parts = ["grounded", cat, t.pick(AREAS["grounded"][cat])][:depth - 1]
        branch = "compositional_skills"
    elif kind == "freeform":
        area = t.pick(sorted(AREAS["freeform"]))
        parts = [area, "freeform", t.pick(AREAS["freeform"][area])][:depth - 1]
        branch = "compositional_skills"
    else:
        area = t.pick(sorted(AREAS["foundational"]))
        parts = [area, t.pick(AREAS["foundational"][area]), t.pick(("basic", "advanced", "word_problems"))]
        parts = parts[:depth - 1]
        branch = "foundational_skills"
    while len(parts) < depth - 1:
        parts.append(t.pick(SUBTOPICS))
    topic = _name(t)
    return "/".join([branch, *parts, topic]), topic


def plan(leaves: int) -> list[str]:
    n_k = round(leaves * 0.35)
    n_f = round(leaves * 0.15)
    n_c = leaves - n_k - n_f
    return ["knowledge"] * n_k + ["freeform"] * (n_c // 2) + ["grounded"] * (n_c - n_c // 2) + \
        ["foundational"] * n_f


def generate(root: Path, leaves: int = 2000, seed: int = 0, errors: float = 0.0) -> list[Leaf]:
    """Write ``leaves`` leaf folders under ``root``; return what was written (with injected error kinds).

    Deterministic: the same ``(leaves, seed, errors)`` gives byte-identical files. ``errors`` is the share
    of leaves spoiled with one error each (0.05 = 5%); which leaves, and how, depends on the seed only
    through a separate RNG, so the clean and the spoiled tree hold the same leaves at the same paths.
    """
    rng = random.Random(seed)
    kinds = plan(leaves)
    rng.shuffle(kinds)
    err_rng = random.Random(f"errors-{seed}")
    n_err = round(leaves * errors)
    spoiled = dict(zip(sorted(err_rng.sample(range(leaves), n_err)),
                       (ERROR_KINDS[i % len(ERROR_KINDS)] for i in range(n_err)), strict=True))
    root.mkdir(parents=True, exist_ok=True)
    seen: set[str] = set()  # topics always hold '_', area names never match one: no leaf sits in a leaf
    out: list[Leaf] = []
    for i, kind in enumerate(kinds):
        t = Text(random.Random(f"{seed}-{i}"))
        folder, topic = _folder(t, kind)
        while folder in seen:
            topic = f"{topic}_{t.r.randint(2, 999)}"
            folder = f"{folder.rsplit('/', 1)[0]}/{topic}"
        seen.add(folder)
        leaf = Leaf(folder, kind, spoiled.get(i))
        tb = Text(random.Random(f"{seed}-{i}-body"))
        te = Text(random.Random(f"{seed}-{i}-error"))
        text = (knowledge_yaml if kind == "knowledge" else skill_yaml)(tb, te, leaf, topic)
        d = root / folder
        d.mkdir(parents=True, exist_ok=True)
        data = text.encode("utf-8")
        (d / "qna.yaml").write_bytes(data)
        (d / "attribution.txt").write_bytes(attribution_txt(t, topic).encode("utf-8"))
        leaf.size = len(data)
        out.append(leaf)
    return out


def describe(leaves: list[Leaf]) -> str:
    kinds = Counter(leaf.kind for leaf in leaves)
    sizes = sorted(leaf.size for leaf in leaves)
    errs = Counter(leaf.error for leaf in leaves if leaf.error)
    text = (f"{len(leaves)} leaves ({', '.join(f'{k} {v}' for k, v in sorted(kinds.items()))}); "
            f"qna.yaml {sum(sizes) / 1e6:.1f} MB, {sizes[0] / 1024:.1f}-{sizes[-1] / 1024:.1f} KB, "
            f"median {sizes[len(sizes) // 2] / 1024:.1f} KB")
    if errs:
        text += f"; spoiled: {', '.join(f'{k} {v}' for k, v in sorted(errs.items()))}"
    return text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path, help="folder to write the taxonomy into (created)")
    ap.add_argument("--leaves", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--errors", type=float, default=0.0, metavar="SHARE",
                    help="share of leaves to spoil with one realistic error each (e.g. 0.05)")
    ap.add_argument("--manifest", type=Path, help="write the list of leaves (and injected errors) as JSON here")
    args = ap.parse_args(argv)
    if args.out.exists() and any(args.out.iterdir()):
        print(f"gen_taxonomy: {args.out} is not empty", file=sys.stderr)
        return 2
    leaves = generate(args.out, args.leaves, args.seed, args.errors)
    if args.manifest:
        args.manifest.write_text(json.dumps([vars(leaf) for leaf in leaves], indent=1) + "\n", encoding="utf-8")
    print(describe(leaves))
    return 0


if __name__ == "__main__":
    sys.exit(main())
