"""Small GLUE folders in the original layouts of the tasks not in ../shared/glue, written at test time.

Each layout follows the original GLUE download: CoLA without a header, STS-B's ten columns with a
float score, QQP's ids, MNLI's parse columns (dev files with five annotator labels), QNLI and WNLI.
One text per file holds a bare double quote, which CSV quoting would swallow.
"""

from __future__ import annotations

from pathlib import Path

NO_BRACKETS = "( ( The cat ) sat )"

FILES: dict[str, list[list[str]]] = {
    "CoLA/train.tsv": [
        ["gj04", "1", "", "Our friends won't buy this analysis, let alone the next one we propose."],
        ["gj04", "0", "*", "They drank the pub."],
        ["bc01", "1", "", 'He said "hello" twice.'],
        ["bc01", "0", "*", "The more we study verbs, the crazier they get they."],
    ],
    "CoLA/dev.tsv": [
        ["gj04", "1", "", "The sailors rode the breeze clear of the rocks."],
        ["gj04", "0", "*", "The sailors rode clear of the rocks the breeze."],
        ["bc01", "1", "", "Bill ate the peaches."],
    ],
    "STS-B/train.tsv": [
        ["index", "genre", "filename", "year", "old_index", "source1", "source2", "sentence1", "sentence2", "score"],
        ["0", "main-captions", "MSRvid", "2012test", "0001", "none", "none", "A plane is taking off.",
         "An air plane is taking off.", "5.000"],
        ["1", "main-captions", "MSRvid", "2012test", "0004", "none", "none", 'A man said "no".',
         "A man is playing a flute.", "0.500"],
        ["2", "main-captions", "MSRvid", "2012test", "0005", "none", "none", "A man is spreading cheese.",
         "A man is spreading shredded cheese on an uncooked pizza.", "3.800"],
    ],
    "STS-B/dev.tsv": [
        ["index", "genre", "filename", "year", "old_index", "source1", "source2", "sentence1", "sentence2", "score"],
        ["0", "main-captions", "MSRvid", "2012test", "0000", "none", "none", "A man with a hard hat is dancing.",
         "A man wearing a hard hat is dancing.", "5.000"],
        ["1", "main-captions", "MSRvid", "2012test", "0002", "none", "none", "A young child is riding a horse.",
         "A child is riding a horse.", "4.750"],
    ],
    "QQP/train.tsv": [
        ["id", "qid1", "qid2", "question1", "question2", "is_duplicate"],
        ["133273", "213221", "213222", "How is the life of a math student?",
         "Which level of prepration is enough for the exam jlpt5?", "0"],
        ["402555", "536040", "536041", "How do I control my horny emotions?", "How do you control your horniness?", "1"],
        ["360472", "364011", "490273", 'What does "jaywalking" mean?', "What is jaywalking?", "1"],
    ],
    "QQP/dev.tsv": [
        ["id", "qid1", "qid2", "question1", "question2", "is_duplicate"],
        ["201359", "303345", "303346", "Why are African-Americans so beautiful?",
         "Why are hispanics so beautiful?", "0"],
        ["263843", "69383", "380476", "I want to pursue PhD in Computer Science about social network?",
         "I handle social media for a non-profit. Should I start going to social media networking events?", "0"],
        ["172974", "266948", "175089", "Is there a reason why we should travel alone?",
         "What are some reasons to travel alone?", "1"],
    ],
    "QNLI/train.tsv": [
        ["index", "question", "sentence", "label"],
        ["0", "When did the third Digimon series begin?",
         "Unlike the two seasons before it, the third series was darker.", "not_entailment"],
        ["1", "Which missile batteries often have individual launchers several kilometres from one another?",
         "When MANPADS is operated by specialists, batteries may have several dozen teams.", "not_entailment"],
        ["2", 'What is a "kilometre"?', "A kilometre is a unit of length equal to 1000 metres.", "entailment"],
    ],
    "QNLI/dev.tsv": [
        ["index", "question", "sentence", "label"],
        ["0", "What came into force after the new constitution was herald?",
         "As of that day, the new constitution heralding the Second Republic came into force.", "entailment"],
        ["1", "What is the first major city in the stream of the Rhine?",
         "The most important tributaries in this area are the Ill below of Strasbourg.", "not_entailment"],
    ],
    "WNLI/train.tsv": [
        ["index", "sentence1", "sentence2", "label"],
        ["0", "I stuck a pin through a carrot. When I pulled the pin out, it had a hole.",
         "The carrot had a hole.", "1"],
        ["1", "John couldn't see the stage with Billy in front of him because he is so short.",
         "John is so short.", "1"],
        ["2", "The police arrested all of the gang members. They were trying to stop the drug trade.",
         "The police were trying to stop the drug trade in the neighborhood.", "0"],
    ],
    "WNLI/dev.tsv": [
        ["index", "sentence1", "sentence2", "label"],
        ["0", "The drain is clogged with hair. It has to be cleaned.", "The hair has to be cleaned.", "0"],
        ["1", "Jane knocked on Susan's door but she did not answer.", "Susan did not answer.", "1"],
    ],
}

