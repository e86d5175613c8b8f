//! `chatroom client`: the interactive terminal client, in the spirit of the original one.
//!
//! The user picks a numbered command and is prompted for its fields. After a login or a
//! registration the client opens an authenticated (ticketed) relay; a relay thread prints each
//! pushed message above the prompt (clearing the prompt line first, then drawing the prompt
//! again) and acknowledges it once printed. Passwords are read without echo when the input is
//! a terminal; otherwise the client says, once, that they are read as plain lines.

use std::io::{self, BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use super::{Client, ClientError, Relay, RelayCloser};

/// The command list, as the original client shows it (plus how to quit).
const MENU: &str = "This is a chat room app. We support the following command listed below with its corresponding command code:
0. Help
1. Log in
2. Send message to other users
3. Register
4. List all registered users
5. Delete account
-1. Log out
q. Quit";

/// Arguments of `chatroom client`.
#[derive(Debug, clap::Args)]
pub struct ClientArgs {
    /// Server host name or address.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// The server's command port.
    #[arg(long, default_value_t = 8084)]
    pub command_port: u16,
    /// The server's relay port (pushed messages).
    #[arg(long, default_value_t = 8086)]
    pub relay_port: u16,
    /// Seconds to wait for a reply before giving up on the server (at least 1: a zero wait
    /// would give up on every reply, so it is refused rather than quietly read as 1).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout_s: u64,
}

impl ClientArgs {
    /// Runs the interactive client until the user quits or input ends.
    pub fn run(self) -> ExitCode {
        restore_sigpipe();
        let command_addr = (self.host.as_str(), self.command_port);
        let client = match Client::connect(command_addr) {
            Ok(client) => client,
            Err(error) => {
                eprintln!("chatroom client: {error}");
                return ExitCode::FAILURE;
            }
        };
        let timeout = Some(Duration::from_secs(self.timeout_s));
        if let Err(error) = client.set_timeout(timeout) {
            eprintln!("chatroom client: {error}");
            return ExitCode::FAILURE;
        }
        let console = Arc::new(Console::new());
        console.say(&format!("Welcome! Connected to the server.\n{MENU}"));
        let mut session = Session { client, console, args: self, relay: None };
        let outcome = session.run();
        session.close_relay();
        match outcome {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("chatroom client: {error}");
                ExitCode::FAILURE
            }
        }
    }
}

