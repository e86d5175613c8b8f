//! What the system lets this process hold, read once when the server starts: how many
//! threads (memory maps, thread ids) and how many open files. The server derives its caps from
//! them, so that a connection beyond what the machine allows is refused with a reply that says
//! so, not fatal and not left unanswered in the listen backlog.

use super::threads::MAPS_PER_THREAD;

/// Memory maps left for everything else: heap arenas, large buffers, maps made later.
const MAPS_RESERVED: usize = 4096;
/// Thread ids left for the rest of the machine (ids are shared by every process).
const PIDS_RESERVED: usize = 1024;
/// Descriptors kept below the open-file limit for what the server opens after it starts
/// besides its connections' sockets: log segments and snapshots being written and the
/// directory synced for them, a connection accepted only to be refused (its reply needs its
/// socket), one for each port's blocked `accept` (Linux reserves the descriptor when the call
/// starts, not when a connection arrives), and slack.
pub(crate) const FDS_RESERVED: usize = 64;

/// The most threads this process may start, and the limit that sets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ThreadCap {
    pub live_max: usize,
    pub bound_by: String,
}

/// What the system allows this process, read when the server starts.
#[derive(Debug, Clone, Default)]
pub(crate) struct SystemLimits {
    /// `vm.max_map_count`, and maps this process has now (`/proc/self/maps`).
    pub max_map_count: Option<usize>,
    pub maps_in_use: Option<usize>,
    /// `kernel.pid_max` and `kernel.threads-max` (machine-wide), and the threads the machine
    /// runs now (`/proc/loadavg`).
    pub pid_max: Option<usize>,
    pub threads_max: Option<usize>,
    pub threads_in_use: Option<usize>,
    /// `RLIMIT_NPROC` where it applies (not to root).
    pub nproc: Option<usize>,
    /// `RLIMIT_NOFILE`'s soft limit (the one `accept` meets), and the descriptors this
    /// process has open now (`/proc/self/fd`).
    pub open_files_max: Option<usize>,
    pub open_files_in_use: Option<usize>,
}

/// The most connections to hold at once, and the limit that sets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConnectionCap {
    pub connections_max: usize,
    pub bound_by: String,
}

