"""The article reader: header forms, encodings, and every way a file can be refused, with its reason code."""

from __future__ import annotations

import codecs
import contextlib
import hashlib
import os
import resource
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from monitor.errors import ArticleError
from monitor.ingest.articles import DEFAULT_MAX_BYTES, ArticleDate, Precision, read_article

NOBODY = 65534


def write(folder: Path, data: bytes, name: str = "article.txt") -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


def refused(path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> ArticleError:
    with pytest.raises(ArticleError) as caught:
        read_article(path, max_bytes)
    error = caught.value
    assert error.path == str(path)
    assert str(error).startswith(f"{path}: "), "the message must name the file"
    assert error.reason in str(error)
    return error


# -- header forms -----------------------------------------------------------------------------------------
HEADERS = [
    pytest.param(
        "date 2022-01\nBody.", datetime(2022, 1, 1, tzinfo=UTC), Precision.month, "2022-01", "Body.", id="month"
    ),
    pytest.param(
        "date 2022-01-08\nBody.", datetime(2022, 1, 8, tzinfo=UTC), Precision.day, "2022-01-08", "Body.", id="day"
    ),
    pytest.param(
        "date 2022-01-08T09:30\nBody.",
        datetime(2022, 1, 8, 9, 30, tzinfo=UTC),
        Precision.time,
        "2022-01-08T09:30:00+00:00",
        "Body.",
        id="datetime-naive-is-utc",
    ),
    pytest.param(
        "date 2022-01-08T09:30:15+01:00\nBody.",
        datetime(2022, 1, 8, 9, 30, 15, tzinfo=timezone(timedelta(hours=1))),
        Precision.time,
        "2022-01-08T09:30:15+01:00",
        "Body.",
        id="datetime-offset",
    ),
    pytest.param(
        "date 2022-01-08T09:30:15.250Z\nBody.",
        datetime(2022, 1, 8, 9, 30, 15, 250000, tzinfo=UTC),
        Precision.time,
        "2022-01-08T09:30:15.250000+00:00",
        "Body.",
        id="datetime-fraction-zulu",
    ),
    pytest.param(
        "date 2022-01-08 09:30\nBody.",
        datetime(2022, 1, 8, 9, 30, tzinfo=UTC),
        Precision.time,
        "2022-01-08T09:30:00+00:00",
        "Body.",
        id="datetime-space-separator",
    ),
    pytest.param(
        " date 2022-01 De onlusten in Kazachstan.",
        datetime(2022, 1, 1, tzinfo=UTC),
        Precision.month,
        "2022-01",
        "De onlusten in Kazachstan.",
        id="leading-space-body-same-line",
    ),
    pytest.param(
        "\n\n\t  date 2022-01-08\nBody.",
        datetime(2022, 1, 8, tzinfo=UTC),
        Precision.day,
        "2022-01-08",
        "Body.",
        id="leading-blank-lines-and-tab",
    ),
    pytest.param(
        "date 2022-01-08T09:30Z Body on the same line.",
        datetime(2022, 1, 8, 9, 30, tzinfo=UTC),
        Precision.time,
        "2022-01-08T09:30:00+00:00",
        "Body on the same line.",
        id="datetime-body-same-line",
    ),
    pytest.param(
        "date 2022-01-08\r\nBody.\r\n",
        datetime(2022, 1, 8, tzinfo=UTC),
        Precision.day,
        "2022-01-08",
        "Body.\r\n",
        id="crlf",
    ),
    pytest.param(
        "DATE 2022-01-08\nBody.", datetime(2022, 1, 8, tzinfo=UTC), Precision.day, "2022-01-08", "Body.", id="upper"
    ),
    pytest.param(
        "Date 2022-01-08\nBody.", datetime(2022, 1, 8, tzinfo=UTC), Precision.day, "2022-01-08", "Body.", id="title"
    ),
    pytest.param(
        "date\t2022-01-08\n\nBody after a blank line.",
        datetime(2022, 1, 8, tzinfo=UTC),
        Precision.day,
        "2022-01-08",
        "\nBody after a blank line.",
        id="tab-separator-blank-line",
    ),
]


@pytest.mark.parametrize(("content", "value", "precision", "iso", "body"), HEADERS)
def test_header_forms(tmp_path: Path, content: str, value: datetime, precision: Precision, iso: str, body: str) -> None:
    path = write(tmp_path, content.encode())
    article = read_article(path)
    assert article.date.value == value
    assert article.date.value.utcoffset() == value.utcoffset()
    assert article.date.precision is precision
    assert article.date.isoformat() == iso
    assert article.text == body
    assert article.path == str(path)
    assert article.size == len(content.encode())
    assert article.content_hash == hashlib.sha256(content.encode()).hexdigest()


# -- encodings ----------------------------------------------------------------------------------------------
TEXT = "date 2022-01-08\nCafé “hoogverraad” – 5 €"
ENCODINGS = [
    pytest.param(TEXT.encode(), id="utf-8"),
    pytest.param(codecs.BOM_UTF8 + TEXT.encode(), id="utf-8-bom"),
    pytest.param(TEXT.encode("cp1252"), id="windows-1252"),
]


@pytest.mark.parametrize("data", ENCODINGS)
def test_encodings_decode_to_the_same_text_and_hash(tmp_path: Path, data: bytes) -> None:
    article = read_article(write(tmp_path, data))
    assert article.text == "Café “hoogverraad” – 5 €"
    assert article.date.isoformat() == "2022-01-08"
    assert article.size == len(data)
    # The hash is over the decoded text: a BOM or a legacy encoding is not a new version of the article.
    assert article.content_hash == hashlib.sha256(TEXT.encode()).hexdigest()


def test_bom_and_no_bom_hash_equal_but_differ_from_other_text(tmp_path: Path) -> None:
    plain = read_article(write(tmp_path, TEXT.encode(), "plain.txt"))
    bom = read_article(write(tmp_path, codecs.BOM_UTF8 + TEXT.encode(), "bom.txt"))
    other = read_article(write(tmp_path, (TEXT + ".").encode(), "other.txt"))
    assert plain.content_hash == bom.content_hash
    assert plain.content_hash != other.content_hash
    assert plain.size + 3 == bom.size


# -- refusals ----------------------------------------------------------------------------------------------
REFUSALS = [
    pytest.param(b"Geen datum hier.\nBody.", "no_date", id="no-header"),
    pytest.param(b"Body first.\ndate 2022-01-08\n", "no_date", id="header-not-first"),
    pytest.param(b"datum 2022-01-08\nBody.", "no_date", id="other-word"),
    pytest.param(b"date2022-01-08\nBody.", "no_date", id="no-separator"),
    pytest.param(b"date 2022-1-8\nBody.", "no_date", id="short-fields"),
    pytest.param(b"date 08-01-2022\nBody.", "no_date", id="day-first"),
    pytest.param(b"date 2022-01-08.\nBody.", "no_date", id="trailing-punctuation"),
    pytest.param(b"   \n\t\n", "no_date", id="white-space-only"),
    pytest.param(codecs.BOM_UTF8, "no_date", id="bom-only"),
    pytest.param(b"date 2022-13\nBody.", "bad_date", id="month-13"),
    pytest.param(b"date 2022-00\nBody.", "bad_date", id="month-0"),
    pytest.param(b"date 2022-02-30\nBody.", "bad_date", id="february-30"),
    pytest.param(b"date 2023-02-29\nBody.", "bad_date", id="february-29-not-leap"),
    pytest.param(b"date 2022-01-08T25:00\nBody.", "bad_date", id="hour-25"),
    pytest.param(b"date 2022-01-08T09:61\nBody.", "bad_date", id="minute-61"),
    pytest.param(b"", "empty", id="empty"),
    pytest.param(b"date 2022-01-08\nBody\x00with a NUL.", "binary", id="nul"),
    pytest.param(b"date 2022-01-08\n" + b"x" * 20_000 + b"\x00", "binary", id="nul-after-8k"),
    pytest.param(b"\x7fELF\x02\x01\x01" + bytes(range(1, 9)) * 20, "binary", id="control-characters"),
    pytest.param(b"date 2022-01-08\n" + b"\x1b[31m" * 10, "binary", id="escape-sequences"),
    pytest.param(b"date 2022-01-08\n\x81\x8d\x8f", "encoding", id="not-utf8-not-cp1252"),
    pytest.param(codecs.BOM_UTF8 + b"date 2022-01-08\nCaf\xe9", "encoding", id="bom-then-invalid-utf8"),
    pytest.param("date 2022-01-08\nBody.".encode("utf-16-le"), "encoding", id="utf-16-without-bom"),
    pytest.param("date 2022-01-08\nBody.".encode("utf-32-be"), "encoding", id="utf-32-without-bom"),
    pytest.param(codecs.BOM_UTF16_LE + b"d\x00a\x00\x00\xd8", "encoding", id="utf-16-bom-then-invalid"),
]


@pytest.mark.parametrize(("data", "code"), REFUSALS)
def test_refusals(tmp_path: Path, data: bytes, code: str) -> None:
    assert refused(write(tmp_path, data)).code == code


def test_impossible_date_message_names_the_value(tmp_path: Path) -> None:
    error = refused(write(tmp_path, b"date 2022-13\nBody."))
    assert "2022-13" in error.reason


def test_no_date_message_says_what_was_expected(tmp_path: Path) -> None:
    assert "date 2022-01-08" in refused(write(tmp_path, b"Body.")).reason


def test_a_few_control_characters_in_a_long_text_are_accepted(tmp_path: Path) -> None:
    data = b"date 2022-01-08\n" + b"Gewone tekst met een form feed. " * 10 + b"\x0c\x1b"
    assert read_article(write(tmp_path, data)).text.endswith("\x0c\x1b")


@pytest.mark.parametrize(
    ("size", "code"),
    [pytest.param(100, None, id="at-the-limit"), pytest.param(101, "too_large", id="one-byte-over")],
)
def test_size_limit(tmp_path: Path, size: int, code: str | None) -> None:
    head = b"date 2022-01-08\n"
    path = write(tmp_path, head + b"x" * (size - len(head)))
    if code is None:
        assert read_article(path, max_bytes=100).size == 100
    else:
        error = refused(path, max_bytes=100)
        assert error.code == code
        assert "101" in error.reason and "100" in error.reason


# -- what is on disk ------------------------------------------------------------------------------------------
@pytest.fixture
def article(tmp_path: Path) -> Path:
    return write(tmp_path, b"date 2022-01-08\nBody.", "target.txt")


def test_symlink_to_an_article_is_not_followed(tmp_path: Path, article: Path) -> None:
    link = tmp_path / "link.txt"
    link.symlink_to(article)
    assert read_article(article).text == "Body."  # the target itself is fine
    error = refused(link)
    assert error.code == "symlink"
    assert "not followed" in error.reason


def test_symlink_pointing_outside_is_not_followed(tmp_path: Path) -> None:
    outside = tempfile.NamedTemporaryFile(suffix=".txt", delete=False)  # noqa: SIM115
    try:
        outside.write(b"date 2022-01-08\nSecret.")
        outside.close()
        link = tmp_path / "outside.txt"
        link.symlink_to(outside.name)
        assert refused(link).code == "symlink"
    finally:
        os.unlink(outside.name)


def test_looping_symlink(tmp_path: Path) -> None:
    link = tmp_path / "loop.txt"
    link.symlink_to(link)
    assert refused(link).code == "symlink"


def test_directory_named_like_an_article(tmp_path: Path) -> None:
    folder = tmp_path / "folder.txt"
    folder.mkdir()
    error = refused(folder)
    assert error.code == "not_file"


def test_directory_does_not_leak_its_descriptor(tmp_path: Path) -> None:
    folder = tmp_path / "folder.txt"
    folder.mkdir()
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(20):
        refused(folder)
    assert len(os.listdir("/proc/self/fd")) <= before


def test_named_pipe_is_not_read(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.txt"
    os.mkfifo(fifo)
    assert refused(fifo).code == "not_file"  # and it does not block waiting for a writer


def test_file_deleted_before_it_is_read(tmp_path: Path, article: Path) -> None:
    article.unlink()
    error = refused(article)
    assert error.code == "vanished"


def test_path_through_a_file_is_unreadable(tmp_path: Path, article: Path) -> None:
    assert refused(article / "child.txt").code == "unreadable"


@pytest.fixture
def shared_folder() -> Iterator[Path]:
    """A folder that another user can enter (pytest's tmp_path is private to root)."""
    folder = Path(tempfile.mkdtemp(prefix="articles-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder)


@contextlib.contextmanager
def effective_user(uid: int) -> Iterator[None]:
    """Run as another user for a moment: root bypasses file permissions (the real uid stays root)."""
    try:
        os.seteuid(uid)
    except PermissionError as exc:
        pytest.skip(f"cannot switch to uid {uid} to test file permissions: {exc}")
    try:
        yield
    finally:
        os.seteuid(0)


def test_unreadable_permissions(shared_folder: Path) -> None:
    path = write(shared_folder, b"date 2022-01-08\nBody.", "locked.txt")
    path.chmod(0o644)
    if os.geteuid() != 0:
        path.chmod(0)
        assert refused(path).code == "unreadable"
        return
    with effective_user(NOBODY):
        assert read_article(path).text == "Body."  # the folder is open to that user: only the mode counts
    path.chmod(0)
    with effective_user(NOBODY):
        error = refused(path)
    assert error.code == "unreadable"
    assert "Permission denied" in error.reason


# -- ArticleDate.latest ---------------------------------------------------------------------------------------
LATEST = [
    pytest.param(
        datetime(2022, 2, 1, tzinfo=UTC),
        Precision.month,
        datetime(2022, 2, 28, 23, 59, 59, 999999, tzinfo=UTC),
        id="feb",
    ),
    pytest.param(
        datetime(2024, 2, 1, tzinfo=UTC),
        Precision.month,
        datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=UTC),
        id="feb-leap",
    ),
    pytest.param(
        datetime(2022, 12, 1, tzinfo=UTC),
        Precision.month,
        datetime(2022, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        id="december",
    ),
    pytest.param(
        datetime(2022, 1, 31, tzinfo=UTC),
        Precision.day,
        datetime(2022, 1, 31, 23, 59, 59, 999999, tzinfo=UTC),
        id="day",
    ),
    pytest.param(
        datetime(2022, 1, 8, 9, 30, tzinfo=UTC), Precision.time, datetime(2022, 1, 8, 9, 30, tzinfo=UTC), id="time"
    ),
]


LATEST += [
    pytest.param(
        datetime(9999, 12, 1, tzinfo=UTC), Precision.month, datetime.max.replace(tzinfo=UTC), id="month-9999-12"
    ),
    pytest.param(datetime(9999, 12, 31, tzinfo=UTC), Precision.day, datetime.max.replace(tzinfo=UTC), id="day-9999"),
]


@pytest.mark.parametrize(("value", "precision", "latest"), LATEST)
def test_latest(value: datetime, precision: Precision, latest: datetime) -> None:
    assert ArticleDate(value, precision).latest() == latest


@pytest.mark.parametrize(
    ("header", "latest"),
    [
        pytest.param("2022-02", datetime(2022, 2, 28, 23, 59, 59, 999999, tzinfo=UTC), id="month"),
        pytest.param("2022-02-03", datetime(2022, 2, 3, 23, 59, 59, 999999, tzinfo=UTC), id="day"),
        pytest.param("2022-02-03T10:00+02:00", datetime(2022, 2, 3, 8, 0, tzinfo=UTC), id="time"),
    ],
)
def test_latest_of_a_read_article(tmp_path: Path, header: str, latest: datetime) -> None:
    assert read_article(write(tmp_path, f"date {header}\nBody.".encode())).date.latest() == latest


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32", "utf-32-be"])
def test_utf16_and_utf32_with_their_byte_order_mark_are_read(tmp_path: Path, encoding: str) -> None:
    text = "date 2022-01-08\nBijna achtduizend mensen zijn gearresteerd in Almaty — één bericht."
    data = text.encode(encoding)
    if not encoding.endswith(("16", "32")):  # the -be codecs write no mark: put it there as editors do
        data = (codecs.BOM_UTF16_BE if "16" in encoding else codecs.BOM_UTF32_BE) + data
    article = read_article(write(tmp_path, data))
    assert article.text == text.split("\n", 1)[1]
    assert article.size == len(data)


def test_far_future_dates_are_read(tmp_path: Path) -> None:
    article = read_article(write(tmp_path, b"date 9999-12 Bijna achtduizend mensen zijn gearresteerd."))
    assert article.date.isoformat() == "9999-12"
    assert article.date.latest() == datetime.max.replace(tzinfo=UTC)


# -- beneath the watched folder ---------------------------------------------------------------------------
def test_read_beneath_its_folder(tmp_path: Path) -> None:
    (tmp_path / "feed" / "deep").mkdir(parents=True)
    path = write(tmp_path / "feed" / "deep", b"date 2022-01-08\nBody.")
    assert read_article(path, root=tmp_path).text == "Body."


def test_a_symlinked_folder_on_the_path_is_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "secret"
    outside.mkdir()
    write(outside, b"date 2022-01-08\nPrivate text.", "private.txt")
    watched = tmp_path / "watched"
    watched.mkdir()
    (watched / "feed").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ArticleError) as caught:
        read_article(watched / "feed" / "private.txt", root=watched)
    assert caught.value.code == "symlink"
    assert read_article(watched / "feed" / "private.txt").text == "Private text."  # without a root: followed


def test_a_path_outside_the_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "watched").mkdir()
    path = write(tmp_path, b"date 2022-01-08\nBody.")
    with pytest.raises(ArticleError) as caught:
        read_article(path, root=tmp_path / "watched")
    assert caught.value.code == "outside"


def test_out_of_file_descriptors_is_transient(tmp_path: Path, article: Path) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    held = []
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))
        with contextlib.suppress(OSError):
            while True:
                held.append(os.open(os.devnull, os.O_RDONLY))
        with pytest.raises(ArticleError) as caught:
            read_article(article)
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert caught.value.code == "transient"
    assert "tried again later" in caught.value.reason
    assert read_article(article).text == "Body."
