#!/usr/bin/env python3
"""A client written only from the original chatroom README, run against the new server.

pack_msg and get_response are the README's two functions (header f"{n:<10}", body
"CODE\\nMSG"), copied as they are. The relay is opened the original way: after a login, connect
to the relay port and send the bare username; pushes arrive as "0\\nSENDER:TEXT".

Usage: seed_client.py COMMAND_PORT RELAY_PORT [HOST]. Exits 0 when every step got the reply
the original client expects; otherwise prints the step that failed and exits 1.
"""

import socket
import sys

header_length = 10


def pack_msg(code, msg):  # Pack the message (README)
    msg_encoded = f"{code}\n{msg}".encode('utf-8')
    msg_packed = f"{len(msg_encoded):<{header_length}}".encode('utf-8') + msg_encoded
    return msg_packed


def get_response(socket):  # Unpack the message (README)
    message_length = int(socket.recv(header_length).decode('utf-8').strip())
    msg = socket.recv(message_length).decode('utf-8')
    msgs = msg.split('\n')
    try:
        msg_code = int(msgs[0])
    except ValueError:
        msg = "msg_code received is not integer, conversion failed"
        msg_code = -1
        return msg_code, msg
    if len(msgs) == 2:
        msg = msgs[1]
    else:
        msg = msgs[1:]
    return msg_code, msg


TIMEOUT_S = 10


def connect(host, port):
    s = socket.create_connection((host, port), timeout=TIMEOUT_S)
    return s


def request(s, code, msg):
    s.sendall(pack_msg(code, msg))
    return get_response(s)


def expect(step, got, want):
    if got != want:
        print(f"FAIL {step}: got {got!r}, want {want!r}", file=sys.stderr)
        sys.exit(1)
    print(f"ok   {step}: {got!r}")


def open_relay(host, port, username):
    """The original client's relay: the bare username, no code line."""
    r = connect(host, port)
    msg = username.encode('utf-8')
    r.sendall(f"{len(msg):<{header_length}}".encode('utf-8') + msg)
    return r


def read_until_closed(r):
    """Frames the server sends before closing the relay (a notice, at most)."""
    frames = []
    while True:
        header = r.recv(header_length)
        if not header:
            return frames
        length = int(header.decode('utf-8').strip())
        frames.append(r.recv(length).decode('utf-8'))


def main():
    if len(sys.argv) not in (3, 4):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    command_port, relay_port = int(sys.argv[1]), int(sys.argv[2])
    host = sys.argv[3] if len(sys.argv) == 4 else "127.0.0.1"

    alice = connect(host, command_port)
    bob = connect(host, command_port)

    expect("alice registers", request(alice, 3, "alice\npw-a"),
           (0, "Successful Created and logged in"))
    alice_relay = open_relay(host, relay_port, "alice")
    expect("bob registers", request(bob, 3, "bob\npw-b"),
           (0, "Successful Created and logged in"))
    expect("the name is taken", request(bob, 3, "Alice\nx"),
           (-1, "This username has been used"))
    expect("bob logs out", request(bob, -1, ""), (0, "Logging out"))
    expect("a logged-out send is refused", request(bob, 2, "alice\nhi"),
           (-1, "Invalid Command, you can only choose to login or register"))

    expect("alice sends to offline bob", request(alice, 2, "bob\nwhile you were away"),
           (0, "Sent to recipient"))
    expect("a wrong password fails", request(bob, 1, "bob\nwrong"),
           (-1, "Invalid Login, credential doesn't exist or password invalid"))
    expect("bob logs in", request(bob, 1, "bob\npw-b"), (0, "Successful Login"))
    bob_relay = open_relay(host, relay_port, "bob")
    expect("the queued message arrives at login", get_response(bob_relay),
           (0, "alice:while you were away"))

    expect("bob sends to online alice", request(bob, 2, "alice\nhi alice"),
           (0, "Sent to recipient"))
    expect("the push arrives on alice's relay", get_response(alice_relay), (0, "bob:hi alice"))
    expect("an unknown recipient is refused", request(alice, 2, "nobody\nhello"),
           (-1, "invalid recipient"))

    expect("list all", request(alice, 4, ""), (0, "alice bob "))
    expect("list with a pattern", request(alice, 4, "b*"), (0, "bob "))
    code, text = request(alice, 0, "")
    expect("help succeeds", code, 0)
    expect("help lists the commands", "1. Log in" in text, True)
    expect("an unknown code is named", request(alice, 9, ""), (-1, "invalid command:9"))

    expect("bob cannot delete alice", request(bob, 5, "alice\npw-a"),
           (-1, "Invalid credential, deletion failed"))
    expect("bob deletes himself", request(bob, 5, "bob\npw-b"), (0, "account deleted"))
    notices = read_until_closed(bob_relay)
    # The original client would print any frame on its relay as a chat message, so a bare
    # relay's end is a plain close: nothing arrives before it.
    expect("bob's relay closes with nothing the original client would print", notices, [])
    expect("deleted bob is no recipient", request(alice, 2, "bob\nhello?"),
           (-1, "invalid recipient"))
    expect("list after delete", request(alice, 4, ""), (0, "alice "))

    expect("alice logs out", request(alice, -1, ""), (0, "Logging out"))
    expect("alice's relay is closed", read_until_closed(alice_relay), [])
    for s in (alice, bob, alice_relay, bob_relay):
        s.close()
    print("seed client: all steps passed")


if __name__ == "__main__":
    main()
