"""Error reasons, their gRPC codes, and the rich google.rpc.Status trailer."""

from __future__ import annotations

import base64
import re
import urllib.parse

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from govshare.gateway import (
    ERROR_DOMAIN,
    GovshareError,
    Reason,
    grpc_code_of,
    name_list,
    rich_status,
    to_grpc_status,
)
from govshare.gateway import _errors as errors_module

DESIGN_REASONS = {
    "CALLER_UNKNOWN",
    "CALLER_SUSPENDED",
    "RESOURCE_NOT_FOUND",
    "RESOURCE_NOT_SHARED",
    "GRANT_REQUIRED",
    "FIELD_NOT_GRANTED",
    "MATTER_NOT_COVERED",
    "CONSENT_REQUIRED",
    "CONSENT_INVALID",
    "QUOTA_EXCEEDED",
    "HOLDER_ID_INVALID",
    "HOLDER_NOT_FOUND",
    "PROVIDER_UNAVAILABLE",
    "PROVIDER_TIMEOUT",
    "ROLE_REQUIRED",
}


def docstring_table() -> dict[str, str]:
    """reason -> gRPC code name, as the module docstring's table lists them."""
    doc = errors_module.__doc__ or ""
    rows = re.findall(r"^ {4}([A-Z][A-Z_]+) +([A-Z][A-Z_]+) +\S", doc, flags=re.MULTILINE)
    return dict(rows)


def decode_details(status: grpc.Status) -> status_pb2.Status:
    trailers = dict(status.trailing_metadata)
    return status_pb2.Status.FromString(trailers["grpc-status-details-bin"])


class TestReasons:
    def test_design_reasons_exist(self) -> None:
        """Every denial reason DESIGN.md names is a Reason."""
        assert {reason.value for reason in Reason} >= DESIGN_REASONS

    def test_values_are_their_names(self) -> None:
        """A Reason's wire value is its name."""
        assert all(reason.value == reason.name for reason in Reason)

    @pytest.mark.parametrize("reason", list(Reason))
    def test_every_reason_has_an_error_code(self, reason: Reason) -> None:
        """Each reason maps to a gRPC status code other than OK."""
        code = grpc_code_of(reason)
        assert isinstance(code, grpc.StatusCode)
        assert code is not grpc.StatusCode.OK

    @pytest.mark.parametrize(
        ("reason", "code"),
        [
            (Reason.CALLER_UNKNOWN, grpc.StatusCode.PERMISSION_DENIED),
            (Reason.RESOURCE_NOT_FOUND, grpc.StatusCode.NOT_FOUND),
            (Reason.FIELD_UNKNOWN, grpc.StatusCode.INVALID_ARGUMENT),
            (Reason.QUOTA_EXCEEDED, grpc.StatusCode.RESOURCE_EXHAUSTED),
            (Reason.PROVIDER_UNAVAILABLE, grpc.StatusCode.UNAVAILABLE),
            (Reason.PROVIDER_TIMEOUT, grpc.StatusCode.DEADLINE_EXCEEDED),
            (Reason.INTERNAL_ERROR, grpc.StatusCode.INTERNAL),
        ],
    )
    def test_representative_codes(self, reason: Reason, code: grpc.StatusCode) -> None:
        """Denials are PERMISSION_DENIED, lookups NOT_FOUND, registry trouble UNAVAILABLE/DEADLINE."""
        assert grpc_code_of(reason) is code


class TestDocstringTable:
    def test_lists_every_reason_exactly_once(self) -> None:
        """The module docstring table has one row per Reason, no more, no fewer."""
        doc = errors_module.__doc__ or ""
        listed = re.findall(r"^ {4}([A-Z][A-Z_]+) +[A-Z][A-Z_]+ +\S", doc, flags=re.MULTILINE)
        assert sorted(listed) == sorted(reason.value for reason in Reason)

    def test_codes_match_the_mapping(self) -> None:
        """The code each row names is the code grpc_code_of returns."""
        table = docstring_table()
        assert {name: grpc_code_of(Reason(name)).name for name in table} == table


