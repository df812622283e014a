"""Token bounds and estimates without a tokenizer (no downloads, no vocab files).

Two numbers size a hold (DESIGN.md section 4, docs/pricing.md):

* an **upper bound**: every byte-level BPE tokenizer (OpenAI, Anthropic) and SentencePiece
  with byte fallback (Gemini) emits at most one token per UTF-8 byte of text, so the byte
  count of the text can never be exceeded; images, audio and tool definitions get a
  documented allowance, and each message a fixed framing overhead;
* an **expected** count: ``ceil(ascii_bytes / 4) + non_ascii_code_points``. English prose
  averages about 4 characters per token; one token per non-ASCII code point slightly
  over-estimates CJK on current vocabularies (o200k and Claude merge common CJK pairs) and
  Cyrillic/Greek/accented Latin (often 2-4 letters per token). Rare CJK, emoji and code
  (about 3 characters per token) can be under-estimated: the expected count only decides
  whether to admit a request with a partial hold, never what is billed.

Everything is plain ``int`` arithmetic on ``str`` lengths; a body is walked once and only
tool/response-format definitions are serialised (once each).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from tollway.image_dims import dimensions

ASCII_BYTES_PER_TOKEN = 4
MESSAGE_OVERHEAD_TOKENS = 4  # role + separators per message (OpenAI documents 3, +1 for name)
REPLY_PRIMING_TOKENS = 3  # every reply is primed with <|start|>assistant<|message|>
TOOLS_OVERHEAD_TOKENS = 400  # Anthropic adds a ~350-token tool-use system prompt
IMAGE_TOKENS_MAX = 1_600  # worst high-detail image at base rates: OpenAI tiles 1,445 /
#                           patches 1,536; Anthropic caps images at ~1,600 tokens
AUDIO_BYTES_PER_TOKEN = 20  # <=32 audio tokens/s (Gemini) at >=6 kbit/s (750 bytes/s)

# Models whose images are counted at a multiple of the base rate (priced so the cost matches,
# but the *token* count - which the hold multiplies by the input price - is larger).
IMAGE_TOKENS_BY_MODEL: dict[str, int] = {
    "gpt-4o-mini": 48_169,  # 2,833 base + 8 tiles x 5,667
    "gpt-4.1-mini": 2_489,  # 1,536 patches x 1.62
    "gpt-4.1-nano": 3_779,  # 1,536 patches x 2.46
    "o4-mini": 2_642,  # 1,536 patches x 1.72
}

_IMAGE_PART_TYPES = frozenset({"image_url", "input_image", "image"})
_TEXT_PART_TYPES = frozenset({"text", "input_text", "output_text"})
_DEFINITION_KEYS = ("tools", "functions", "response_format")


def image_tokens_for(model: str) -> int:
    """Per-image hold allowance for ``model`` (longest matching prefix, else the default)."""
    best = ""
    for prefix in IMAGE_TOKENS_BY_MODEL:
        if model.startswith(prefix) and len(prefix) > len(best):
            best = prefix
    return IMAGE_TOKENS_BY_MODEL[best] if best else IMAGE_TOKENS_MAX


def utf8_len(text: str) -> int:
    """Length of ``text`` in UTF-8 bytes (no copy for pure-ASCII text)."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def _split(text: str) -> tuple[int, int, int]:
    """(utf8 bytes, ascii code points, non-ascii code points)."""
    if text.isascii():
        n = len(text)
        return n, n, 0
    ascii_count = len(text.encode("ascii", "ignore"))
    return utf8_len(text), ascii_count, len(text) - ascii_count


