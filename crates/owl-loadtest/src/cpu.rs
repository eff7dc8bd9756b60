//! CPU time of a process (user + system, all threads, including exited ones), read
//! from `/proc/<pid>/stat` before and after a run to get CPU time per request.

use std::time::Duration;

/// CPU time used so far by process `pid`.
pub fn process_cpu(pid: u32) -> std::io::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    parse_stat(&stat, USER_HZ).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("unexpected /proc/{pid}/stat format"),
        )
    })
}

/// The unit of /proc's CPU times: Linux exports them in USER_HZ ticks, fixed at 100
/// per second on every architecture it supports (whatever the kernel's own HZ).
const USER_HZ: u64 = 100;

/// utime + stime (fields 14 and 15) of a stat line. The command name (field 2) is in
/// parentheses and may itself contain spaces and parentheses, so fields are counted
/// from the last `)`.
fn parse_stat(stat: &str, ticks_per_second: u64) -> Option<Duration> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3, so utime (14) is index 11 and stime index 12.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let ticks = utime + stime;
    Some(Duration::from_nanos(
        ticks * 1_000_000_000 / ticks_per_second,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_user_plus_system_time_even_with_odd_process_names() {
        let line = "4242 (owl (worker) x) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 75 0 0 20 0 3 0 100 0 0";
        assert_eq!(parse_stat(line, 100), Some(Duration::from_millis(3250)));
        assert_eq!(parse_stat("garbage", 100), None);
        assert_eq!(parse_stat("1 (x) S 1 2", 100), None);
    }

    #[test]
    fn own_cpu_time_grows_with_work() {
        let pid = std::process::id();
        let before = process_cpu(pid).unwrap();
        let t = std::time::Instant::now();
        let mut x = 0u64;
        while t.elapsed() < Duration::from_millis(100) {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
        let after = process_cpu(pid).unwrap();
        assert!(after > before, "{before:?} -> {after:?}");
    }
}
