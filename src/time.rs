//! Event time: parsing CloudTrail's `eventTime`, formatting it as ESCU's `security_content_ctime`
//! does, and the calendar facts detection B needs (hour of day, day of week).
//!
//! Times are whole Unix seconds (`i64`). CloudTrail stamps to the second, and every output the
//! seeds produce is formatted to the second.

use chrono::format::{Item, StrftimeItems};
use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, SecondsFormat, Timelike, Utc};

/// Parses `eventTime`. The fast path reads CloudTrail's own `YYYY-MM-DDTHH:MM:SSZ` without
/// allocating, and also the variants that normalizing pipelines write (fractional seconds, a
/// space instead of `T`, no `Z`: taken as UTC). Other offsets go through chrono's RFC 3339.
pub fn parse_event_time(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    let shape = b.len() >= 19
        && b[4] == b'-'
        && b[7] == b'-'
        && (b[10] == b'T' || b[10] == b' ')
        && b[13] == b':'
        && b[16] == b':';
    if shape && utc_suffix(&b[19..]) {
        let num = |r: std::ops::Range<usize>| -> Option<u32> {
            let mut v = 0u32;
            for &c in &b[r] {
                if !c.is_ascii_digit() {
                    return None;
                }
                v = v * 10 + u32::from(c - b'0');
            }
            Some(v)
        };
        let date = NaiveDate::from_ymd_opt(num(0..4)? as i32, num(5..7)?, num(8..10)?)?;
        let (h, m, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
        if h > 23 || m > 59 || s > 60 {
            return None;
        }
        let days = i64::from(date.num_days_from_ce() - 719_163);
        return Some(days * 86_400 + i64::from(h * 3600 + m * 60 + s));
    }
    DateTime::parse_from_rfc3339(text).ok().map(|t| t.timestamp())
}

/// `""`, `Z`, `.123` or `.123Z`: what may follow the seconds of a UTC time.
fn utc_suffix(rest: &[u8]) -> bool {
    let rest = rest.strip_suffix(b"Z").unwrap_or(rest);
    match rest.split_first() {
        None => true,
        Some((b'.', digits)) => !digits.is_empty() && digits.iter().all(u8::is_ascii_digit),
        Some(_) => false,
    }
}

/// `%Y-%m-%dT%H:%M:%S` in UTC, the format of `security_content_ctime`.
pub fn format_ctime(secs: i64) -> String {
    format_ctime_with(secs, "%Y-%m-%dT%H:%M:%S", 0)
}

/// `secs` as strftime `format` in the time zone `utc_offset_minutes` east of UTC (`convert
/// ctime`, eval's `strftime`). A format chrono cannot read, or an offset beyond a day, yields
/// the number itself rather than a panic.
pub fn format_ctime_with(secs: i64, format: &str, utc_offset_minutes: i32) -> String {
    // The zone first: both ways of writing refuse the same offsets.
    let Some(zone) = FixedOffset::east_opt(utc_offset_minutes.saturating_mul(60)) else { return secs.to_string() };
    if let Some(text) = format_numeric(secs.saturating_add(i64::from(utc_offset_minutes) * 60), format) {
        return text;
    }
    let items: Vec<Item<'_>> = StrftimeItems::new(format).collect();
    match DateTime::<Utc>::from_timestamp(secs, 0) {
        Some(t) if !items.contains(&Item::Error) => t.with_timezone(&zone).format_with_items(items.into_iter()).to_string(),
        _ => secs.to_string(),
    }
}

/// [`format_ctime_with`] for the formats rules write (`%Y-%m-%dT%H:%M:%S`, `%H`, `%w`): ASCII
/// text and the numeric specifiers `%Y %m %d %H %M %S %w %%` of a four-digit year, written
/// without parsing the format into chrono's items, a cost every closed group paid. `None`
/// for anything else, which chrono writes.
fn format_numeric(local: i64, format: &str) -> Option<String> {
    let t = DateTime::<Utc>::from_timestamp(local, 0)?;
    let mut out = String::with_capacity(format.len() + 8);
    let mut bytes = format.bytes();
    while let Some(b) = bytes.next() {
        if b != b'%' {
            if !b.is_ascii() {
                return None;
            }
            out.push(char::from(b));
            continue;
        }
        let (value, digits) = match bytes.next()? {
            b'Y' if (0..=9999).contains(&t.year()) => (t.year() as u32, 4),
            b'm' => (t.month(), 2),
            b'd' => (t.day(), 2),
            b'H' => (t.hour(), 2),
            b'M' => (t.minute(), 2),
            b'S' => (t.second(), 2),
            b'w' => (t.weekday().num_days_from_sunday(), 1),
            b'%' => {
                out.push('%');
                continue;
            }
            _ => return None,
        };
        for place in (0..digits).rev() {
            out.push(char::from(b'0' + (value / 10u32.pow(place) % 10) as u8));
        }
    }
    Some(out)
}

/// RFC 3339 with a `Z`, for window bounds and `_time` in alerts.
pub fn format_rfc3339(secs: i64) -> String {
    match DateTime::<Utc>::from_timestamp(secs, 0) {
        // chrono's RFC 3339 writer, not `format`, which parses its pattern on every call (every
        // alert has two): the same text for four-digit years, which `%Y` writes otherwise.
        Some(t) if (0..=9999).contains(&t.year()) => t.to_rfc3339_opts(SecondsFormat::Secs, true),
        Some(t) => t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        None => secs.to_string(),
    }
}

/// One of Splunk's default `date_*` fields of an event at `secs`: numbers without padding,
/// day and month names in lower case (`date_wday=sunday`).
pub fn date_field(secs: i64, name: &str) -> Option<String> {
    let t = DateTime::<Utc>::from_timestamp(secs, 0)?;
    Some(match name {
        "date_hour" => t.hour().to_string(),
        "date_minute" => t.minute().to_string(),
        "date_second" => t.second().to_string(),
        "date_mday" => t.day().to_string(),
        "date_year" => t.year().to_string(),
        "date_wday" => t.format("%A").to_string().to_lowercase(),
        "date_month" => t.format("%B").to_string().to_lowercase(),
        _ => return None,
    })
}

/// Hour of day (0-23) and day of week (0 = Sunday) of `secs` shifted by `utc_offset_minutes`.
pub fn hour_and_weekday(secs: i64, utc_offset_minutes: i32) -> (u32, u32) {
    let local = secs + i64::from(utc_offset_minutes) * 60;
    match DateTime::<Utc>::from_timestamp(local, 0) {
        Some(t) => (t.hour(), t.weekday().num_days_from_sunday()),
        None => (0, 0),
    }
}

/// Start of the tumbling window of `length` seconds that holds `secs`, aligned to the epoch
/// (so hourly windows start on the clock hour, as `span=1h` does).
pub fn window_start(secs: i64, length: i64) -> i64 {
    secs.div_euclid(length) * length
}

/// Splunk's `relative_time(t, spec)` for the specs ESCU writes: an optional offset
/// (`-70m`, `+1h`, `-7d`: units `s`, `m`, `h`, `d`, `w`, UTC) and an optional snap to the start of
/// a unit (`@m`, `@h`, `@d`, UTC). `None` for anything else (months, weekdays, `now`), which
/// eval gives as null.
pub fn relative_time(t: i64, spec: &str) -> Option<i64> {
    let unit = |u: &str| -> Option<i64> {
        Some(match u {
            "s" | "sec" | "secs" | "second" | "seconds" => 1,
            "m" | "min" | "mins" | "minute" | "minutes" => 60,
            "h" | "hr" | "hrs" | "hour" | "hours" => 3600,
            "d" | "day" | "days" => 86_400,
            "w" | "week" | "weeks" => 7 * 86_400,
            _ => return None,
        })
    };
    let (offset, snap) = match spec.trim().split_once('@') {
        Some((offset, snap)) => (offset, Some(snap)),
        None => (spec.trim(), None),
    };
    let mut t = t;
    if !offset.is_empty() {
        let (sign, rest) = match offset.as_bytes()[0] {
            b'-' => (-1, &offset[1..]),
            b'+' => (1, &offset[1..]),
            _ => return None,
        };
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let count: i64 = if digits == 0 { 1 } else { rest[..digits].parse().ok()? };
        t = t.checked_add(sign * count.checked_mul(unit(&rest[digits..])?)?)?;
    }
    match snap {
        // A week snaps to Sunday in Splunk, which the epoch's unit does not give: not taken.
        Some(u) if u.starts_with('w') => None,
        Some(u) => Some(window_start(t, unit(u)?)),
        None => Some(t),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_formats_are_written_as_chrono_writes_them() {
        let chrono = |secs: i64, format: &str| {
            let items: Vec<Item<'_>> = StrftimeItems::new(format).collect();
            DateTime::<Utc>::from_timestamp(secs, 0).unwrap().format_with_items(items.into_iter()).to_string()
        };
        let formats = ["%Y-%m-%dT%H:%M:%S", "%H", "%w", "%d/%m/%Y %H:%M", "100%% at %S"];
        // Every weekday and hour, across leap days and the epoch, and a year before it.
        for secs in (-40_000_000..2_000_000_000).step_by(3_599_993) {
            for format in formats {
                assert_eq!(format_numeric(secs, format).as_deref(), Some(chrono(secs, format).as_str()), "{secs} {format}");
            }
        }
        // Others are chrono's to write.
        assert_eq!(format_numeric(0, "%b %e"), None);
        assert_eq!(format_numeric(0, "é"), None);
        assert_eq!(format_ctime_with(0, "%b %e, %H", 90), "Jan  1, 01");
        assert_eq!(format_ctime_with(0, "%w %H:%M", -90), "3 22:30");
        // An offset of a whole day is no zone: the number, whichever way the format is written.
        assert_eq!(format_ctime_with(0, "%H", 1440), "0");
        assert_eq!(format_ctime_with(0, "%b", -1440), "0");
    }

    #[test]
    fn relative_times_as_splunk_snaps_them() {
        let t = parse_event_time("2024-03-12T11:10:42Z").unwrap();
        let at = |spec| relative_time(t, spec).map(format_rfc3339);
        assert_eq!(at("-70m@m").as_deref(), Some("2024-03-12T10:00:00Z"));
        assert_eq!(at("-7d@d").as_deref(), Some("2024-03-05T00:00:00Z"));
        assert_eq!(at("@h").as_deref(), Some("2024-03-12T11:00:00Z"));
        assert_eq!(at("+1h").as_deref(), Some("2024-03-12T12:10:42Z"));
        assert_eq!(at("-1mon@mon"), None);
        assert_eq!(at("-1w@w"), None);
    }

    #[test]
    fn rfc3339_text_is_the_same_inside_and_outside_four_digit_years() {
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        let year = |y: i32| NaiveDate::from_ymd_opt(y, 1, 2).unwrap().and_hms_opt(3, 4, 5).unwrap().and_utc().timestamp();
        assert_eq!(format_rfc3339(year(9999)), "9999-01-02T03:04:05Z");
        assert_eq!(format_rfc3339(year(5)), "0005-01-02T03:04:05Z");
        assert_eq!(format_rfc3339(year(10000)), "+10000-01-02T03:04:05Z");
        assert_eq!(format_rfc3339(year(-1)), "-0001-01-02T03:04:05Z");
        assert_eq!(format_rfc3339(i64::MAX), i64::MAX.to_string());
    }

    #[test]
    fn splunk_date_fields() {
        let t = parse_event_time("2024-01-21T09:05:07Z").unwrap();
        let f = |n| date_field(t, n).unwrap();
        assert_eq!([f("date_hour"), f("date_minute"), f("date_second"), f("date_mday")], ["9", "5", "7", "21"]);
        assert_eq!([f("date_wday"), f("date_month"), f("date_year")], ["sunday", "january", "2024"]);
    }

    #[test]
    fn parses_cloudtrail_times() {
        assert_eq!(parse_event_time("2023-04-24T19:15:26Z"), Some(1_682_363_726));
        assert_eq!(parse_event_time("2023-04-24T19:15:26.123Z"), Some(1_682_363_726));
        assert_eq!(parse_event_time("2023-04-24T21:15:26+02:00"), Some(1_682_363_726));
        assert_eq!(parse_event_time("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_event_time("2021-01-24 04:55:45.000"), Some(1_611_464_145));
        assert_eq!(parse_event_time("2021-01-24T04:55:45"), Some(1_611_464_145));
        assert_eq!(parse_event_time("2021-01-24T04:55:45.Z"), None);
        assert_eq!(parse_event_time("2023-02-30T00:00:00Z"), None);
        assert_eq!(parse_event_time("yesterday"), None);
        assert_eq!(parse_event_time("2023-04-24T25:15:26Z"), None);
    }

    #[test]
    fn formats_and_windows() {
        assert_eq!(format_ctime(1_682_363_726), "2023-04-24T19:15:26");
        assert_eq!(window_start(1_682_363_726, 3600), 1_682_362_800);
        assert_eq!(window_start(-1, 3600), -3600);
        // 2023-04-24 was a Monday.
        assert_eq!(hour_and_weekday(1_682_363_726, 0), (19, 1));
        assert_eq!(hour_and_weekday(1_682_363_726, 300), (0, 2));
    }
}