impl SystemLimits {
    pub fn read() -> SystemLimits {
        let number = |path: &str| -> Option<usize> {
            std::fs::read_to_string(path).ok()?.trim().parse().ok()
        };
        let loadavg = std::fs::read_to_string("/proc/loadavg").ok();
        let threads_in_use = loadavg
            .as_deref()
            .and_then(|l| l.split_whitespace().nth(3)?.split('/').nth(1)?.parse().ok());
        // SAFETY: plain queries of this process's credentials and limits.
        let nproc = unsafe {
            let mut limit: libc::rlimit = std::mem::zeroed();
            match libc::geteuid() != 0 && libc::getrlimit(libc::RLIMIT_NPROC, &mut limit) == 0 {
                true => usize::try_from(limit.rlim_cur).ok(),
                false => None,
            }
        };
        // SAFETY: a plain query of this process's limit.
        let open_files_max = unsafe {
            let mut limit: libc::rlimit = std::mem::zeroed();
            match libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
                true => usize::try_from(limit.rlim_cur).ok(),
                false => None,
            }
        };
        // Less one: the directory being listed is open while it is read.
        let open_files_in_use =
            std::fs::read_dir("/proc/self/fd").ok().map(|d| d.count().saturating_sub(1));
        SystemLimits {
            max_map_count: number("/proc/sys/vm/max_map_count"),
            maps_in_use: std::fs::read_to_string("/proc/self/maps").ok().map(|m| m.lines().count()),
            pid_max: number("/proc/sys/kernel/pid_max"),
            threads_max: number("/proc/sys/kernel/threads-max"),
            threads_in_use,
            nproc,
            open_files_max,
            open_files_in_use,
        }
    }

    /// The most connections to hold: one socket each under the open-file limit, less the
    /// descriptors open now and [`FDS_RESERVED`], and no more than `thread_cap` (a connection
    /// runs one thread). Past it the core refuses a connection with a reply; past the
    /// open-file limit itself the server could not even accept it to say so.
    pub fn connection_cap(&self, thread_cap: &ThreadCap) -> ConnectionCap {
        let files = self.open_files_max.filter(|&max| max < libc::RLIM_INFINITY as usize);
        let Some(max) = files else {
            let bound_by =
                format!("the thread cap ({}); open-file limit unknown", thread_cap.bound_by);
            return ConnectionCap { connections_max: thread_cap.live_max, bound_by };
        };
        let in_use = self.open_files_in_use.unwrap_or(0);
        let free = max.saturating_sub(in_use + FDS_RESERVED);
        if thread_cap.live_max < free {
            let bound_by = format!("the thread cap ({})", thread_cap.bound_by);
            return ConnectionCap { connections_max: thread_cap.live_max, bound_by };
        }
        ConnectionCap {
            connections_max: free,
            bound_by: format!(
                "open-file limit {max}: {in_use} descriptors in use, {FDS_RESERVED} kept, one \
                 socket per connection"
            ),
        }
    }

    /// The most threads to start: below every limit at which the system would refuse one.
    ///
    /// At `vm.max_map_count` a `std::thread` could not map its signal stack and Rust's runtime
    /// aborted the whole process (seen at 16,360 threads); these threads have none, but every
    /// allocation that maps memory would then fail too. So the cap stays below each limit and
    /// a connection beyond it is refused instead.
    pub fn thread_cap(&self) -> ThreadCap {
        let mut caps = Vec::new();
        if let Some(maps) = self.max_map_count {
            let free = maps.saturating_sub(self.maps_in_use.unwrap_or(0) + MAPS_RESERVED);
            caps.push((
                free / MAPS_PER_THREAD,
                format!(
                    "vm.max_map_count {maps}: {} maps in use, {MAPS_RESERVED} kept, \
                     {MAPS_PER_THREAD} per thread",
                    self.maps_in_use.unwrap_or(0)
                ),
            ));
        }
        let ids = self.pid_max.into_iter().chain(self.threads_max).min();
        if let Some(ids) = ids {
            let in_use = self.threads_in_use.unwrap_or(0);
            caps.push((
                ids.saturating_sub(in_use + PIDS_RESERVED),
                format!(
                    "kernel.pid_max / threads-max {ids}: {in_use} threads on the machine, \
                     {PIDS_RESERVED} kept"
                ),
            ));
        }
        if let Some(nproc) = self.nproc {
            caps.push((nproc, format!("RLIMIT_NPROC {nproc}")));
        }
        match caps.into_iter().min_by_key(|(n, _)| *n) {
            Some((live_max, bound_by)) => ThreadCap { live_max, bound_by },
            None => ThreadCap { live_max: usize::MAX, bound_by: "no limit known".to_owned() },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_is_the_tightest_limit() {
        let limits = SystemLimits {
            max_map_count: Some(65_530),
            maps_in_use: Some(100),
            pid_max: Some(32_768),
            threads_max: Some(192_729),
            threads_in_use: Some(500),
            nproc: None,
            open_files_max: None,
            open_files_in_use: None,
        };
        let cap = limits.thread_cap();
        assert_eq!(cap.live_max, (65_530 - 100 - MAPS_RESERVED) / MAPS_PER_THREAD);
        assert!(cap.bound_by.starts_with("vm.max_map_count"), "{}", cap.bound_by);
        let few_ids = SystemLimits { pid_max: Some(20_000), ..limits.clone() };
        assert_eq!(few_ids.thread_cap().live_max, 20_000 - 500 - PIDS_RESERVED);
        let nproc = SystemLimits { nproc: Some(50), ..limits };
        assert_eq!(
            nproc.thread_cap(),
            ThreadCap { live_max: 50, bound_by: "RLIMIT_NPROC 50".into() }
        );
        assert_eq!(SystemLimits::default().thread_cap().live_max, usize::MAX);
    }

    #[test]
    fn the_connection_cap_is_the_open_file_limit_less_what_is_open_and_kept() {
        let threads = ThreadCap { live_max: 30_000, bound_by: "vm.max_map_count".into() };
        let files = SystemLimits {
            open_files_max: Some(20_000),
            open_files_in_use: Some(10),
            ..SystemLimits::default()
        };
        let cap = files.connection_cap(&threads);
        assert_eq!(cap.connections_max, 20_000 - 10 - FDS_RESERVED);
        assert!(
            cap.bound_by.starts_with("open-file limit 20000: 10 descriptors"),
            "{}",
            cap.bound_by
        );
        // Fewer threads than descriptors: the thread cap binds.
        let few_threads = ThreadCap { live_max: 500, bound_by: "RLIMIT_NPROC 500".into() };
        let cap = files.connection_cap(&few_threads);
        assert_eq!(cap.connections_max, 500);
        assert!(cap.bound_by.contains("RLIMIT_NPROC 500"), "{}", cap.bound_by);
        // A limit lower than what is open and kept leaves no connection, rather than wrapping.
        let tight = SystemLimits { open_files_max: Some(50), ..files.clone() };
        assert_eq!(tight.connection_cap(&threads).connections_max, 0);
        // Unlimited or unknown: only the thread cap.
        let unlimited =
            SystemLimits { open_files_max: Some(libc::RLIM_INFINITY as usize), ..files };
        assert_eq!(unlimited.connection_cap(&threads).connections_max, 30_000);
        assert_eq!(SystemLimits::default().connection_cap(&threads).connections_max, 30_000);
    }
}
