"""``multipart/form-data`` bodies (audio uploads), read once and passed on unchanged except
for the fields Tollway must set (the channel's model name)."""

from __future__ import annotations

from dataclasses import dataclass

from tollway.errors import InvalidRequest


@dataclass(frozen=True, slots=True)
class Part:
    name: str
    filename: str | None
    head: bytes  # the part's header lines, as sent
    body: bytes


@dataclass(frozen=True, slots=True)
class Form:
    content_type: str
    boundary: bytes
    parts: tuple[Part, ...]

    def field(self, name: str) -> str | None:
        for part in self.parts:
            if part.name == name and part.filename is None:
                return part.body.decode("utf-8", "replace")
        return None

    def file(self, name: str) -> Part | None:
        for part in self.parts:
            if part.name == name and part.filename is not None:
                return part
        return None

    def encode(self, **fields: str) -> bytes:
        """The form again, with ``fields`` (existing text fields) set to new values."""
        delimiter = b"--" + self.boundary
        out: list[bytes] = []
        for part in self.parts:
            body = part.body
            if part.filename is None and part.name in fields:
                body = fields[part.name].encode()
            out.append(delimiter + b"\r\n" + part.head + b"\r\n\r\n" + body + b"\r\n")
        out.append(delimiter + b"--\r\n")
        return b"".join(out)


def _param(header: str, key: str) -> str | None:
    for piece in header.split(";")[1:]:
        name, _, value = piece.strip().partition("=")
        if name.strip().lower() == key:
            return value.strip().strip('"')
    return None


def parse(raw: bytes, content_type: str | None) -> Form:
    if not content_type or not content_type.lower().startswith("multipart/form-data"):
        raise InvalidRequest("the request must be multipart/form-data (a file upload)", param="file")
    boundary = _param(content_type, "boundary")
    if not boundary:
        raise InvalidRequest("the multipart body has no boundary", param="file")
    delimiter = b"--" + boundary.encode("latin-1")
    parts: list[Part] = []
    for chunk in raw.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break
        chunk = chunk.removeprefix(b"\r\n").removesuffix(b"\r\n")
        head, sep, body = chunk.partition(b"\r\n\r\n")
        if not sep:
            raise InvalidRequest("a multipart part has no header block", param="file")
        disposition = ""
        for line in head.split(b"\r\n"):
            key, _, value = line.decode("latin-1").partition(":")
            if key.strip().lower() == "content-disposition":
                disposition = value
        name = _param(disposition, "name")
        if name is None:
            raise InvalidRequest("a multipart part has no name", param="file")
        parts.append(Part(name, _param(disposition, "filename"), head, body))
    return Form(content_type, boundary.encode("latin-1"), tuple(parts))
