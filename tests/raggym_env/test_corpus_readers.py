"""Corpus readers for the public formats, format detection, evidence mapping, fullwiki task."""

from __future__ import annotations

import argparse
import bz2
import gzip
import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import raggym_env.corpora.readers as readers
from raggym_env import clear_caches
from raggym_env.corpora import (
    CORPUS_FORMATS,
    HUB_CORPORA,
    Corpus,
    DropLog,
    DroppedDocumentsWarning,
    EvidenceMapping,
    detect_corpus_format,
    document_id,
    iter_corpus,
    iter_hub_corpus,
    load_corpus,
    map_evidence,
    normalize_title,
    split_flashrag_contents,
)
from raggym_env.corpora.formats import load_corpus as load_corpus_from_formats
from raggym_env.serve_cli import retriever_factory_from_args, serve_command
from raggym_env.tasks import MissingEvidenceWarning, load_examples, load_task
from raggym_env.types import Document, Evidence, QAExample

# --- fixtures in each dump's exact layout ---------------------------------------------------

# DPR psgs_w100.tsv: header id<TAB>text<TAB>title; a field with a quote, tab or newline is
# quoted and its quotes doubled.
DPR_TSV = (
    "id\ttext\ttitle\n"
    '1\t"Aaron Aaron ( or ; ""Ahärôn"") is a prophet,\tbrother of Moses."\tAaron\n'
    '2\tThe song was a hit, in 1999.\t"The ""Best"" Song, Vol.\t1"\n'
    "3\tonly two columns\n"
    '4\t""\tEmpty\n'
    "5\tPlain text without quotes.\tPlain\n"
)
DPR_DOCS = [
    Document("1", "Aaron", 'Aaron Aaron ( or ; "Ahärôn") is a prophet,\tbrother of Moses.'),
    Document("2", 'The "Best" Song, Vol.\t1', "The song was a hit, in 1999."),
    Document("5", "Plain", "Plain text without quotes."),
]

FLASHRAG_LINES = [
    {"id": "0", "contents": '"Aaron"\nAaron is a prophet, high priest.'},
    {"id": "1", "contents": '"The "Best" Song"\nA "hit" song.\nSecond line.'},
    {"id": 2, "contents": "No Quotes\nText under an unquoted title."},
    {"id": "3", "contents": '"One Line" and its text on the same line.'},
    {"id": "4"},  # no contents: malformed
    {"id": "5", "contents": '"Blank"\n   '},  # empty text
]
FLASHRAG_DOCS = [
    Document("0", "Aaron", "Aaron is a prophet, high priest."),
    Document("1", 'The "Best" Song', 'A "hit" song.\nSecond line.'),
    Document("2", "No Quotes", "Text under an unquoted title."),
    Document("3", "One Line", "and its text on the same line."),
]

MEDRAG_ROWS = [
    {
        "id": "Anatomy_Gray_0",
        "title": "Anatomy_Gray",
        "content": "What is anatomy? Anatomy includes structures.",
        "contents": "Anatomy_Gray. What is anatomy? Anatomy includes structures.",
    },
    {
        "id": "Anatomy_Gray_1",
        "title": "Anatomy_Gray",
        "content": "Regional anatomy.",
        "contents": "Anatomy_Gray. Regional anatomy.",
    },
]

ABSTRACTS = {
    "AA/wiki_00.bz2": [
        {
            "id": "12",
            "url": "https://en.wikipedia.org/wiki?curid=12",
            "title": "Anarchism",
            "text": [
                'Anarchism is a <a href="political%20philosophy">political philosophy</a>.',
                ' It advocates <a href="self-governance">self-governed</a> societies.',
            ],
        },
        {
            "id": "25",
            "url": "https://en.wikipedia.org/wiki?curid=25",
            "title": "Autism",
            "text": ["Autism is a developmental disorder."],
        },
    ],
    "AA/wiki_01.bz2": [
        {
            "id": "39",
            "url": "https://en.wikipedia.org/wiki?curid=39",
            "title": "Albedo",
            "text": [],
        },
    ],
    "AB/wiki_00.bz2": [
        {
            "id": "290",
            "url": "https://en.wikipedia.org/wiki?curid=290",
            "title": "A",
            "text": ["A is the first letter."],
        },
    ],
}
ABSTRACT_DOCS = [
    Document(
        "12",
        "Anarchism",
        "Anarchism is a political philosophy. It advocates self-governed societies.",
    ),
    Document("25", "Autism", "Autism is a developmental disorder."),
    Document("290", "A", "A is the first letter."),
]


