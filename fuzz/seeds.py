#!/usr/bin/env python3
"""Writes the seed corpus of every fuzz target into fuzz/corpus/<target>/.

Seeds are small, meaningful inputs (valid sessions, split headers, huge declared lengths...) in
each target's input format, described in src/fuzzing/<target>.rs. Run from anywhere:
`python3 fuzz/seeds.py`. Files libFuzzer adds while fuzzing go to a scratch directory (see
.ci/fuzz), so the committed corpus stays this readable set plus named crash reproducers.
"""
import os

HERE = os.path.dirname(os.path.abspath(__file__))


def frame(body):
    body = body.encode() if isinstance(body, str) else body
    return f"{len(body):<10}".encode() + body


def frames(*bodies):
    return b"".join(frame(b) for b in bodies)


def write(target, name, data):
    path = os.path.join(HERE, "corpus", target)
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, name), "wb") as f:
        f.write(data)


# ---- frame_decoder: [limit selector, cut count, cuts.., stream..] -------------------------------
# Limit selectors: 0 -> 0, 1 -> 7, 2 -> 8 KiB, 3 -> 64 KiB, 4 -> unlimited.
SESSION = frames("3\nalice\npw", "2\nbob\nhi there", "4\n", "", "-1\n")
FRAME_DECODER = {
    "session_whole": bytes([2, 1, 255]) + SESSION,
    "session_byte_by_byte": bytes([2, 1, 1]) + SESSION,
    "split_headers": bytes([2, 3, 3, 7, 2]) + SESSION,
    "huge_declared_length": bytes([2, 1, 4]) + b"9999999999x",
    "one_above_limit": bytes([2, 1, 255]) + b"8193      x",
    "exactly_at_limit_7": bytes([1, 1, 5]) + frame("1234567") + frame("12345678"),
    "bad_header_letters": bytes([2, 0]) + b"abc       hello",
    "bad_header_negative": bytes([2, 0]) + b"-1        ",
    "bad_header_plus": bytes([2, 0]) + b"+5        hello",
    "bad_header_tab": bytes([2, 0]) + b"5\t        hello",
    "bad_header_inner_space": bytes([2, 0]) + b"1 2       ",
    "spaces_around_length": bytes([2, 0]) + b"   3      abc",
    "all_spaces": bytes([2, 0]) + b"          ",
    "leading_zeros": bytes([4, 0]) + b"0000000003abc",
    "limit_change_after_login": bytes([0, 0]) + frames("L", "Lx", "xyz"),
    "body_cut_short": bytes([3, 2, 4, 9]) + b"100       only a few bytes",
}

# ---- request_parser: one body ------------------------------------------------------------------
REQUEST_PARSER = {
    "help": b"0\n",
    "login": b"1\ntester\nabc123",
    "send_multiline": b"2\nabc\nhi\nthere",
    "register": b"3\nnew\npw",
    "list_pattern": b"4\nt*",
    "list_bare": b"4",
    "delete": b"5\nabc\nabc",
    "logout": b"-1\n",
    "ticket": b"6",
    "unknown_code": b"9\nx",
    "long_code": b"9" * 100,
    "missing_password": b"1\nname",
    "extra_field": b"3\na\nb\nc",
    "invalid_utf8": b"1\n\xff\xfe\npw",
    "utf8_in_code": "é\n".encode(),
    "relay_ticketed_hello": b"bob\n0123456789abcdef0123456789abcdef",
    "ack": b"7\n12",
    "ack_plus": b"7\n+5",
    "ack_overflow": b"7\n99999999999999999999",
    "crlf": b"1\r\nbob\r\npw",
    "empty": b"",
}

# ---- core_streams: [config selector, program..] --------------------------------------------------
OPEN_CMD, OPEN_RELAY, RAW, FRAME, CLOSE, DURABLE, TOGGLE_DURABLE, ADVANCE = range(8)
TOGGLE_HOLD, RUN_JOBS, TOGGLE_WRITTEN, WRITTEN, TICKET_HELLO = range(8, 13)


def f(conn, body):
    body = body.encode() if isinstance(body, str) else body
    assert len(body) < 256
    return bytes([FRAME, conn, len(body)]) + body


def raw(conn, data):
    assert len(data) < 256
    return bytes([RAW, conn, len(data)]) + data


