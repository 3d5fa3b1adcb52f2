//! `ls` output in smbclient's layout: name, attribute letters, size, date.
//!
//! ```text
//!   .                                   D        0  Tue Nov 24 03:07:50 2026
//!   notes.txt                           A     1234  Tue Nov 24 03:07:50 2026
//! ```
//! Dates are printed in UTC (smbclient uses the local zone; a lab machine runs in UTC).

/// FILE_ATTRIBUTE_* bits (MS-FSCC 2.6) that smbclient shows as letters.
pub mod attr {
    pub use smb_core::messages::create::file_attributes::*;
    /// The volume-label bit, which only listings show.
    pub const VOLUME: u32 = 0x0000_0008;
}

/// smbclient's attribute letters, in its order (V D A H S R; N for a normal file).
pub fn attribute_letters(attributes: u32) -> String {
    let mut s = String::new();
    for (bit, letter) in [
        (attr::VOLUME, 'V'),
        (attr::DIRECTORY, 'D'),
        (attr::ARCHIVE, 'A'),
        (attr::HIDDEN, 'H'),
        (attr::SYSTEM, 'S'),
        (attr::READONLY, 'R'),
    ] {
        if attributes & bit != 0 {
            s.push(letter);
        }
    }
    if s.is_empty() && attributes & attr::NORMAL != 0 {
        s.push('N');
    }
    s
}

/// Seconds between 1601-01-01 (FILETIME epoch) and 1970-01-01.
const FILETIME_UNIX_OFFSET: i64 = 11_644_473_600;

/// A FILETIME (100 ns ticks since 1601) as `asctime` text in UTC: `Tue Nov 24 03:07:50 2026`.
pub fn format_filetime(filetime: u64) -> String {
    let unix = (filetime / 10_000_000) as i64 - FILETIME_UNIX_OFFSET;
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    // 1970-01-01 was a Thursday.
    let weekday = (days + 4).rem_euclid(7) as usize;
    const WD: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MO: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{} {} {:2} {:02}:{:02}:{:02} {}",
        WD[weekday],
        MO[(m - 1) as usize],
        d,
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        y
    )
}

/// Days since 1970-01-01 to (year, month 1..=12, day 1..=31), proleptic Gregorian
/// (Howard Hinnant's civil_from_days algorithm).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// One `ls` line, as smbclient prints it (`"  %-30s%7.7s %8.0f  %s"`).
pub fn format_entry(name: &str, attributes: u32, size: u64, last_write: u64) -> String {
    format!(
        "  {:<30}{:>7} {:>8}  {}",
        name,
        attribute_letters(attributes),
        size,
        format_filetime(last_write)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filetime(unix: i64) -> u64 {
        ((unix + FILETIME_UNIX_OFFSET) * 10_000_000) as u64
    }

    #[test]
    fn dates_match_known_instants() {
        // `date -u -d @0` and `date -u -d @1795489670` (GNU date).
        assert_eq!(format_filetime(filetime(0)), "Thu Jan  1 00:00:00 1970");
        assert_eq!(
            format_filetime(filetime(1_795_489_670)),
            "Tue Nov 24 03:07:50 2026"
        );
        // Leap day.
        assert_eq!(
            format_filetime(filetime(951_782_400)),
            "Tue Feb 29 00:00:00 2000"
        );
        // Before the Unix epoch still formats (FILETIME 0 is 1601).
        assert_eq!(format_filetime(0), "Mon Jan  1 00:00:00 1601");
    }

    #[test]
    fn letters_in_smbclient_order() {
        assert_eq!(attribute_letters(attr::DIRECTORY), "D");
        assert_eq!(
            attribute_letters(attr::ARCHIVE | attr::READONLY | attr::HIDDEN),
            "AHR"
        );
        assert_eq!(attribute_letters(attr::NORMAL), "N");
        assert_eq!(attribute_letters(0), "");
    }

    #[test]
    fn line_layout() {
        let line = format_entry("notes.txt", attr::ARCHIVE, 1234, filetime(0));
        assert_eq!(
            line,
            format!(
                "  {:<30}{:>7} {:>8}  Thu Jan  1 00:00:00 1970",
                "notes.txt", "A", 1234
            )
        );
        assert_eq!(&line[..11], "  notes.txt");
        assert_eq!(line.len(), 2 + 30 + 7 + 1 + 8 + 2 + 24);
    }
}