def jsonl(rows: list[Any]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    elif path.name.endswith(".bz2"):
        path.write_bytes(bz2.compress(text.encode()))
    else:
        path.write_text(text, encoding="utf-8")
    return path


def quiet_load(path: str | Path, **kwargs: Any) -> Corpus:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DroppedDocumentsWarning)
        return load_corpus(path, **kwargs)


def abstracts_dir(root: Path, extra_lines: dict[str, str] | None = None) -> Path:
    folder = root / "enwiki-20171001-pages-meta-current-withlinks-abstracts"
    for name, rows in ABSTRACTS.items():
        write(folder / name, jsonl(rows) + (extra_lines or {}).get(name, ""))
    return folder


# --- the formats ----------------------------------------------------------------------------


def test_dpr_tsv_quoting_tabs_and_malformed_rows(tmp_path: Path) -> None:
    path = write(tmp_path / "psgs_w100.tsv", DPR_TSV)
    assert detect_corpus_format(path) == "dpr-tsv"
    with pytest.warns(DroppedDocumentsWarning) as caught:
        corpus = load_corpus(path)
    assert list(corpus) == DPR_DOCS
    assert corpus.name == "psgs_w100"
    assert str(caught[0].message) == (
        f"{path}: 2 of 5 passages dropped: 1 malformed lines (psgs_w100.tsv:4); "
        "1 with empty text (psgs_w100.tsv:5)"
    )


def test_dpr_tsv_gzip_and_bz2_read_the_same(tmp_path: Path) -> None:
    for name in ("psgs_w100.tsv.gz", "psgs_w100.tsv.bz2"):
        path = write(tmp_path / name, DPR_TSV)
        assert detect_corpus_format(path) == "dpr-tsv"
        corpus = quiet_load(path)
        assert list(corpus) == DPR_DOCS
        assert corpus.name == "psgs_w100"


def test_dpr_tsv_needs_its_header(tmp_path: Path) -> None:
    path = write(tmp_path / "psgs.tsv", "1\tsome text\tTitle\n")
    with pytest.raises(ValueError, match=r"line 1 must be the header id<TAB>text<TAB>title"):
        load_corpus(path)


def test_dpr_tsv_unterminated_quote_is_counted_not_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(readers, "MAX_LINE_BYTES", 64)
    monkeypatch.setattr(readers.csv, "field_size_limit", lambda *a: 64)
    lines = ["id\ttext\ttitle", '1\t"never closed\tA'] + [f"x{i}\tfiller line\tB" for i in range(8)]
    path = write(tmp_path / "bad.tsv", "\n".join(lines) + "\n")
    log = DropLog()
    docs = list(iter_corpus(path, log=log))
    assert log.count("malformed lines") >= 1
    assert all(doc.id.startswith("x") for doc in docs)  # the reader went on after the error


def test_split_flashrag_contents_forms() -> None:
    assert split_flashrag_contents('"Aaron"\nAaron is a prophet.') == (
        "Aaron",
        "Aaron is a prophet.",
    )
    assert split_flashrag_contents('"A "quoted" title"\ntext') == ('A "quoted" title', "text")
    assert split_flashrag_contents("Unquoted\ntext\nmore") == ("Unquoted", "text\nmore")
    assert split_flashrag_contents('"Same Line" text here') == ("Same Line", "text here")
    assert split_flashrag_contents('"Only a title"') == ("Only a title", "")
    assert split_flashrag_contents("just text, no title") == ("", "just text, no title")
    assert split_flashrag_contents('"unclosed quote text') == ("", '"unclosed quote text')
    assert split_flashrag_contents("") == ("", "")