def program(*parts):
    return b"".join(bytes(p) if isinstance(p, list) else p for p in parts)


CHAT = program(
    [OPEN_CMD, 0], [OPEN_CMD, 0],
    f(0, "3\nalice\npw"), f(1, "3\nbob\npw"),
    [OPEN_RELAY, 0], f(2, "bob"),
    f(0, "2\nbob\nhello"), f(1, "4\n"), f(1, "-1\n"),
    f(0, "2\nbob\nqueued while away"), f(1, "1\nbob\npw"),
    [OPEN_RELAY, 0], f(3, "bob"),
    f(0, "5\nalice\npw"), f(1, "0\n"),
)
CORE_STREAMS = {
    "chat_session": bytes([0]) + CHAT,
    "chat_session_tiny_limits": bytes([1]) + CHAT,
    "durability_delayed": bytes([0]) + program(
        [TOGGLE_DURABLE], [OPEN_CMD, 0], [OPEN_CMD, 0],
        f(0, "3\nalice\npw"), f(1, "3\nbob\npw"), [DURABLE],
        [OPEN_RELAY, 0], f(2, "bob"), f(0, "2\nbob\nx"), f(0, "2\nbob\ny"), [DURABLE],
    ),
    "password_jobs_held_then_close": bytes([0]) + program(
        [TOGGLE_HOLD], [OPEN_CMD, 0], f(0, "3\nalice\npw"), f(0, "4\n"),
        [CLOSE, 0], [OPEN_CMD, 0], f(1, "1\nalice\npw"), [RUN_JOBS],
    ),
    "takeover_with_unwritten_push": bytes([0]) + program(
        [TOGGLE_WRITTEN], [OPEN_CMD, 0], [OPEN_CMD, 0],
        f(0, "3\nalice\npw"), f(1, "3\nbob\npw"), [OPEN_RELAY, 0], f(2, "bob"),
        f(0, "2\nbob\nfirst"), [OPEN_CMD, 0], f(3, "1\nbob\npw"),
        [TOGGLE_WRITTEN], [OPEN_RELAY, 0], f(4, "bob"), [WRITTEN, 4],
    ),
    "header_split_in_raw_pieces": bytes([0]) + program(
        [OPEN_CMD, 1], raw(0, b"12 "), raw(0, b"       3\nbo"), raw(0, b"b\npw"),
        raw(0, frame("4\n") + frame("0\n")),
    ),
    "huge_declared_length": bytes([0]) + program([OPEN_CMD, 0], raw(0, b"9999999999")),
    "body_cut_short_then_close": bytes([0]) + program(
        [OPEN_CMD, 0], raw(0, b"100       only a few"), [CLOSE, 0],
    ),
    "silent_connections_time_out": bytes([0]) + program(
        [OPEN_CMD, 0], [OPEN_RELAY, 0], raw(0, b"5         ab"), [ADVANCE, 70], [ADVANCE, 60],
    ),
    "relay_lies_about_user": bytes([0]) + program(
        [OPEN_CMD, 0], f(0, "3\nalice\npw"), [OPEN_RELAY, 2], f(1, "alice"),
        [OPEN_RELAY, 0], f(2, "mallory"), [OPEN_RELAY, 0], f(3, "alice\nnot-a-ticket"),
        [OPEN_RELAY, 0], f(4, "alice"), [OPEN_RELAY, 0], f(5, "alice"),
    ),
    "queue_and_connection_limits": bytes([1]) + program(
        [OPEN_CMD, 0], [OPEN_CMD, 0], f(0, "3\na\npw"), f(1, "3\nb\npw"), f(1, "-1\n"),
        f(0, "2\nb\n1"), f(0, "2\nb\n2"), f(0, "2\nb\n3"), f(0, "2\nb\n4"),
        [OPEN_CMD, 0], [OPEN_CMD, 0], [OPEN_CMD, 0],
    ),
    "pipelined_flood": bytes([1]) + program(
        [OPEN_CMD, 0], raw(0, frame("0") * 20),
    ),
    "ticket_and_acks": bytes([0]) + program(
        [OPEN_CMD, 0], [OPEN_CMD, 0], f(0, "3\nalice\npw"), f(1, "3\nbob\npw"), f(1, "6"),
        [OPEN_RELAY, 0], [TICKET_HELLO, 2, 1, 3], b"bob",
        f(0, "2\nbob\nhi"), f(2, "7\n3"), f(2, "7\n99"), f(2, "8\n1"),
    ),
}

