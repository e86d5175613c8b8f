//! A world's server configuration, asked for the way an operator asks for it: every limit
//! `chatroom server` has a flag for is written as that flag and read back by the shipped
//! parser and conversion ([`ServerArgs`]), so that a flag dropped, misread or read in the wrong
//! unit runs in the simulated server (and the checker, which judges by the limits asked for,
//! sees it). Limits without a flag, and values a flag cannot say (a login deadline that is not
//! whole seconds, a frame bound above the flag's range), are set directly.

use crate::core::Config;
use crate::net::cli::{ServerArgs, FRAME_LEN_FLAG_MAX, LOGIN_DEADLINE_S_MAX};

/// The configuration a server started with the flags that ask for `asked` runs with.
///
/// # Panics
///
/// If the shipped parser refuses the flags written (a flag renamed or a range narrowed: the
/// simulator must then be told).
pub fn shipped(asked: &Config) -> Config {
    let (flags, unsaid) = flags_of(asked);
    let args = ServerArgs::parse_flags(&flags)
        .unwrap_or_else(|e| panic!("`chatroom server` refused {flags:?}: {e}"));
    let mut config = args.core_config(asked.clone());
    for field in unsaid {
        match field {
            Unsaid::LoginDeadline => config.login_deadline_ms = asked.login_deadline_ms,
            Unsaid::FrameLen => config.frame_len_max = asked.frame_len_max,
        }
    }
    config
}

/// A limit `asked` holds that its flag cannot say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unsaid {
    LoginDeadline,
    FrameLen,
}

/// The flags that ask for `asked`'s flagged limits, and the limits they cannot say.
fn flags_of(asked: &Config) -> (Vec<String>, Vec<Unsaid>) {
    let mut flags = Vec::new();
    let mut unsaid = Vec::new();
    let mut flag = |name: &str, value: String| flags.extend([format!("--{name}"), value]);
    flag("queue-len-max", asked.queue_len_max.to_string());
    flag("connections-per-peer-max", asked.connections_per_peer_max.to_string());
    flag("registrations-per-address-max", asked.registrations_per_peer_max.to_string());
    flag("login-failures-max", asked.login_failures_max.to_string());
    let deadline_s = asked.login_deadline_ms / 1000;
    if asked.login_deadline_ms.is_multiple_of(1000)
        && (1..=LOGIN_DEADLINE_S_MAX).contains(&deadline_s)
    {
        flag("login-deadline-s", deadline_s.to_string());
    } else {
        unsaid.push(Unsaid::LoginDeadline);
    }
    if (1..=FRAME_LEN_FLAG_MAX).contains(&asked.frame_len_max) {
        flag("frame-len-max", asked.frame_len_max.to_string());
    } else {
        unsaid.push(Unsaid::FrameLen);
    }
    #[cfg(any(test, feature = "planted"))]
    if asked.planted != crate::core::planted::Planted::None {
        flag("planted", asked.planted.name());
    }
    if asked.bare_relay_allowed {
        flags.push("--allow-bare-relay".to_string());
    }
    (flags, unsaid)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every flagged limit reaches the configuration through its flag: a world asking for
    /// values other than the defaults gets them back, and nothing else changes.
    #[test]
    fn the_shipped_flags_give_the_world_what_it_asked_for() {
        let asked = Config {
            bare_relay_allowed: true,
            queue_len_max: 3,
            connections_per_peer_max: 4,
            registrations_per_peer_max: 5,
            login_failures_max: 6,
            login_deadline_ms: 7_000,
            frame_len_max: 33,
            ..Config::default()
        };
        let (flags, unsaid) = flags_of(&asked);
        assert!(unsaid.is_empty(), "{unsaid:?}");
        assert_eq!(flags.iter().filter(|f| f.starts_with("--")).count(), 7, "{flags:?}");
        assert_eq!(shipped(&asked), asked);
        assert_eq!(shipped(&Config::default()), Config::default());
    }

    /// The shipped server gets what every world of a swarm asks for (so a sweep of it runs
    /// the server it ran before the flags were in the way), but for a bound on buffered bytes
    /// too small for what a client within the frame limits may send, which is raised.
    #[test]
    fn every_swarm_world_gets_what_it_asks_for() {
        use crate::sim::options::{FaultMix, FaultMode, RunOptions};
        let opts = RunOptions { faults: FaultMode::Swarm, ..RunOptions::default() };
        let mut said = 0;
        for seed in 0..500 {
            let mix = FaultMix::for_seed(&opts, seed);
            let mut asked = Config { bare_relay_allowed: mix.hosts == 0, ..Config::default() };
            mix.apply_limits(&mut asked);
            let got = shipped(&asked);
            let needed = crate::net::cli::buffered_len_needed(&asked);
            let inbound = asked.inbound_buffered_len_max.max(needed);
            let want = Config { inbound_buffered_len_max: inbound, ..asked.clone() };
            assert_eq!(got, want, "seed {seed}");
            said += usize::from(flags_of(&asked).1.is_empty());
        }
        assert!(said > 0, "no world's limits were all said by flags");
    }

    /// A login deadline of a fraction of a second, which no flag says, is set directly.
    #[test]
    fn a_deadline_no_flag_can_say_is_set_directly() {
        let asked = Config { login_deadline_ms: 1_234, ..Config::default() };
        assert_eq!(flags_of(&asked).1, [Unsaid::LoginDeadline]);
        assert_eq!(shipped(&asked).login_deadline_ms, 1_234);
    }

    /// A flag read in the wrong unit reaches the world's server.
    #[test]
    fn a_planted_flag_bug_reaches_the_world() {
        use crate::core::planted::Planted;
        let asked = Config { planted: Planted::DeadlineFlagInSeconds, ..Config::default() };
        assert_eq!(shipped(&asked).login_deadline_ms, 60);
    }
}