def test_flashrag_jsonl_titles_without_quotes_and_counts(tmp_path: Path) -> None:
    path = write(tmp_path / "wiki-18.jsonl", jsonl(FLASHRAG_LINES) + "{not json\n\n")
    assert detect_corpus_format(path) == "flashrag-jsonl"
    with pytest.warns(DroppedDocumentsWarning) as caught:
        docs = list(iter_corpus(path))
    assert docs == FLASHRAG_DOCS
    assert str(caught[0].message) == (
        f"{path}: 3 of 7 passages dropped: 2 malformed lines (wiki-18.jsonl:5, "
        "wiki-18.jsonl:7); 1 with empty text (wiki-18.jsonl:6)"
    )
    gz = write(tmp_path / "wiki-18.jsonl.gz", jsonl(FLASHRAG_LINES))
    assert detect_corpus_format(gz) == "flashrag-jsonl"
    assert list(quiet_load(gz)) == FLASHRAG_DOCS


def test_medrag_chunk_folder_and_plain_folder(tmp_path: Path) -> None:
    textbooks = tmp_path / "textbooks"
    write(textbooks / "chunk" / "Anatomy_Gray.jsonl", jsonl(MEDRAG_ROWS))
    write(
        textbooks / "chunk" / "Biochemistry_Lippincott.jsonl",
        jsonl(
            [
                {
                    "id": "Biochemistry_Lippincott_0",
                    "title": "Biochemistry_Lippincott",
                    "content": "Enzymes.",
                    "contents": "Biochemistry_Lippincott. Enzymes.",
                }
            ]
        ),
    )
    write(textbooks / "README.md", "not a chunk file")
    assert detect_corpus_format(textbooks) == "medrag"
    corpus = load_corpus(textbooks)
    assert [(d.id, d.title, d.text) for d in corpus] == [
        ("Anatomy_Gray_0", "Anatomy_Gray", "What is anatomy? Anatomy includes structures."),
        ("Anatomy_Gray_1", "Anatomy_Gray", "Regional anatomy."),
        ("Biochemistry_Lippincott_0", "Biochemistry_Lippincott", "Enzymes."),
    ]
    assert corpus.name == "textbooks"
    plain = write(tmp_path / "statpearls" / "article.jsonl", jsonl(MEDRAG_ROWS)).parent
    assert detect_corpus_format(plain) == "medrag"
    assert [d.id for d in load_corpus(plain)] == ["Anatomy_Gray_0", "Anatomy_Gray_1"]
    single = write(tmp_path / "one.jsonl", jsonl(MEDRAG_ROWS))
    assert detect_corpus_format(single) == "medrag"


def test_medrag_rows_with_only_contents_lose_the_title_prefix(tmp_path: Path) -> None:
    rows = [
        {"id": "a", "title": "Anatomy_Gray", "contents": "Anatomy_Gray. Bones."},
        {"id": "b", "contents": '"Paris"\nParis is the capital of France.'},
    ]
    corpus = load_corpus(write(tmp_path / "c" / "x.jsonl", jsonl(rows)).parent, format="medrag")
    assert [(d.title, d.text) for d in corpus] == [
        ("Anatomy_Gray", "Bones."),
        ("Paris", "Paris is the capital of France."),
    ]


def test_hotpotqa_abstracts_folder_strips_links_and_counts(tmp_path: Path) -> None:
    folder = abstracts_dir(tmp_path, {"AB/wiki_00.bz2": '{"id": "9", "title": \n'})
    assert detect_corpus_format(folder) == "hotpotqa-abstracts"
    assert detect_corpus_format(folder / "AA" / "wiki_00.bz2") == "hotpotqa-abstracts"
    with pytest.warns(DroppedDocumentsWarning) as caught:
        corpus = load_corpus(folder)
    assert list(corpus) == ABSTRACT_DOCS
    assert corpus.ids_for_title("Anarchism") == ("12",)
    assert str(caught[0].message) == (
        f"{folder}: 2 of 5 passages dropped: 1 malformed lines (AB/wiki_00.bz2:2); "
        "1 with empty text (AA/wiki_01.bz2:1)"
    )


