//! What /proc and getrusage say about memory and CPU: the server's (by pid) and loadgen's own.

use std::time::Instant;

/// Resident set size in bytes (`VmRSS` in `/proc/<pid>/status`), or `None` if unreadable.
pub fn rss_bytes(pid: Option<u32>) -> Option<u64> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/status"),
        None => "/proc/self/status".to_owned(),
    };
    parse_vm_rss(&std::fs::read_to_string(path).ok()?)
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// CPU seconds (user + system) used by a process so far: `/proc/<pid>/stat` for another process,
/// getrusage for this one.
pub fn cpu_seconds(pid: Option<u32>) -> Option<f64> {
    match pid {
        None => {
            let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
            // SAFETY: getrusage only writes into the struct we own.
            if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
                return None;
            }
            let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
            Some(secs(usage.ru_utime) + secs(usage.ru_stime))
        }
        Some(pid) => {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // SAFETY: sysconf has no preconditions.
            let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
            parse_stat_cpu(&stat, if ticks > 0 { ticks as f64 } else { 100.0 })
        }
    }
}

/// This process's CPU seconds so far, split: (user, system).
pub fn own_cpu_split() -> Option<(f64, f64)> {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage only writes into the struct we own.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return None;
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Some((secs(usage.ru_utime), secs(usage.ru_stime)))
}

/// utime + stime (fields 14 and 15) in seconds. The command name may contain spaces and parentheses,
/// so fields are counted after the last `)`.
fn parse_stat_cpu(stat: &str, ticks_per_sec: f64) -> Option<f64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    // `rest` starts at field 3 (state); utime is field 14.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / ticks_per_sec)
}

/// A point in time with the CPU used so far by loadgen and (if known) the server.
#[derive(Debug, Clone, Copy)]
pub struct CpuMark {
    at: Instant,
    own: Option<f64>,
    server: Option<f64>,
}

impl CpuMark {
    pub fn now(server_pid: Option<u32>) -> Self {
        Self {
            at: Instant::now(),
            own: cpu_seconds(None),
            server: server_pid.and_then(|p| cpu_seconds(Some(p))),
        }
    }

    /// CPU used between `self` and `later`, in % of one core: (loadgen, server).
    pub fn percent_until(&self, later: &CpuMark) -> (Option<f64>, Option<f64>) {
        let wall = later.at.duration_since(self.at).as_secs_f64();
        let pct = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) if wall > 0.0 => Some(100.0 * (b - a) / wall),
            _ => None,
        };
        (pct(self.own, later.own), pct(self.server, later.server))
    }
}

/// Raises the soft limit on open files to the hard limit; returns (soft, hard) afterwards.
pub fn raise_nofile_limit() -> std::io::Result<(u64, u64)> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: get/setrlimit read and write only the struct we own.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
    }
    // rlim_t is u64 on Linux/glibc but not everywhere.
    #[allow(clippy::unnecessary_cast)]
    Ok((limit.rlim_cur as u64, limit.rlim_max as u64))
}

/// Pins the calling thread, and the threads it creates from now on, to `cpu`.
pub fn pin_to_cpu(cpu: usize) -> std::io::Result<()> {
    // SAFETY: the set is a plain bit mask we own; sched_setaffinity only reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The CPUs this process may run on (empty if unknown).
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: sched_getaffinity writes into the set we own; CPU_ISSET reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Vec::new();
        }
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&cpu| libc::CPU_ISSET(cpu, &set))
            .collect()
    }
}

/// The size of the ephemeral port range (`net.ipv4.ip_local_port_range`), if readable.
pub fn ephemeral_ports() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    let mut it = text.split_whitespace().map(|s| s.parse::<u64>());
    let (low, high) = (it.next()?.ok()?, it.next()?.ok()?);
    Some(high.saturating_sub(low) + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vm_rss_and_cpu_fields() {
        let status = "Name:\tserver\nVmPeak:\t  9000 kB\nVmRSS:\t   1234 kB\nThreads:\t3\n";
        assert_eq!(parse_vm_rss(status), Some(1234 * 1024));
        assert_eq!(parse_vm_rss("Name: x\n"), None);
        let stat = "42 (my (odd) name) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0";
        assert_eq!(parse_stat_cpu(stat, 100.0), Some(3.0));
    }

    #[test]
    fn reads_its_own_process() {
        assert!(rss_bytes(None).unwrap() > 0);
        assert!(cpu_seconds(None).unwrap() >= 0.0);
        assert!(cpu_seconds(Some(std::process::id())).is_some());
    }
}