def _heuristic(ascii_count: int, non_ascii: int) -> int:
    return -(-ascii_count // ASCII_BYTES_PER_TOKEN) + non_ascii


def estimate_text_tokens(text: str) -> int:
    """Expected tokens of ``text``: ceil(ASCII chars / 4) + 1 per non-ASCII code point."""
    _, ascii_count, non_ascii = _split(text)
    return _heuristic(ascii_count, non_ascii)


def count_output_tokens(text: str) -> int:
    """Output tokens of streamed text whose usage never arrived (same heuristic)."""
    return estimate_text_tokens(text)


class _Tally:
    __slots__ = ("ascii", "fixed", "non_ascii", "utf8")

    def __init__(self) -> None:
        self.utf8 = 0  # text bytes (upper bound)
        self.ascii = 0
        self.non_ascii = 0
        self.fixed = 0  # allowances counted identically in both numbers

    def text(self, value: str) -> None:
        b, a, n = _split(value)
        self.utf8 += b
        self.ascii += a
        self.non_ascii += n

    def walk(self, value: Any) -> None:
        """Count every string leaf (ids, names, arguments ...): over-counting is safe."""
        if isinstance(value, str):
            self.text(value)
        elif isinstance(value, Mapping):
            for item in value.values():
                self.walk(item)
        elif isinstance(value, list | tuple):
            for item in value:
                self.walk(item)

    def part(self, part: Any, image_tokens: int) -> None:
        if not isinstance(part, Mapping):
            self.walk(part)
            return
        kind = part.get("type")
        if kind in _TEXT_PART_TYPES:
            text = part.get("text")
            if isinstance(text, str):
                self.text(text)
        elif kind in _IMAGE_PART_TYPES:
            self.fixed += image_tokens
        elif kind == "tool_use":  # Anthropic: the input is JSON (numbers count too)
            self.walk(part.get("name"))
            self.walk(part.get("id"))
            self.fixed += _json_bytes(part.get("input"))
        elif kind == "input_audio":
            audio = part.get("input_audio")
            data = audio.get("data") if isinstance(audio, Mapping) else None
            size = len(data) * 3 // 4 if isinstance(data, str) else 0
            self.fixed += -(-size // AUDIO_BYTES_PER_TOKEN)
        else:  # file, document, refusal, tool_result ...: count their strings
            self.walk(part)

    def content(self, content: Any, image_tokens: int) -> None:
        if isinstance(content, str):
            self.text(content)
        elif isinstance(content, list):
            for part in content:
                self.part(part, image_tokens)
        elif content is not None:
            self.walk(content)

    def bounds(self) -> tuple[int, int]:
        upper = self.utf8 + self.fixed
        expected = _heuristic(self.ascii, self.non_ascii) + self.fixed
        return upper, expected


def _json_bytes(value: Any) -> int:
    try:
        return len(orjson.dumps(value))
    except TypeError:  # not JSON-able (cannot come from a parsed body); stay conservative
        return utf8_len(repr(value))


def chat_input_bounds(body: Mapping[str, Any], *, image_tokens: int = IMAGE_TOKENS_MAX) -> tuple[int, int]:
    """(upper_bound, expected) input tokens of a chat request body.

    OpenAI Chat Completions shape (``messages`` with string content or content parts), also
    tolerating an Anthropic-style top-level ``system``. Upper bound = UTF-8 bytes of all text
    (content, names, tool calls) + ``image_tokens`` per image part + audio allowance + JSON
    bytes of ``tools``/``functions``/``response_format`` (+ a tool-prompt allowance) +
    per-message framing. Expected = the text heuristic + the same allowances.
    """
    tally = _Tally()
    system = body.get("system")
    if system is not None:
        tally.content(system, image_tokens)
        tally.fixed += MESSAGE_OVERHEAD_TOKENS
    messages = body.get("messages")
    if isinstance(messages, list):
        for message in messages:
            tally.fixed += MESSAGE_OVERHEAD_TOKENS
            if not isinstance(message, Mapping):
                tally.walk(message)
                continue
            for key, value in message.items():
                if key == "content":
                    tally.content(value, image_tokens)
                elif key != "role":
                    tally.walk(value)
    for key in _DEFINITION_KEYS:
        value = body.get(key)
        if value:
            tally.fixed += _json_bytes(value)
            if key != "response_format":
                tally.fixed += TOOLS_OVERHEAD_TOKENS
    tally.fixed += REPLY_PRIMING_TOKENS
    return tally.bounds()


def embedding_input_bounds(body: Mapping[str, Any]) -> tuple[int, int]:
    """(upper_bound, expected) input tokens of an embeddings body.

    ``input`` may be a string, a list of strings, a token array (list of ints) or a list of
    token arrays; token arrays count exactly in both numbers.
    """
    tally = _Tally()
    value = body.get("input")
    if isinstance(value, str):
        tally.text(value)
    elif isinstance(value, list):
        if value and all(isinstance(v, int) for v in value):
            tally.fixed += len(value)
        else:
            for item in value:
                if isinstance(item, str):
                    tally.text(item)
                elif isinstance(item, list):
                    tally.fixed += len(item)
                else:
                    tally.walk(item)
    return tally.bounds()


def _camel(d: Any, camel: str) -> Any:
    """A Gemini field by its camelCase name or its snake_case twin (REST takes both)."""
    if not isinstance(d, Mapping):
        return None
    if camel in d:
        return d[camel]
    return d.get("".join("_" + c.lower() if c.isupper() else c for c in camel))


GEMINI_TILE = 768  # Gemini counts an image as 258-token tiles of 768 x 768
GEMINI_TOKENS_PER_TILE = 258
GEMINI_SMALL_IMAGE = 384  # both sides at most this: one tile's worth


def gemini_image_tokens(b64: Any, floor: int = IMAGE_TOKENS_MAX) -> int:
    """Hold allowance for an inline image on Gemini: Gemini's own count (258 tokens, or 258
    per 768-px tile for larger images) read from the image's header, but never below
    ``floor`` (newer Gemini models' media resolutions can count a small image higher)."""
    dims = dimensions(b64) if isinstance(b64, str) else None
    if dims is None:
        return floor
    width, height = dims
    if width <= GEMINI_SMALL_IMAGE and height <= GEMINI_SMALL_IMAGE:
        return max(floor, GEMINI_TOKENS_PER_TILE)
    tiles = -(-width // GEMINI_TILE) * -(-height // GEMINI_TILE)
    return max(floor, tiles * GEMINI_TOKENS_PER_TILE)


def _gemini_parts(tally: _Tally, parts: Any, image_tokens: int) -> None:
    for part in parts if isinstance(parts, list) else ():
        if not isinstance(part, Mapping):
            tally.walk(part)
            continue
        text = part.get("text")
        if isinstance(text, str):
            tally.text(text)
        data = _camel(part, "inlineData")
        if isinstance(data, Mapping):
            mime = str(_camel(data, "mimeType") or "")
            payload = data.get("data")
            size = len(payload) * 3 // 4 if isinstance(payload, str) else 0
            if mime.startswith("image/"):
                tally.fixed += gemini_image_tokens(payload, image_tokens)
            else:  # audio, video, documents: a bound from the decoded size
                tally.fixed += -(-size // AUDIO_BYTES_PER_TOKEN)
        if isinstance(_camel(part, "fileData"), Mapping):
            tally.fixed += image_tokens  # a file by reference: its size is unknown here
        for key in ("functionCall", "functionResponse", "executableCode", "codeExecutionResult"):
            value = _camel(part, key)
            if value is not None:
                tally.fixed += _json_bytes(value)


def gemini_input_bounds(body: Mapping[str, Any], *, image_tokens: int = IMAGE_TOKENS_MAX) -> tuple[int, int]:
    """(upper_bound, expected) input tokens of a Gemini generateContent body.

    ``systemInstruction`` and every ``contents[].parts[]``: text as in
    :func:`chat_input_bounds`; ``inlineData`` images ``image_tokens`` each, other inline media
    their decoded bytes / ``AUDIO_BYTES_PER_TOKEN``; ``fileData`` references ``image_tokens``;
    function calls and responses their JSON bytes; ``tools`` their JSON bytes + the tool
    allowance; per-turn framing. A ``cachedContent`` reference is not counted (its size is
    unknown here; the settlement bills what upstream reports).
    """
    tally = _Tally()
    system = _camel(body, "systemInstruction")
    if isinstance(system, Mapping):
        _gemini_parts(tally, system.get("parts"), image_tokens)
        tally.fixed += MESSAGE_OVERHEAD_TOKENS
    elif isinstance(system, str):
        tally.text(system)
    contents = body.get("contents")
    for content in contents if isinstance(contents, list) else ():
        tally.fixed += MESSAGE_OVERHEAD_TOKENS
        if isinstance(content, Mapping):
            _gemini_parts(tally, content.get("parts"), image_tokens)
        elif isinstance(content, str):
            tally.text(content)
    tools = body.get("tools")
    if tools:
        tally.fixed += _json_bytes(tools) + TOOLS_OVERHEAD_TOKENS
    tally.fixed += REPLY_PRIMING_TOKENS
    return tally.bounds()


def responses_input_bounds(
    body: Mapping[str, Any], *, image_tokens: int = IMAGE_TOKENS_MAX
) -> tuple[int, int]:
    """(upper_bound, expected) input tokens of an OpenAI Responses body.

    ``instructions`` and ``input`` (a string, or items: messages with string content or
    ``input_text`` / ``input_image`` / ``input_file`` parts, function calls and their outputs,
    reasoning items) as in :func:`chat_input_bounds`; ``tools`` and ``text`` (the output
    format) their JSON bytes. A ``previous_response_id`` brings in a conversation stored
    upstream, which cannot be measured here: the settlement bills what upstream reports.
    """
    tally = _Tally()
    instructions = body.get("instructions")
    if isinstance(instructions, str):
        tally.text(instructions)
        tally.fixed += MESSAGE_OVERHEAD_TOKENS
    value = body.get("input")
    if isinstance(value, str):
        tally.text(value)
        tally.fixed += MESSAGE_OVERHEAD_TOKENS
    elif isinstance(value, list):
        for item in value:
            tally.fixed += MESSAGE_OVERHEAD_TOKENS
            if not isinstance(item, Mapping):
                tally.walk(item)
                continue
            for key, part in item.items():
                if key == "content":
                    tally.content(part, image_tokens)
                elif key not in ("role", "type", "id", "status"):
                    tally.walk(part)
    tools = body.get("tools")
    if tools:
        tally.fixed += _json_bytes(tools) + TOOLS_OVERHEAD_TOKENS
    if body.get("text"):
        tally.fixed += _json_bytes(body["text"])
    tally.fixed += REPLY_PRIMING_TOKENS
    return tally.bounds()
