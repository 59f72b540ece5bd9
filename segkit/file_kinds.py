"""What kind of file an input is: Parquet, a workbook or text (CSV, plain or compressed), from its first bytes,
else from its name in any case."""

from __future__ import annotations

import zipfile

from segkit.errors import SegkitError

PARQUET_SUFFIXES = (".parquet", ".parq", ".pq")
WORKBOOK_SUFFIXES = (".xlsx", ".xlsm", ".xlsb", ".xls", ".ods")
HEAD_BYTES = 1 << 16


def kind_by_name(path: str) -> str:
    """'parquet', 'workbook' or 'csv' from a file name's ending, in any case."""
    name = path.lower()
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if name.endswith(WORKBOOK_SUFFIXES):
        return "workbook"
    return "csv"


def file_kind(file: str) -> str:
    """'parquet', 'workbook' or 'csv' (text, plain or compressed) from the file's first bytes."""
    try:
        with open(file, "rb") as handle:
            head = handle.read(HEAD_BYTES)
    except OSError as error:
        raise SegkitError(f"'{file}' cannot be read: {error.strerror}. Point transactions_path at files segkit "
                          "may read.") from None
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith(b"\xd0\xcf\x11\xe0"):  # an OLE2 container: Excel 97-2003 (.xls)
        return "workbook"
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(file) as archive:
                names = set(archive.namelist())
        except zipfile.BadZipFile as error:
            raise SegkitError(f"'{file}' is a damaged zip archive or workbook ({error}). Export it again.") from None
        if names & {"xl/workbook.xml", "xl/workbook.bin", "content.xml"}:
            return "workbook"
        raise SegkitError(f"'{file}' is a zip archive, not a workbook. Unzip it and point transactions_path at "
                          "the CSV, Parquet or Excel files inside.")
    if head.startswith((b"\x1f\x8b", b"\x28\xb5\x2f\xfd")) or _is_text(head):
        return "csv"
    raise SegkitError(f"segkit cannot tell what kind of file '{file}' is: it is not text (CSV, plain or gzip or "
                      "zstd compressed), Parquet or an Excel or OpenDocument workbook (it starts with bytes "
                      f"{head[:4].hex(' ')}). Export the transactions in one of those formats.")


def _is_text(head: bytes) -> bool:
    """No NUL byte, except as half of the UTF-16 code units of text."""
    return b"\x00" not in head or utf16_order(head) is not None


def utf16_order(head: bytes) -> str | None:
    """'le' or 'be' when the bytes are UTF-16 text (a byte-order mark, or mostly ASCII with NUL halves)."""
    if head.startswith(b"\xff\xfe"):
        return "le"
    if head.startswith(b"\xfe\xff"):
        return "be"
    sample = head[:2048] if len(head) % 2 == 0 else head[:2047]
    if len(sample) < 4:
        return None
    even_nuls, odd_nuls = sample[0::2].count(0), sample[1::2].count(0)
    if odd_nuls > 0.9 * len(sample) / 2 and even_nuls == 0:
        return "le"
    if even_nuls > 0.9 * len(sample) / 2 and odd_nuls == 0:
        return "be"
    return None
