"""Untrusted review files: every bad input is refused with ImportSourceError, one line that
names the file and the element or row, and never a traceback or a partial result."""

from __future__ import annotations

import os
import stat
import zipfile
from pathlib import Path

import pytest

from trialpool.errors import ImportSourceError
from trialpool.imports import Limits, read_review
from trialpool.imports.detect import detect
from trialpool.imports.safety import (
    extract_to,
    html_to_text,
    parse_count,
    parse_number,
    parse_xml,
    parse_year,
    unpack_zip,
)

REVMAN = Path(__file__).resolve().parents[1] / "fixtures" / "revman"
PACKAGE = REVMAN / "cochrane-data-package" / "CD004366-SUP-06-dataPackage"


def refused(path: Path, *parts: str, limits: Limits | None = None) -> str:
    """Read ``path``; assert ImportSourceError (exactly) with one line holding ``parts``."""
    with pytest.raises(ImportSourceError) as caught:
        if limits is None:
            read_review(path)
        else:
            read_review(path, limits=limits)
    assert type(caught.value) is ImportSourceError
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith((f"{path.name}:", f"{path.name}/")), message
    for part in parts:
        assert part in message, message
    return message


def rm5(body: str, *, encoding: str = "UTF-8") -> str:
    return (
        f'<?xml version="1.0" encoding="{encoding}"?>\n'
        f'<COCHRANE_REVIEW TYPE="INTERVENTION">{body}</COCHRANE_REVIEW>\n'
    )


def dich(events1: str = "12", total1: str = "20", *, study: str = "STD-X") -> str:
    data = (
        f'<DICH_DATA EVENTS_1="{events1}" TOTAL_1="{total1}" EVENTS_2="3" TOTAL_2="20" '
        f'STUDY_ID="{study}"/>'
    )
    return rm5(
        '<STUDIES_AND_REFERENCES><STUDIES><INCLUDED_STUDIES><STUDY ID="STD-X" NAME="X 2000"/>'
        "</INCLUDED_STUDIES></STUDIES></STUDIES_AND_REFERENCES>"
        '<ANALYSES_AND_DATA><COMPARISON NO="1"><NAME>A vs B</NAME>'
        f'<DICH_OUTCOME NO="1" METHOD="MH" EFFECT_MEASURE="RR" RANDOM="NO"><NAME>Death</NAME>'
        f"{data}</DICH_OUTCOME></COMPARISON></ANALYSES_AND_DATA>"
    )


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def package_zip(tmp_path: Path, name: str = "package.zip") -> Path:
    path = tmp_path / name
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(PACKAGE.rglob("*")):
            if file.is_file():
                archive.write(file, file.relative_to(PACKAGE.parent).as_posix())
    return path


# ----------------------------------------------------------------------------- XML


def test_good_synthetic_rm5_reads(tmp_path: Path) -> None:
    review = read_review(write(tmp_path, "ok.rm5", dich()))
    assert (review.analyses[0].rows[0].e1, review.analyses[0].rows[0].n1) == (12, 20)


def test_malformed_xml_names_line_and_column(tmp_path: Path) -> None:
    text = dich().replace("</NAME></DICH_OUTCOME>", "</DICH_OUTCOME>", 1)
    text = text.replace("<NAME>Death</NAME>", "<NAME>Death</NAM>")
    refused(write(tmp_path, "broken.rm5", text), "malformed XML at line 2, column", "mismatch")