def test_abstract_records_with_only_linked_sentences(tmp_path: Path) -> None:
    row = {
        "id": "7",
        "url": "https://en.wikipedia.org/wiki?curid=7",
        "title": "AT&T",
        "text_with_links": ['<a href="AT%26T">AT&T</a> is a company.', " In Dallas."],
    }
    path = write(tmp_path / "wiki_00.bz2", jsonl([row]))
    assert detect_corpus_format(path) == "hotpotqa-abstracts"
    assert list(load_corpus(path, format="hotpotqa-abstracts")) == [
        Document("7", "AT&T", "AT&T is a company. In Dallas.")
    ]


def test_passages_keep_their_strict_behaviour_and_read_compressed(tmp_path: Path) -> None:
    rows = [{"id": "p1", "title": "A", "text": "one"}, {"title": "B", "text": "two"}]
    for name in ("passages.jsonl", "passages.jsonl.gz", "passages.json.bz2"):
        text = json.dumps(rows) if ".json." in name else jsonl(rows)
        path = write(tmp_path / name, text)
        assert detect_corpus_format(path) == "passages"
        assert [(d.id, d.title) for d in load_corpus(path)] == [
            ("p1", "A"),
            (document_id("B", "two"), "B"),
        ]
    bad = write(tmp_path / "bad.jsonl.gz", jsonl([{"title": "A"}]))
    with pytest.raises(ValueError, match=r"record 0: missing field 'text'"):
        load_corpus(bad)


def test_formats_module_still_exports_load_corpus() -> None:
    assert load_corpus_from_formats is load_corpus


# --- detection, explicit formats, streaming -------------------------------------------------


def test_detection_errors_list_the_known_formats(tmp_path: Path) -> None:
    odd = write(tmp_path / "corpus.jsonl.gz", jsonl([{"question": "not a corpus"}]))
    with pytest.raises(ValueError, match="cannot tell the corpus format") as info:
        detect_corpus_format(write(tmp_path / "dump" / "data.bz2", jsonl([{"question": "x"}])))
    for name in CORPUS_FORMATS:
        assert name in str(info.value)
    assert detect_corpus_format(odd) == "passages"  # a .jsonl: the strict reader says why
    with pytest.raises(ValueError, match=r"record 0: missing field 'title'"):
        load_corpus(odd)
    with pytest.raises(ValueError, match=r"unsupported corpus file extension '\.csv'"):
        detect_corpus_format(write(tmp_path / "c.csv", "a,b\n"))
    with pytest.raises(FileNotFoundError):
        detect_corpus_format(tmp_path / "missing")
    with pytest.raises(ValueError, match="unknown corpus format 'parquet'; known formats"):
        load_corpus(odd, format="parquet")


def test_explicit_format_overrides_the_extension(tmp_path: Path) -> None:
    path = write(tmp_path / "passages.txt", DPR_TSV)
    assert detect_corpus_format(path) == "text"
    assert list(quiet_load(path, format="dpr-tsv")) == DPR_DOCS
    flash = write(tmp_path / "corpus.dat", jsonl(FLASHRAG_LINES[:2]))
    assert list(load_corpus(flash, format="FlashRAG-JSONL")) == FLASHRAG_DOCS[:2]
    with pytest.raises(ValueError, match="a folder, but format 'dpr-tsv' reads one file"):
        load_corpus(tmp_path, format="dpr-tsv")


def test_iter_corpus_streams_and_warns_at_the_end(tmp_path: Path) -> None:
    path = write(tmp_path / "wiki-18.jsonl", jsonl(FLASHRAG_LINES))
    stream = iter_corpus(path)
    assert isinstance(stream, Iterator)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning before the end of the stream
        assert next(stream) == FLASHRAG_DOCS[0]
    with pytest.warns(DroppedDocumentsWarning, match="2 of 6 passages dropped"):
        assert list(stream) == FLASHRAG_DOCS[1:]
    log = DropLog()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert list(iter_corpus(path, log=log)) == FLASHRAG_DOCS
    assert log.counts() == {"malformed lines": 1, "with empty text": 1}