/// Lets SIGPIPE end the client, as it ends other command-line tools, when whatever reads its
/// output goes away (`chatroom client | head -1`). Rust ignores the signal, so every print
/// after that would panic instead. The client's sockets are unaffected: Rust writes to them
/// with `MSG_NOSIGNAL`, so a server that hangs up is still an error the client reports.
fn restore_sigpipe() {
    // SAFETY: sets the disposition of one signal to the system default before any thread of
    // the client starts; no handler runs.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// The terminal, shared by the input loop and the relay thread.
struct Console {
    /// The prompt currently shown (empty when none), so a push can draw it again.
    prompt: Mutex<String>,
    /// On a terminal, a push clears the prompt line; elsewhere it starts a new line.
    is_terminal: bool,
    /// Whether the input is a terminal (passwords are then read without echo).
    input_is_terminal: bool,
    /// The note that passwords are read as plain lines was shown.
    warned_plain_password: AtomicBool,
}

impl Console {
    fn new() -> Console {
        Console {
            prompt: Mutex::new(String::new()),
            is_terminal: io::stdout().is_terminal(),
            input_is_terminal: io::stdin().is_terminal(),
            warned_plain_password: AtomicBool::new(false),
        }
    }

    /// Shows `prompt` and reads a password: without echo on a terminal; elsewhere as a plain
    /// line, after saying so once (on stderr, so scripts reading stdout are not disturbed).
    fn ask_password(&self, prompt: &str) -> io::Result<Option<String>> {
        if !self.input_is_terminal {
            if !self.warned_plain_password.swap(true, Ordering::Relaxed) {
                eprintln!("(input is not a terminal: passwords are read as plain lines)");
            }
            return self.ask(prompt);
        }
        {
            let mut shown = self.lock();
            prompt.clone_into(&mut shown);
            print!("{prompt}");
            io::stdout().flush()?;
        }
        let read = rpassword::read_password();
        self.lock().clear();
        match read {
            Ok(password) => Ok(Some(password)),
            Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => Ok(None),
            Err(error) => Err(error),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, String> {
        // A panic while printing leaves nothing half-updated that matters.
        self.prompt.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn say(&self, text: &str) {
        let _prompt = self.lock();
        println!("{text}");
    }

    /// Shows `prompt` and reads one line; `None` at end of input.
    fn ask(&self, prompt: &str) -> io::Result<Option<String>> {
        {
            let mut shown = self.lock();
            prompt.clone_into(&mut shown);
            print!("{prompt}");
            io::stdout().flush()?;
        }
        let mut line = String::new();
        let read = io::stdin().lock().read_line(&mut line);
        self.lock().clear();
        if read? == 0 {
            return Ok(None);
        }
        Ok(Some(line.trim_end_matches(['\n', '\r']).to_owned()))
    }

    /// Prints a line above the prompt without garbling it. What the user had typed stays in the
    /// terminal's line buffer but is no longer shown.
    fn interject(&self, text: &str) {
        let prompt = self.lock();
        let mut out = io::stdout().lock();
        let result = if self.is_terminal {
            write!(out, "\r\x1b[2K{text}\n{prompt}")
        } else if prompt.is_empty() {
            writeln!(out, "{text}")
        } else {
            write!(out, "\n{text}\n{prompt}")
        };
        // Nowhere better to report a broken stdout from the relay thread.
        let _ = result.and_then(|()| out.flush());
    }
}

/// A running relay thread.
struct RelayTask {
    closer: RelayCloser,
    closing: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

struct Session {
    client: Client,
    console: Arc<Console>,
    args: ClientArgs,
    relay: Option<RelayTask>,
}

/// Why the input loop stopped early.
#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("cannot read input: {0}")]
    Input(#[from] io::Error),
}

impl Session {
    fn run(&mut self) -> Result<(), SessionError> {
        loop {
            let Some(code) = self.console.ask("Enter command code: ")? else { return Ok(()) };
            match code.trim() {
                "" => {}
                "q" | "quit" | "exit" => return Ok(()),
                code => {
                    if !self.command(code)? {
                        return Ok(());
                    }
                }
            }
        }
    }

    /// Runs one numbered command; `false` when input ended while prompting for its fields.
    fn command(&mut self, code: &str) -> Result<bool, SessionError> {
        let (reply, name) = match code {
            "0" => {
                self.console.say(MENU);
                return Ok(true);
            }
            "1" | "3" | "5" => {
                let Some(name) = self.console.ask("Username: ")? else { return Ok(false) };
                let Some(password) = self.console.ask_password("Password: ")? else {
                    return Ok(false);
                };
                let reply = match code {
                    "1" => self.client.login(&name, &password)?,
                    "3" => self.client.register(&name, &password)?,
                    _ => self.client.delete(&name, &password)?,
                };
                (reply, name)
            }
            "2" => {
                let Some(to) = self.console.ask("Recipient: ")? else { return Ok(false) };
                let Some(text) = self.console.ask("Message: ")? else { return Ok(false) };
                (self.client.send(&to, &text)?, to)
            }
            "4" => {
                let prompt = "Pattern (* and ?, empty for all): ";
                let Some(pattern) = self.console.ask(prompt)? else { return Ok(false) };
                (self.client.list(&pattern)?, pattern)
            }
            "-1" => (self.client.logout()?, String::new()),
            other => {
                self.console.say(&format!("Unknown command code {other:?}; enter 0 for help."));
                return Ok(true);
            }
        };
        self.console.say(&reply.text);
        match (reply.ok, code) {
            // A login ends this connection's previous session, and with it its relay.
            (true, "1" | "3") => {
                self.close_relay();
                self.open_relay(&name)?;
            }
            // The server has closed the relay.
            (true, "-1" | "5") => self.close_relay(),
            _ => {}
        }
        Ok(true)
    }

    fn open_relay(&mut self, name: &str) -> Result<(), SessionError> {
        let relay_addr = (self.args.host.as_str(), self.args.relay_port);
        let relay = match self.client.open_relay(relay_addr, name) {
            Ok(relay) => relay,
            Err(ClientError::Refused(text)) | Err(ClientError::RelayEnded(text)) => {
                self.console.say(&format!("(no relay: {text}; messages stay queued)"));
                return Ok(());
            }
            Err(error) => return Err(error.into()),
        };
        let closer = relay.closer()?;
        let closing = Arc::new(AtomicBool::new(false));
        let console = Arc::clone(&self.console);
        let thread = thread::spawn({
            let closing = Arc::clone(&closing);
            move || show_pushes(relay, &console, &closing)
        });
        self.relay = Some(RelayTask { closer, closing, thread });
        Ok(())
    }

    fn close_relay(&mut self) {
        if let Some(task) = self.relay.take() {
            task.closing.store(true, Ordering::SeqCst);
            task.closer.close();
            // The thread only prints; if it panicked, there is nothing to recover.
            let _ = task.thread.join();
        }
    }
}

/// The relay thread: prints each push, which `recv` then acknowledges, until the relay ends.
fn show_pushes(mut relay: Relay, console: &Console, closing: &AtomicBool) {
    loop {
        match relay.recv() {
            Ok(push) => console.interject(&format!("[message from {}] {}", push.sender, push.text)),
            Err(ClientError::RelayEnded(text)) => {
                console.interject(&format!("(relay closed: {text})"));
                return;
            }
            Err(ClientError::Closed) => return,
            Err(error) => {
                if !closing.load(Ordering::SeqCst) {
                    console.interject(&format!("(relay error: {error})"));
                }
                return;
            }
        }
    }
}
