"""The status reason phrases exist twice, once per language: http/response.cpp writes the heads the
I/O thread sends, and the package's flask.Response stand-in (api/_response_base.py) sends the status
lines of a script's own responses when Flask is not installed. Both copy Werkzeug's table; they must
agree entry for entry, and the C++ upper-case column must be the title column upper-cased, as Flask
writes it."""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[2]


def cpp_table():
    source = (ROOT / "http" / "response.cpp").read_text()
    body = source[source.index("kStatusTexts[] = {"):]
    body = body[:body.index("};")]
    rows = re.findall(r'\{(\d+), "([^"]*)", "([^"]*)"\}', body)
    assert rows, "the C++ status table was not found in http/response.cpp"
    return {int(code): (title, upper) for code, title, upper in rows}


def test_the_cpp_and_python_reason_tables_agree():
    from azureml_inference_server_http.api._response_base import HTTP_STATUS_CODES

    cpp = cpp_table()
    assert {code: title for code, (title, _) in cpp.items()} == HTTP_STATUS_CODES


def test_the_cpp_upper_case_phrases_are_the_titles_upper_cased():
    for code, (title, upper) in cpp_table().items():
        assert upper == title.upper(), code
