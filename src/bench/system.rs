//! What the operating system knows about a process (CPU time, threads, resident memory, from
//! `/proc`) and which cores a thread may run on, so a benchmark can report the server's cost
//! next to its latency and keep the load generator off the server's core.

use std::io;

/// A sample of one process's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProcSample {
    /// User plus system CPU time of all its threads so far, in clock ticks.
    pub cpu_ticks: u64,
    pub threads: u64,
    pub rss_kib: u64,
    /// Context switches of its threads so far (voluntary plus involuntary), and the
    /// involuntary ones alone (preemptions), summed over `/proc/PID/task/*/status`.
    pub switches: u64,
    pub preemptions: u64,
}

impl ProcSample {
    /// Samples process `pid`; `None` if it is gone or `/proc` is unreadable.
    pub fn of(pid: u32) -> Option<ProcSample> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        Some(ProcSample {
            cpu_ticks: cpu_ticks(&stat)?,
            threads: proc_status(pid, "Threads:")?,
            rss_kib: proc_status(pid, "VmRSS:")?,
            ..Self::switches_of(pid)
        })
    }

    /// The context switches of `pid`'s threads (zero where unreadable).
    fn switches_of(pid: u32) -> ProcSample {
        let mut sample = ProcSample::default();
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return sample };
        for task in tasks.flatten() {
            let Ok(status) = std::fs::read_to_string(task.path().join("status")) else { continue };
            let field = |name: &str| -> u64 {
                let line = status.lines().find(|l| l.starts_with(name));
                line.and_then(|l| l.split_whitespace().nth(1)?.parse().ok()).unwrap_or(0)
            };
            let involuntary = field("nonvoluntary_ctxt_switches:");
            sample.switches += field("voluntary_ctxt_switches:") + involuntary;
            sample.preemptions += involuntary;
        }
        sample
    }

    /// CPU seconds spent between `earlier` and `self`.
    pub fn cpu_s_since(&self, earlier: &ProcSample) -> f64 {
        self.cpu_ticks.saturating_sub(earlier.cpu_ticks) as f64 / clock_ticks_per_s() as f64
    }
}

/// What one kind of thread (the threads sharing a name) has cost so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ThreadCost {
    pub cpu_ticks: u64,
    pub switches: u64,
    pub preemptions: u64,
}

/// The counters of `pid`'s threads summed by thread name, so a benchmark can say which
/// hand-offs cost the switches (empty where `/proc` is unreadable). Threads that ended are no
/// longer counted: compare samples of threads that live through the run.
pub fn costs_by_thread(pid: u32) -> std::collections::BTreeMap<String, ThreadCost> {
    let mut costs = std::collections::BTreeMap::<String, ThreadCost>::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return costs };
    for task in tasks.flatten() {
        let read = |file: &str| std::fs::read_to_string(task.path().join(file)).ok();
        let (Some(status), Some(stat)) = (read("status"), read("stat")) else { continue };
        let field = |name: &str| status.lines().find(|l| l.starts_with(name));
        let number = |name: &str| -> u64 {
            field(name).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()).unwrap_or(0)
        };
        let name = field("Name:").map_or("?", |l| l["Name:".len()..].trim()).to_owned();
        let cost = costs.entry(name).or_default();
        let involuntary = number("nonvoluntary_ctxt_switches:");
        cost.cpu_ticks += cpu_ticks(&stat).unwrap_or(0);
        cost.switches += number("voluntary_ctxt_switches:") + involuntary;
        cost.preemptions += involuntary;
    }
    costs
}

/// What each kind of thread cost between two samples of [`costs_by_thread`], as CPU seconds,
/// switches and preemptions, in name order.
pub fn thread_costs_since(
    before: &std::collections::BTreeMap<String, ThreadCost>,
    after: &std::collections::BTreeMap<String, ThreadCost>,
) -> Vec<(String, f64, u64, u64)> {
    let ticks_per_s = clock_ticks_per_s() as f64;
    after
        .iter()
        .map(|(name, cost)| {
            let was = before.get(name).copied().unwrap_or_default();
            let cpu_s = cost.cpu_ticks.saturating_sub(was.cpu_ticks) as f64 / ticks_per_s;
            let switches = cost.switches.saturating_sub(was.switches);
            (name.clone(), cpu_s, switches, cost.preemptions.saturating_sub(was.preemptions))
        })
        .collect()
}

/// utime + stime (fields 14 and 15) of a `/proc/PID/stat` line. The command name (field 2) is
/// in parentheses and may contain spaces, so fields are counted after its closing parenthesis.
fn cpu_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace();
    // After the name: field 3 (state) is the first; utime is field 14, the 12th from here.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// A field of `/proc/PID/status` in its own unit (kB for memory).
pub fn proc_status(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The kernel's clock ticks per second (`USER_HZ`), the unit of `/proc/PID/stat` times.
fn clock_ticks_per_s() -> u64 {
    // SAFETY: sysconf only reads a system constant.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(ticks).ok().filter(|&t| t > 0).unwrap_or(100)
}

/// The cores the calling thread may run on, in increasing order.
pub fn allowed_cpus() -> io::Result<Vec<usize>> {
    // SAFETY: `set` is a plain bit set that sched_getaffinity fills; its size is passed along.
    let set = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Err(io::Error::last_os_error());
        }
        set
    };
    // SAFETY: CPU_ISSET reads a bit of the set, for indices below CPU_SETSIZE.
    Ok((0..libc::CPU_SETSIZE as usize)
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect())
}

/// Restricts the calling thread, and the threads and processes it starts from now on, to `cpus`.
pub fn pin_current_thread(cpus: &[usize]) -> io::Result<()> {
    // SAFETY: the set is built with CPU_ZERO/CPU_SET for indices below CPU_SETSIZE (checked), then
    // passed by pointer with its size to sched_setaffinity, which only reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_ZERO(&mut set);
        for &cpu in cpus {
            if cpu >= libc::CPU_SETSIZE as usize {
                return Err(io::Error::new(io::ErrorKind::InvalidInput, "cpu index too large"));
            }
            libc::CPU_SET(cpu, &mut set);
        }
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_times_are_read_after_the_command_name() {
        // A name with spaces and a parenthesis; utime 7, stime 5.
        let stat = "42 (a b) c) S 1 2 3 4 5 6 7 8 9 10 7 5 0 0 20 0 1 0";
        assert_eq!(cpu_ticks(stat), Some(12));
        assert_eq!(cpu_ticks("42 (x) S 1 2"), None);
    }

    #[test]
    fn this_process_can_be_sampled_and_has_a_core() {
        let sample = ProcSample::of(std::process::id()).expect("own /proc entry");
        assert!(sample.threads >= 1 && sample.rss_kib > 0, "{sample:?}");
        assert!(!allowed_cpus().expect("affinity").is_empty());
    }

    #[test]
    fn this_process_threads_are_counted_by_name() {
        let costs = costs_by_thread(std::process::id());
        let named = std::thread::current().name().map(|n| n.chars().take(15).collect::<String>());
        let named = named.unwrap_or_default();
        assert!(costs.keys().any(|name| *name == named), "{named} in {costs:?}");
        let since = thread_costs_since(&Default::default(), &costs);
        assert_eq!(since.len(), costs.len());
    }
}
