//! The reply and push bodies of PROTOCOL.md, encoded as complete frames.
//!
//! Texts the original client shows are kept byte for byte; the constants below are the single
//! place they are spelled.

use super::frame::encode_parts;

pub const LOGIN_OK: &str = "Successful Login";
pub const LOGIN_FAILED: &str = "Invalid Login, credential doesn't exist or password invalid";
pub const REGISTER_OK: &str = "Successful Created and logged in";
pub const NAME_TAKEN: &str = "This username has been used";
pub const NEEDS_LOGIN: &str = "Invalid Command, you can only choose to login or register";
pub const SEND_OK: &str = "Sent to recipient";
pub const UNKNOWN_RECIPIENT: &str = "invalid recipient";
/// Not in the original: empty messages are refused (each costs memory and says nothing).
pub const EMPTY_TEXT: &str = "Empty message not sent: write some text";
pub const DELETE_OK: &str = "account deleted";
pub const DELETE_REFUSED: &str = "Invalid credential, deletion failed";
pub const LOGOUT_OK: &str = "Logging out";

/// The command list, as the original client's welcome text shows it.
pub const HELP: &str = "This is a chat room app. We support the following command listed below with its corresponding command code:
0. Help
1. Log in
2. Send message to other users
3. Register
4. List all registered users (optional pattern with * and ?)
5. Delete account
6. Ticket for an authenticated relay
-1. Log out";

/// A reply frame: `0\nTEXT` for success, `-1\nTEXT` for failure.
pub fn reply(ok: bool, text: &str) -> Vec<u8> {
    let status: &[u8] = if ok { b"0\n" } else { b"-1\n" };
    let mut out = Vec::new();
    encode_parts(&[status, text.as_bytes()], &mut out);
    out
}

/// A push for the original client: `0\nSENDER:TEXT`.
pub fn push_plain(sender: &str, text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    encode_parts(&[b"0\n", sender.as_bytes(), b":", text.as_bytes()], &mut out);
    out
}

/// A push that the client acknowledges: `7\nID\nSENDER\nTEXT`.
pub fn push_acked(id: u64, sender: &str, text: &str) -> Vec<u8> {
    let id = id.to_string();
    let mut out = Vec::new();
    encode_parts(
        &[b"7\n", id.as_bytes(), b"\n", sender.as_bytes(), b"\n", text.as_bytes()],
        &mut out,
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_match_the_seed() {
        assert_eq!(reply(true, SEND_OK), b"19        0\nSent to recipient");
        assert_eq!(reply(false, UNKNOWN_RECIPIENT), b"20        -1\ninvalid recipient");
        assert_eq!(push_plain("bob", "hi"), b"8         0\nbob:hi");
        assert_eq!(push_acked(5, "bob", "hi"), b"10        7\n5\nbob\nhi");
    }
}