# ---- log_recovery: [flags (bit 0: accept data loss, bits 1-2: prealloc), program..] ----------------------------------
APPEND, SYNC, FLUSH, SNAPSHOT, CRASH, FLIP, CUT, GARBAGE, REMOVE, NEW_FILE = range(10)


PREALLOC_64, PREALLOC_256, PREALLOC_4096 = 1 << 1, 2 << 1, 3 << 1


def append(kind, target=0, text=b"hello"):
    return bytes([APPEND, kind, target, len(text)]) + text


# Register, register, message, message, delivered, message, delete.
SOME = program(append(0), append(0), append(1, 1), append(1, 1, b"again"), append(2, 1),
               append(1, 0, b"to the first"), append(3, 0))
LOG_RECOVERY = {
    "synced_then_crash": bytes([0]) + program(SOME, [SYNC], append(1, 0), [CRASH, 1]),
    "unsynced_tail_crashes": bytes([0]) + program(
        SOME, [SYNC], append(1, 0), append(1, 0), [FLUSH], [CRASH, 2], append(0), [FLUSH],
        [CRASH, 3], append(0), [CRASH, 4],
    ),
    "snapshot_then_crash": bytes([0]) + program(
        SOME, [SYNC], [SNAPSHOT], append(1, 0), [FLUSH], [CRASH, 5], append(0), [SYNC],
    ),
    "flip_mid_log_refused": bytes([0]) + program(SOME, [SYNC], [FLIP, 0, 0, 20, 0x40]),
    "flip_mid_log_accepted": bytes([1]) + program(SOME, [SYNC], [FLIP, 0, 0, 20, 0x40], append(0)),
    "flip_checksum_field": bytes([1]) + program(SOME, [SYNC], [FLIP, 0, 0, 5, 0x01]),
    "flip_last_frame": bytes([0]) + program(SOME, [SYNC], [FLIP, 0, 0, 250, 0x80]),
    "cut_mid_frame": bytes([0]) + program(SOME, [SYNC], [CUT, 0, 0, 60]),
    "garbage_after_log": bytes([0]) + program(SOME, [SYNC], bytes([GARBAGE, 0, 12]) + b"\x00" * 12),
    "remove_snapshot": bytes([1]) + program(
        SOME, [SYNC], [SNAPSHOT], append(1, 0), [SYNC], [REMOVE, 1], append(0), [SYNC],
    ),
    "flip_snapshot": bytes([1]) + program(SOME, [SYNC], [SNAPSHOT], [FLIP, 1, 0, 9, 0x02]),
    "foreign_files": bytes([0]) + program(
        SOME, [SYNC], bytes([NEW_FILE, 3, 0, 5]) + b"notes", bytes([NEW_FILE, 2, 7, 3]) + b"tmp",
    ),
    "fake_segment_gap": bytes([1]) + program(SOME, [SYNC], bytes([NEW_FILE, 0, 40, 4]) + b"\x01\x02\x03\x04"),
    # Flags bits 1-2 pick the log's preallocation step: 64, 256 or 4096 bytes of zeros ahead.
    "prealloc_torn_overwrites": bytes([PREALLOC_256]) + program(
        SOME, [SYNC], append(1, 0), append(1, 0), [FLUSH], [CRASH, 2], append(0), [SYNC],
        append(1, 0, b"x" * 40), [FLUSH], [CRASH, 7], append(0), [FLUSH], [CRASH, 9],
    ),
    "prealloc_small_steps_snapshot": bytes([PREALLOC_64]) + program(
        SOME, [SYNC], [SNAPSHOT], append(1, 0), [FLUSH], [CRASH, 5], append(0), [SYNC],
        [CUT, 0, 0, 200],
    ),
    "prealloc_flip_zero_tail": bytes([PREALLOC_4096 | 1]) + program(
        SOME, [SYNC], [FLIP, 0, 3, 0, 0x01], append(0), [SYNC],
    ),
}

for name, data in LOG_RECOVERY.items():
    write("log_recovery", name, data)
for name, data in FRAME_DECODER.items():
    write("frame_decoder", name, data)
for name, data in REQUEST_PARSER.items():
    write("request_parser", name, data)
for name, data in CORE_STREAMS.items():
    write("core_streams", name, data)
