"""A service's catch-all names where an error came from, never its message.

The DICOM node once noted a row's results as "not sent to pacs: NameError" and nothing
else (issue 26's hostile-header run, once in many): the message is not logged because
it may quote a header value, so the type was all that was left. ``logs.exception_site``
adds the raising line and XRayDesk's own call that led there."""

from __future__ import annotations

import json
from pathlib import Path

import xraydesk
from xraydesk import logs

SECRET = "DOE^JANE"
# a function whose frames read as XRayDesk's own (a file in the package's folder)
OURS = compile(
    "def read_header(text):\n    return json.loads(text)\n",
    str(Path(xraydesk.__file__).parent / "dicomnet" / "header_reader.py"),
    "exec",
)


def test_site_names_the_raising_line_and_our_call_not_the_message() -> None:
    space = {"json": json}
    exec(OURS, space)
    try:
        space["read_header"](SECRET)  # raises in the json package, quoting the value
    except ValueError as exc:
        site = logs.exception_site(exc)
    assert site.startswith("JSONDecodeError at json/decoder.py:")
    assert site.endswith("(from dicomnet/header_reader.py:2 in read_header)")
    assert SECRET not in site and "DOE" not in site
    assert "/root/" not in site and "/home/" not in site


def test_an_error_raised_in_our_own_code_names_one_site() -> None:
    try:
        raise NameError("name 'x' is not defined")
    except NameError as exc:
        site = logs.exception_site(exc)
    assert site.startswith("NameError at dicomnet/test_exception_site.py:")
    assert "'x'" not in site


def test_an_exception_never_raised_gives_its_type() -> None:
    assert logs.exception_site(KeyError("secret")) == "KeyError"