_MNLI_HEAD = ["index", "promptID", "pairID", "genre", "sentence1_binary_parse", "sentence2_binary_parse",
              "sentence1_parse", "sentence2_parse", "sentence1", "sentence2"]


def _mnli_row(i: int, premise: str, hypothesis: str, labels: list[str], genre: str) -> list[str]:
    return [str(i), str(31193 + i), f"{31193 + i}n", genre, NO_BRACKETS, NO_BRACKETS, "(ROOT)", "(ROOT)",
            premise, hypothesis, *labels]


FILES["MNLI/train.tsv"] = [
    _MNLI_HEAD + ["label1", "gold_label"],
    _mnli_row(0, "Conceptually cream skimming has two basic dimensions.",
              "Product and geography are what make cream skimming work.", ["neutral", "neutral"], "government"),
    _mnli_row(1, "you know during the season and i guess at at your level uh you lose them",
              "You lose the things to the following level if the people recall.",
              ["entailment", "entailment"], "telephone"),
    _mnli_row(2, 'One of our number will carry out your "instructions" minutely.',
              "A member of my team will execute your orders with immense precision.",
              ["contradiction", "contradiction"], "fiction"),
]
FILES["MNLI/dev_matched.tsv"] = [
    _MNLI_HEAD + ["label1", "label2", "label3", "label4", "label5", "gold_label"],
    _mnli_row(0, "The new rights are nice enough", "Everyone really likes the newest benefits",
              ["neutral", "entailment", "neutral", "neutral", "neutral", "neutral"], "slate"),
    _mnli_row(1, "This site includes a list of all award winners.",
              "The Government Executive articles housed on the website are not able to be searched.",
              ["contradiction"] * 5 + ["contradiction"], "government"),
]
FILES["MNLI/dev_mismatched.tsv"] = [
    _MNLI_HEAD + ["label1", "label2", "label3", "label4", "label5", "gold_label"],
    _mnli_row(0, "Your contribution helped make it possible for us to provide our students with a quality education.",
              "Your contributions were of no help with our students' education.",
              ["contradiction"] * 5 + ["contradiction"], "letters"),
    _mnli_row(1, "The answer has nothing to do with their cause.", "Their cause has nothing to do with the answer.",
              ["entailment"] * 5 + ["entailment"], "verbatim"),
    _mnli_row(2, "Thebes held onto power until the 12th Dynasty.", "Thebes held power until the 13th Dynasty.",
              ["neutral"] * 5 + ["neutral"], "oup"),
]

# test files: no labels, a header in every task (CoLA's included), the example id GLUE's submissions use
for _split, _offset in (("test_matched", 0), ("test_mismatched", 9796)):
    FILES[f"MNLI/{_split}.tsv"] = [
        _MNLI_HEAD,
        _mnli_row(_offset, "Hierbas, ans seco, ans dulce, and frigola are just a few names worth keeping a look-out for.",
                  "Hierbas is a name worth looking out for.", [], "travel"),
        _mnli_row(_offset + 1, 'The extent of the "behavioral" effects would depend in part on the structure.',
                  "The extent of the behavioral effects would depend in part on the structure.", [], "government"),
    ]
FILES["CoLA/test.tsv"] = [["index", "sentence"], ["0", "Bill whistled past the house."],
                          ["1", "The car honked its way down the road."]]
FILES["QQP/test.tsv"] = [["id", "question1", "question2"],
                         ["0", "Why do rockets look white?", "Why are rockets and boosters painted white?"],
                         ["1", "What's causing someone to be jealous?", 'What can I do to avoid being "jealous"?']]
FILES["STS-B/test.tsv"] = [
    ["index", "genre", "filename", "year", "old_index", "source1", "source2", "sentence1", "sentence2"],
    ["0", "main-captions", "MSRvid", "2012test", "0024", "none", "none", "A girl is styling her hair.",
     "A girl is brushing her hair."],
]


def write_glue_fixtures(root: Path) -> Path:
    """Write every fixture file under ``root`` (tab separated, no quoting) and return ``root``."""
    for relative, rows in FILES.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join("\t".join(row) + "\n" for row in rows), encoding="utf-8")
    return root