class TestRichStatus:
    @pytest.mark.parametrize("reason", list(Reason))
    def test_status_carries_one_error_info(self, reason: Reason) -> None:
        """to_grpc_status packs one ErrorInfo (domain govshare, reason, metadata)."""
        error = GovshareError(reason, "explained", resource="101001/00001", fields="a,b")
        status = to_grpc_status(error)
        assert status.code is grpc_code_of(reason)
        assert status.details == "explained"
        rich = decode_details(status)
        assert rich.code == grpc_code_of(reason).value[0]
        assert rich.message == "explained"
        assert len(rich.details) == 1
        info = error_details_pb2.ErrorInfo()
        assert rich.details[0].Unpack(info)
        assert info.reason == reason.value
        assert info.domain == ERROR_DOMAIN == "govshare"
        assert dict(info.metadata) == {"resource": "101001/00001", "fields": "a,b"}

    def test_no_metadata(self) -> None:
        """An error without metadata has an empty metadata map."""
        status = to_grpc_status(GovshareError(Reason.CALLER_UNKNOWN, "who are you"))
        info = error_details_pb2.ErrorInfo()
        assert decode_details(status).details[0].Unpack(info)
        assert (info.reason, dict(info.metadata)) == ("CALLER_UNKNOWN", {})

    def test_error_keeps_its_parts(self) -> None:
        """GovshareError exposes reason, message and metadata; str() is the message."""
        error = GovshareError(Reason.GRANT_REQUIRED, "no grant", resource="r")
        assert (error.reason, error.message, dict(error.metadata)) == (
            Reason.GRANT_REQUIRED,
            "no grant",
            {"resource": "r"},
        )
        assert str(error) == "no grant"

    def test_echoed_values_are_cut_short(self) -> None:
        """Metadata values stop at 128 characters and the message at 1024, so a long input
        echoed back cannot push the status past the client's 16 KiB trailer limit."""
        error = GovshareError(Reason.RESOURCE_NOT_FOUND, "m" * 5000, certificate_type="x" * 20_000)
        decoded = decode_details(to_grpc_status(error))
        info = error_details_pb2.ErrorInfo()
        assert decoded.details[0].Unpack(info)
        assert info.metadata["certificate_type"] == "x" * 509 + "…"
        assert decoded.message == "m" * 1021 + "…"
        fits = GovshareError(Reason.RESOURCE_NOT_FOUND, "no such type", certificate_type="y" * 512)
        assert decode_details(to_grpc_status(fits)).details[0].Unpack(info)
        assert info.metadata["certificate_type"] == "y" * 512

    def test_the_worst_status_fits_the_clients_trailer_limit(self) -> None:
        """Long non-ASCII echoes everywhere (message, metadata, 300 violations) still make
        a status well under 16 KiB on the wire, keeping whole UTF-8 characters, with the
        violations beyond the budget summarised."""
        long = "名" * 5000
        status = rich_status(
            grpc.StatusCode.INVALID_ARGUMENT,
            "REQUEST_INVALID",
            long,
            {"a": long, "b": long, "c": long},
            [(f"data_items[{n}].name", f"data item name {long!r}") for n in range(300)],
        )
        details = dict(status.trailing_metadata)["grpc-status-details-bin"]
        message_on_wire = urllib.parse.quote(status.details.encode("utf-8"), safe="")
        assert len(base64.b64encode(details)) + len(message_on_wire) < 12 * 1024
        decoded = decode_details(status)
        bad_request = error_details_pb2.BadRequest()
        assert decoded.details[1].Unpack(bad_request)
        *kept, summary = bad_request.field_violations
        assert kept
        assert summary.description == f"(+{300 - len(kept)} more violations)"
        assert decoded.message.endswith("名…")

    def test_name_lists_are_cut_between_whole_names(self) -> None:
        """A long list of data item names keeps whole names and counts the rest, so a
        client can still tell exactly which items to drop; a short list is unchanged."""
        names = [f"operating_period_end_{n:02d}" for n in range(40)]
        assert name_list(names[:3]) == ",".join(names[:3])
        listed = name_list(names)
        assert len(listed) <= 512
        *kept, rest = listed.split(",")
        assert kept == names[: len(kept)]
        assert rest == f"(+{40 - len(kept)} more)"
        error = GovshareError(Reason.FIELD_UNKNOWN, "unknown", fields=listed)
        info = error_details_pb2.ErrorInfo()
        assert decode_details(to_grpc_status(error)).details[0].Unpack(info)
        assert info.metadata["fields"] == listed