def test_overlong_lines_are_skipped_in_bounded_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(readers, "MAX_LINE_BYTES", 100)
    long_line = json.dumps({"id": "x", "contents": '"Long"\n' + "word " * 200})
    path = write(
        tmp_path / "c.jsonl",
        jsonl(FLASHRAG_LINES[:1]) + long_line + "\n" + jsonl(FLASHRAG_LINES[2:3]),
    )
    log = DropLog()
    assert [d.id for d in iter_corpus(path, log=log)] == ["0", "2"]
    assert log.counts() == {"malformed lines": 1}


def test_dump_duplicates_dropped_and_reused_ids_counted(tmp_path: Path) -> None:
    rows = [FLASHRAG_LINES[0], FLASHRAG_LINES[0], {"id": "0", "contents": '"Other"\nx'}]
    path = write(tmp_path / "dup.jsonl", jsonl(rows))
    with pytest.warns(DroppedDocumentsWarning) as caught:
        corpus = load_corpus(path)
    assert list(corpus) == FLASHRAG_DOCS[:1]
    assert "1 exact duplicates of an earlier record (dup.jsonl:2)" in str(caught[0].message)
    assert "1 reusing an earlier id with a different title or text (dup.jsonl:3)" in str(
        caught[0].message
    )
    assert len(list(iter_corpus(path))) == 3  # the stream keeps nothing, so no de-duplication


def test_corrupt_compressed_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "wiki-18.jsonl.gz"
    path.write_bytes(gzip.compress(jsonl(FLASHRAG_LINES).encode())[:-12] + b"garbage!")
    with pytest.raises(ValueError, match=r"wiki-18\.jsonl\.gz: cannot read"):
        quiet_load(path, format="flashrag-jsonl")


# --- hub corpora, through datasets' own streaming reader of a local file ------------------