def test_truncated_xml(tmp_path: Path) -> None:
    data = (REVMAN / "CD000023StatsDataOnly.rm5").read_bytes()
    refused(write(tmp_path, "cut.rm5", data[: len(data) // 2]), "malformed XML at line")


def test_billion_laughs_refused(tmp_path: Path) -> None:
    bomb = (
        '<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
        ' <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">\n'
        ' <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">\n'
        "]>\n<COCHRANE_REVIEW><COVER_SHEET><TITLE>&lol3;</TITLE></COVER_SHEET></COCHRANE_REVIEW>"
    )
    refused(write(tmp_path, "bomb.rm5", bomb), "DOCTYPE", "refused")


def test_external_entity_refused(tmp_path: Path) -> None:
    xxe = (
        '<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n'
        "<COCHRANE_REVIEW><COVER_SHEET><TITLE>&x;</TITLE></COVER_SHEET></COCHRANE_REVIEW>"
    )
    refused(write(tmp_path, "xxe.rm5", xxe), "DOCTYPE")
    with pytest.raises(ImportSourceError, match="DOCTYPE"):
        parse_xml(b'<!DOCTYPE r SYSTEM "http://example.invalid/x.dtd"><r/>', "dtd.xml")


def test_xml_of_another_kind_is_unknown_format(tmp_path: Path) -> None:
    refused(write(tmp_path, "other.xml", "<html><body/></html>"), "unknown format", "<html>")


def test_diagnostic_review_refused(tmp_path: Path) -> None:
    text = '<?xml version="1.0"?><COCHRANE_REVIEW TYPE="DIAGNOSTIC"/>'
    refused(write(tmp_path, "dta.rm5", text), "diagnostic test accuracy")


# ----------------------------------------------------------------------------- impossible data


def test_events_over_total(tmp_path: Path) -> None:
    path = write(tmp_path, "CD000023.rm5", dich("12", "10"))
    message = refused(path)
    assert message == (
        "CD000023.rm5: DICH_DATA STUDY_ID=STD-X in Analysis 1.1: EVENTS_1=12 > TOTAL_1=10"
    )


def test_negative_total(tmp_path: Path) -> None:
    refused(
        write(tmp_path, "neg.rm5", dich("1", "-5")),
        "DICH_DATA STUDY_ID=STD-X in Analysis 1.1",
        "TOTAL_1='-5' is negative",
    )


def test_non_numeric_and_fractional_counts(tmp_path: Path) -> None:
    refused(
        write(tmp_path, "nan.rm5", dich("twelve")),
        "DICH_DATA STUDY_ID=STD-X in Analysis 1.1",
        "EVENTS_1='twelve' is not a number",
    )
    refused(write(tmp_path, "frac.rm5", dich("2.5")), "EVENTS_1='2.5' is not a whole number")
    refused(write(tmp_path, "inf.rm5", dich("Infinity")), "not a finite number")


def test_missing_study_id(tmp_path: Path) -> None:
    text = dich().replace(' STUDY_ID="STD-X"/>', "/>")
    refused(write(tmp_path, "noid.rm5", text), "DICH_DATA in Analysis 1.1", "no STUDY_ID")


def test_duplicate_subgroup_number(tmp_path: Path) -> None:
    sub = '<DICH_SUBGROUP NO="1"><NAME>A</NAME></DICH_SUBGROUP>'
    text = dich().replace("<NAME>Death</NAME>", f"<NAME>Death</NAME>{sub}{sub}")
    refused(write(tmp_path, "sub.rm5", text), "DICH_SUBGROUP NO=1 in Analysis 1.1", "twice")


def test_duplicate_study_id(tmp_path: Path) -> None:
    text = dich().replace(
        '<STUDY ID="STD-X" NAME="X 2000"/>', '<STUDY ID="STD-X"/><STUDY ID="STD-X"/>'
    )
    refused(write(tmp_path, "dup.rm5", text), "STUDY ID=STD-X", "appears twice")


CSV_HEADER = (
    "Comparison Number,Outcome Number,Subgroup Number,Name,Data Type,Statistical Method,"
    "Effect Measure,Analysis Model,Events 1,Mean 1,SD 1,Total 1,Events 2,Mean 2,SD 2,Total 2\n"
)


def test_csv_export_impossible_values(tmp_path: Path) -> None:
    base = CSV_HEADER + "1,0,0,A vs B,,,,,,,,,,,,\n"
    over = base + "1,1,0,Death,DIC,MH,RR,Fixed,,,,,,,,\n1,1,0,X 2000,,,,,30,,,20,1,,,20\n"
    refused(write(tmp_path, "over.csv", over), "row 4", "Events 1=30 > Total 1=20")
    sd = base + "1,1,0,Pain,CON,IV,MD,Fixed,,,,,,,,\n1,1,0,X 2000,,,,,,1,-2,20,,1,2,20\n"
    refused(write(tmp_path, "sd.csv", sd), "row 4", "SD 1='-2' is negative")
    text = base + "1,1,0,Death,DIC,MH,RR,Fixed,,,,,,,,\n1,1,0,X 2000,,,,,x,,,20,1,,,20\n"
    refused(write(tmp_path, "text.csv", text), "row 4", "Events 1='x' is not a number")
    orphan = base + "1,1,0,X 2000,,,,,3,,,20,1,,,20\n"
    refused(write(tmp_path, "orphan.csv", orphan), "row 3", "before its header row")
    ragged = base + "1,1,0,Death,DIC,MH,RR,Fixed,,,,,,,,,,extra\n"
    refused(write(tmp_path, "ragged.csv", ragged), "row 3", "fields")
    nul = write(tmp_path, "nul.csv", (base + "1,1,0,De\x00ath,DIC\n").encode())
    refused(nul, "row")


def _package_copy(tmp_path: Path) -> Path:
    target = tmp_path / "pkg"
    for file in PACKAGE.rglob("*"):
        if file.is_file():
            out = target / file.relative_to(PACKAGE)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(file.read_bytes())
    return target


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_bytes().decode("utf-8")
    assert old in text
    path.write_bytes(text.replace(old, new, 1).encode("utf-8"))


def test_package_impossible_values(tmp_path: Path) -> None:
    folder = _package_copy(tmp_path / "a")
    rows = next(folder.rglob("*-data-rows.csv"))
    _edit(rows, "Abdollahi 2017,2017,,,9.68,2.91,,25,", "Abdollahi 2017,2017,,,9.68,-2.91,,25,")
    refused(folder, "CD004366-data-rows.csv row 2", "Experimental SD='-2.91' is negative")

    folder = _package_copy(tmp_path / "b")
    rows = next(folder.rglob("*-data-rows.csv"))
    text = rows.read_bytes().decode("utf-8")
    line = next(r for r in text.split("\r\n") if r.startswith("1,3,"))
    cells = line.split(",")
    cells[12], cells[13] = "500", "40"  # Experimental cases > Experimental N
    _edit(rows, line, ",".join(cells))
    refused(folder, "CD004366-data-rows.csv row", "Experimental cases=500 > Experimental N=40")

    folder = _package_copy(tmp_path / "e")
    settings = next(folder.rglob("*-overall-estimates-and-settings.csv"))
    _edit(settings, "Analysis number,", "Outcome no,")
    refused(folder, "overall-estimates-and-settings.csv", "missing column 'Analysis number'")

    folder = _package_copy(tmp_path / "g")
    (folder / "CD004366-analysis-data" / "CD004366-parameters.csv").write_text("x\n")
    refused(folder, "diagnostic test accuracy")

    folder = _package_copy(tmp_path / "i")
    rows = next(folder.rglob("*-data-rows.csv"))
    _edit(rows, "Abdollahi 2017,2017,,,9.68,2.91,,25,", "Abdollahi 2017,2017,,,9.68,2.91,,1e400,")
    refused(folder, "CD004366-data-rows.csv row 2", "Experimental N='1e400'")


def test_one_package_file_alone(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    path.write_bytes(next(PACKAGE.rglob("*-data-rows.csv")).read_bytes())
    refused(path, "one file of a Cochrane data package")


# ----------------------------------------------------------------------------- formats


def test_empty_files(tmp_path: Path) -> None:
    refused(write(tmp_path, "empty.rm5", b""), "empty file")
    refused(write(tmp_path, "blank.csv", b"\xef\xbb\xbf \r\n\t"), "empty file")


def test_detect_looks_at_content() -> None:
    assert detect(b"PK\x03\x04rest") == "zip"
    assert detect(b"\xef\xbb\xbf  <?xml version='1.0'?><COCHRANE_REVIEW/>") == "rm5"
    assert detect((REVMAN / "Fleiss1993_CR.csv").read_bytes()) == "revman5_csv"
    assert detect(b"a,b\n1,2\n") is None


def test_unknown_formats(tmp_path: Path) -> None:
    refused(write(tmp_path, "notes.txt", "just some notes\n"), "unknown format", "expected")
    refused(write(tmp_path, "image.rm5", b"\x89PNG\r\n\x1a\n\x00\x00"), "unknown format")
    refused(write(tmp_path, "table.csv", "a,b,c\n1,2,3\n"), "unknown format")
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "x.csv").write_text("a,b\n")
    refused(tmp_path / "folder", "unknown format", "folder")
    other = tmp_path / "other.zip"
    with zipfile.ZipFile(other, "w") as archive:
        archive.writestr("readme.txt", "hello")
    refused(other, "unknown format", "zip")
    refused(tmp_path / "missing.rm5", "does not exist")


def test_symlinked_input_refused(tmp_path: Path) -> None:
    link = tmp_path / "link.rm5"
    os.symlink(REVMAN / "CD000023StatsDataOnly.rm5", link)
    refused(link, "symbolic link")
    folder = _package_copy(tmp_path / "pkg")
    os.symlink("/etc/hostname", folder / "CD004366-study-data" / "CD004366-study-arms.csv")
    refused(folder, "CD004366-study-arms.csv", "symbolic links are refused")


# ----------------------------------------------------------------------------- zips


def test_truncated_and_corrupt_zip(tmp_path: Path) -> None:
    data = package_zip(tmp_path).read_bytes()
    refused(write(tmp_path, "cut.zip", data[: len(data) // 2]), "truncated or corrupt zip")
    corrupt = bytearray(data)
    start = data.index(b"CD004366-data-rows.csv") + 200  # inside the deflated data
    corrupt[start : start + 64] = b"\x00" * 64
    refused(write(tmp_path, "corrupt.zip", bytes(corrupt)), "corrupt zip")


def _zip_with(tmp_path: Path, name: str, member: zipfile.ZipInfo | str, data: bytes) -> Path:
    path = tmp_path / name
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(member, data)
        archive.writestr("pkg/CD1-data-rows.csv", "Study\n")
    return path


def test_zip_slip_and_absolute_members(tmp_path: Path) -> None:
    refused(_zip_with(tmp_path, "slip.zip", "../evil.csv", b"x"), "'../evil.csv'", "'..'")
    refused(_zip_with(tmp_path, "slip2.zip", "a/../../evil.csv", b"x"), "'..'")
    refused(_zip_with(tmp_path, "abs.zip", "/etc/evil.csv", b"x"), "absolute path")
    refused(_zip_with(tmp_path, "drive.zip", "C:/evil.csv", b"x"), "absolute path")
    refused(_zip_with(tmp_path, "bs.zip", "..\\evil.csv", b"x"), "'..'")


def test_symlink_and_special_members(tmp_path: Path) -> None:
    link = zipfile.ZipInfo("pkg/CD1-study-arms.csv")
    link.create_system = 3
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    refused(_zip_with(tmp_path, "link.zip", link, b"/etc/passwd"), "symbolic links are refused")
    fifo = zipfile.ZipInfo("pkg/pipe")
    fifo.create_system = 3
    fifo.external_attr = (stat.S_IFIFO | 0o644) << 16
    refused(_zip_with(tmp_path, "fifo.zip", fifo, b""), "'pkg/pipe'", "not a regular file")


def test_duplicate_members(tmp_path: Path) -> None:
    path = tmp_path / "dup.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("pkg/CD1-data-rows.csv", "a\n")
        with pytest.warns(UserWarning, match="Duplicate name"):
            archive.writestr("pkg/CD1-data-rows.csv", "b\n")
    refused(path, "appears twice")


def test_nested_zips(tmp_path: Path) -> None:
    inner = package_zip(tmp_path, "inner.zip")
    good = tmp_path / "good.zip"
    with zipfile.ZipFile(good, "w") as archive:
        archive.write(inner, "files/CD004366-data.zip")
    assert len(read_review(good).analyses) == 27
    bad_inner = _zip_with(tmp_path, "bad_inner.zip", "../../escape.csv", b"x")
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as archive:
        archive.write(bad_inner, "files/data.zip")
    refused(bad, "bad.zip/files/data.zip", "'..'")
    deep = good
    for level in range(3):
        wrapper = tmp_path / f"deep{level}.zip"
        with zipfile.ZipFile(wrapper, "w") as archive:
            archive.write(deep, f"level{level}.zip")
        deep = wrapper
    refused(deep, "nested more than 3 deep")
    refused(good, "nested more than 0 deep", limits=Limits(max_zip_depth=0))


def test_size_limits(tmp_path: Path) -> None:
    rm5_path = REVMAN / "CD000023StatsDataOnly.rm5"
    refused(rm5_path, "over the limit of 1000", limits=Limits(max_file_bytes=1000))
    archive = package_zip(tmp_path)
    total = Limits(max_total_uncompressed=100_000)
    refused(archive, "unpacks to more than 100000 bytes", limits=total)
    refused(archive, "more than 3 members", limits=Limits(max_members=3))
    refused(archive, "over the limit of 50000", limits=Limits(max_file_bytes=50_000))
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zipped:
        zipped.writestr("pkg/CD1-data-rows.csv", b"0" * 2_000_000)
    refused(bomb, "compression ratio over 200", "CD1-data-rows.csv")
    small = Limits(max_ratio=2, ratio_check_from_bytes=0)
    refused(archive, "compression ratio over 2", limits=small)


def test_member_whose_header_lies_about_its_size(tmp_path: Path) -> None:
    path = tmp_path / "liar.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("pkg/CD1-data-rows.csv", b"A" * 1000)
    data = bytearray(path.read_bytes())
    # shrink the declared size in the central directory (uncompressed size field)
    central = data.index(b"PK\x01\x02")
    data[central + 24 : central + 28] = (10).to_bytes(4, "little")
    with pytest.raises(ImportSourceError, match=r"liar\.zip"):
        unpack_zip(bytes(data), "liar.zip", lambda name: True)


def test_extract_to_stays_inside(tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.mkdir()
    written = extract_to({"a/b.csv": b"1", "c.csv": b"2"}, target)
    assert sorted(p.relative_to(target.resolve()).as_posix() for p in written) == [
        "a/b.csv",
        "c.csv",
    ]
    with pytest.raises(ImportSourceError, match=r"'\.\.'"):
        extract_to({"../evil.csv": b"x"}, target)
    with pytest.raises(ImportSourceError, match="absolute"):
        extract_to({"/tmp/evil.csv": b"x"}, target)
    os.symlink(tmp_path, target / "link")
    with pytest.raises(ImportSourceError, match="outside"):
        extract_to({"link/evil.csv": b"x"}, target)
    assert not (tmp_path / "evil.csv").exists()


# ----------------------------------------------------------------------------- values


def test_value_parsing() -> None:
    assert parse_number("1.0E-6", "f", "row 2", "P") == 1e-6
    assert parse_number("4.69E-4", "f", "row 2", "P") == 4.69e-4
    assert parse_number("#N/A", "f", "row 2", "P") is None
    assert parse_number(" ", "f", "row 2", "P") is None
    assert parse_number("NaN", "f", "row 2", "P") is None
    assert parse_number("14,186", "f", "row 2", "N", grouped=True) == 14186
    with pytest.raises(ImportSourceError, match=r"^f: row 2: N='14,186' is not a number$"):
        parse_number("14,186", "f", "row 2", "N")
    with pytest.raises(ImportSourceError, match="is not a number"):
        parse_number("1_000", "f", "row 2", "N")
    assert parse_count("12.0", "f", "row 2", "N") == 12
    assert parse_year("2024/2/2") == 2024 and parse_year("2019///") == 2019
    assert parse_year("1995a") == 1995 and parse_year("n.d.") is None
    assert html_to_text("<p>A &amp; B&nbsp;</p><p>C<br>D</p>") == "A & B\nC\nD"
    assert html_to_text("p&lt;0.05 &gt; x") == "p<0.05 > x"
    assert html_to_text("<ul><li>one</li><li>two</li></ul>") == "one\ntwo"