@pytest.fixture
def local_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Route datasets.load_dataset(<hub id>, ...) to its JSON reader on a local fixture."""
    datasets = pytest.importorskip("datasets")
    real = datasets.load_dataset
    calls: list[dict[str, Any]] = []
    files = {
        "MedRAG/textbooks": jsonl(MEDRAG_ROWS),
        "RAG-Gym/wiki_hotpotqa": jsonl(
            [
                {"id": "w1", "title": "Anarchism", "content": "Anarchism is a philosophy."},
                {"id": "w2", "contents": '"Autism"\nAutism is a disorder.'},
                {"id": "w3", "title": None},
            ]
        ),
        "RUC-NLPIR/FlashRAG_datasets": jsonl(FLASHRAG_LINES[:3]),
    }

    def load_dataset(repo: str, config: str | None = None, **kwargs: Any) -> Any:
        calls.append({"repo": repo, "config": config, **kwargs})
        path = write(tmp_path / "hub" / f"{repo.replace('/', '__')}.jsonl", files[repo])
        return real("json", data_files=str(path), split="train", streaming=kwargs["streaming"])

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    return calls


def test_hub_corpora_stream_through_datasets(local_hub: list[dict[str, Any]]) -> None:
    assert set(HUB_CORPORA) >= {
        "MedRAG/wikipedia",
        "MedRAG/textbooks",
        "MedRAG/statpearls",
        "RAG-Gym/wiki_hotpotqa",
        "RUC-NLPIR/FlashRAG_datasets",
    }
    corpus = load_corpus("hub:MedRAG/textbooks")
    assert [d.id for d in corpus] == ["Anatomy_Gray_0", "Anatomy_Gray_1"]
    assert corpus.name == "textbooks"
    assert local_hub[-1] == {
        "repo": "MedRAG/textbooks",
        "config": None,
        "split": "train",
        "streaming": True,
    }
    stream = iter_hub_corpus("hub:RUC-NLPIR/FlashRAG_datasets")
    assert isinstance(stream, Iterator)
    assert list(stream) == FLASHRAG_DOCS[:3]
    assert local_hub[-1]["config"] == "retrieval-corpus"
    with pytest.warns(DroppedDocumentsWarning, match=r"1 malformed lines \(row 2\)"):
        docs = list(iter_corpus("hub:RAG-Gym/wiki_hotpotqa::validation"))
    assert [(d.id, d.title, d.text) for d in docs] == [
        ("w1", "Anarchism", "Anarchism is a philosophy."),
        ("w2", "Autism", "Autism is a disorder."),
    ]
    assert local_hub[-1]["split"] == "validation"


def test_hub_specs_are_checked_before_any_import() -> None:
    for spec in ("hub:", "hub::x", "hub:a:b:c:d"):
        with pytest.raises(ValueError, match="malformed hub corpus spec"):
            iter_hub_corpus(spec)


# --- evidence mapping -----------------------------------------------------------------------


def example(qid: str, *titles: str, doc_ids: tuple[str, ...] = ()) -> QAExample:
    return QAExample(
        id=qid, question="?", answers=("x",), evidence=Evidence(titles=titles, doc_ids=doc_ids)
    )


def test_map_evidence_by_title_id_and_normalised_title() -> None:
    corpus = Corpus(
        [
            Document("1", "Paris", "Paris is the capital."),
            Document("2", "New_York_City", "A city."),
            Document("Rome", "Roma", "The city of Rome."),
            Document("4", "AT&T", "A company."),
        ],
        name="c",
    )
    examples = [
        example("q1", "Paris", "new york city"),
        example("q2", "Rome", "AT&amp;T", "Nowhere"),
        example("q3", doc_ids=("1", "gone")),
    ]
    mapping = map_evidence(examples, corpus)
    assert isinstance(mapping, EvidenceMapping)
    assert [ex.evidence.doc_ids for ex in mapping.examples] == [
        ("1", "2"),
        ("Rome", "4"),
        (
            "1",
            "gone",
        ),
    ]
    assert (mapping.titles, mapping.by_title, mapping.by_id, mapping.by_normalized_title) == (
        5,
        1,
        1,
        2,
    )
    assert mapping.unmapped == (("q2", "Nowhere"),)
    assert (mapping.unmapped_count, mapping.mapped_count) == (1, 4)
    assert mapping.missing_ids == (("q3", "gone"),)
    assert mapping.summary() == (
        "4 of 5 gold titles mapped (1 by title, 1 by id, 2 by normalised title); "
        "1 unmapped (e.g. 'Nowhere'); 1 gold doc ids not in the corpus"
    )
    assert normalize_title(" New_York  City ") == normalize_title("new york city")


def test_map_evidence_takes_a_task_and_abstract_titles(tmp_path: Path) -> None:
    corpus = quiet_load(abstracts_dir(tmp_path))
    task = argparse.Namespace(examples=[example("q", "Anarchism", "Albedo")], corpus=corpus)
    mapping = map_evidence(task)
    assert mapping.examples[0].evidence.doc_ids == ("12",)
    assert mapping.unmapped_titles == ("Albedo",)  # its abstract was empty, so dropped
    with pytest.raises(TypeError, match="needs a corpus"):
        map_evidence([example("q", "A")])


# --- HotpotQA fullwiki ----------------------------------------------------------------------


def fullwiki_records(count: int) -> list[dict[str, Any]]:
    """Records in hotpot_dev_fullwiki_v1.json's layout (the distractor file's layout)."""
    records = []
    for i in range(count):
        gold = [f"Gold A{i}", f"Gold B{i}"]
        # fullwiki contexts are retrieved paragraphs: every other question misses a gold one
        found = gold if i % 2 == 0 else gold[:1]
        records.append(
            {
                "_id": f"5a8b57f25542995d1e6f{i:04d}",
                "answer": f"answer {i}",
                "question": f"Which thing number {i} is it?",
                "supporting_facts": [[gold[0], 0], [gold[1], 1], [gold[0], 1]],
                "context": [
                    [title, [f"{title} is a page.", f" It is number {i}."]]
                    for title in [*found, f"Other {i}"]
                ],
                "type": "bridge" if i % 3 else "comparison",
                "level": "hard",
            }
        )
    return records


@pytest.fixture
def fullwiki_file(tmp_path: Path) -> Path:
    path = tmp_path / "hotpot_dev_fullwiki_v1.json"
    path.write_text(json.dumps(fullwiki_records(1005)), encoding="utf-8")
    return path


def test_fullwiki_task_selects_the_last_1000_by_default(fullwiki_file: Path) -> None:
    clear_caches()
    examples = load_examples("hotpotqa-fullwiki", fullwiki_file)
    assert len(examples) == 1000
    assert examples[0].id == "5a8b57f25542995d1e6f0005"
    assert examples[-1].id == "5a8b57f25542995d1e6f1004"
    assert examples[0].evidence.titles == ("Gold A5", "Gold B5")
    assert examples[0].meta == {"type": "bridge", "level": "hard"}
    assert [ex.id[-4:] for ex in load_examples("fullwiki", fullwiki_file, select="last:3")] == [
        "1002",
        "1003",
        "1004",
    ]
    assert len(load_examples("hotpotqa-fullwiki", fullwiki_file, select="all")) == 1005
    assert len(load_examples("hotpotqa-fullwiki", fullwiki_file, limit=10)) == 10
    with pytest.raises(ValueError, match=r"no bundled sample: pass path=.*'hub'"):
        load_examples("hotpotqa-fullwiki")


def test_fullwiki_task_counts_gold_paragraphs_its_contexts_lack(fullwiki_file: Path) -> None:
    clear_caches()
    with pytest.warns(MissingEvidenceWarning) as caught:
        task = load_task("hotpotqa-fullwiki", fullwiki_file, select="last:4")
    assert task.name == "hotpotqa-fullwiki" and len(task.examples) == 4
    assert str(caught[0].message).startswith(
        "hotpotqa-fullwiki: 2 of 8 gold evidence titles of 2 questions are not titles"
    )
    assert [len(ex.evidence.doc_ids) for ex in task.examples] == [1, 2, 1, 2]


def test_fullwiki_task_against_a_corpus_file_with_a_format(
    fullwiki_file: Path, tmp_path: Path
) -> None:
    rows = [
        {"id": f"{n}", "contents": f'"{title}"\n{title} text.'}
        for n, title in enumerate(["Gold A1004", "gold_b1004", "Gold A1003"])
    ]
    corpus_path = write(tmp_path / "wiki.data", jsonl(rows))
    clear_caches()
    with pytest.warns(MissingEvidenceWarning, match="1 of 4 gold evidence titles"):
        task = load_task(
            "hotpotqa-fullwiki",
            fullwiki_file,
            select="last:2",
            corpus=str(corpus_path),
            corpus_format="flashrag-jsonl",
        )
    assert [ex.evidence.doc_ids for ex in task.examples] == [("2",), ("0", "1")]
    with pytest.raises(ValueError, match="corpus_format applies to a corpus path"):
        load_task("hotpotqa-fullwiki", fullwiki_file, corpus_format="medrag")


# --- command line ---------------------------------------------------------------------------


def test_serve_retriever_takes_a_corpus_format(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    serve_command(parser.add_subparsers(dest="command"))
    path = write(tmp_path / "passages.txt", DPR_TSV)
    args = parser.parse_args(
        ["serve-retriever", "--corpus", str(path), "--corpus-format", "dpr-tsv"]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DroppedDocumentsWarning)
        retriever = retriever_factory_from_args(args)()
    hits = retriever.search(["prophet brother of Moses"], 1)[0]
    assert hits[0].document == DPR_DOCS[0]
    with pytest.raises(SystemExit):
        parser.parse_args(["serve-retriever", "--corpus", str(path), "--corpus-format", "csv"])
    no_corpus = parser.parse_args(
        ["serve-retriever", "--task", "hotpotqa", "--corpus-format", "medrag"]
    )
    with pytest.raises(ValueError, match="--corpus-format needs --corpus"):
        retriever_factory_from_args(no_corpus)
