//! Time as worlds and people write it: a world's start (`2026-03-14T09:05`), a time
//! of day in a record (`17:00`, `5 pm`, `tomorrow 09:00`), and simulated time shown back.

/// A time of day as written by a person or a model: minutes after midnight and how
/// many days ahead (`"tomorrow 09:00"`: 1). Accepts `H:MM`, `H:MM:SS`, `H.MM`, `HHMM`,
/// each with an optional `am`/`pm`, `H am`/`H pm`, `noon` and `midnight` (the next
/// day's 00:00). Anything else is `None`: not a time.
pub fn parse_time_of_day(text: &str) -> Option<(u32, u32)> {
    let mut s = text.trim().to_lowercase();
    let mut days = 0;
    if let Some(rest) = s.strip_prefix("tomorrow") {
        days = 1;
        s = rest.trim().trim_start_matches("at ").trim().to_string();
    }
    match s.as_str() {
        "midnight" => return Some((0, days + 1)),
        "noon" | "midday" => return Some((12 * 60, days)),
        _ => {}
    }
    let (clock, meridiem) = if let Some(c) = s.strip_suffix("am").or_else(|| s.strip_suffix("a.m.")) {
        (c.trim(), Some(false))
    } else if let Some(c) = s.strip_suffix("pm").or_else(|| s.strip_suffix("p.m.")) {
        (c.trim(), Some(true))
    } else {
        (s.as_str(), None)
    };
    let digits = |t: &str| !t.is_empty() && t.len() <= 2 && t.chars().all(|c| c.is_ascii_digit());
    let (h, m): (u32, u32) = if let Some((h, rest)) = clock.split_once([':', '.']) {
        let (m, sec) = rest.split_once(':').unwrap_or((rest, "00"));
        if !(digits(h) && m.len() == 2 && digits(m) && sec.len() == 2 && digits(sec)) {
            return None;
        }
        (h.parse().ok()?, m.parse().ok()?)
    } else if clock.len() == 4 && clock.chars().all(|c| c.is_ascii_digit()) && meridiem.is_none() {
        (clock[..2].parse().ok()?, clock[2..].parse().ok()?)
    } else if digits(clock) && meridiem.is_some() {
        (clock.parse().ok()?, 0)
    } else {
        return None;
    };
    let h = match meridiem {
        None if h <= 23 => h,
        Some(_) if !(1..=12).contains(&h) => return None,
        Some(false) => h % 12,
        Some(true) => h % 12 + 12,
        None => return None,
    };
    (m <= 59).then_some((h * 60 + m, days))
}

/// Parse `YYYY-MM-DDTHH:MM` (UTC) into ms since the Unix epoch.
pub fn parse_start(s: &str) -> Option<i64> {
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-');
    let (y, m, day): (i64, i64, i64) = (d.next()?.parse().ok()?, d.next()?.parse().ok()?, d.next()?.parse().ok()?);
    let (hh, mm) = time.split_once(':')?;
    let (hh, mm): (i64, i64) = (hh.parse().ok()?, mm.parse().ok()?);
    if d.next().is_some()
        || !(1..=12).contains(&m)
        || !(1..=31).contains(&day)
        || hh > 23
        || mm > 59
        || hh < 0
        || mm < 0
    {
        return None;
    }
    Some((days_from_civil(y, m, day) * 86_400 + hh * 3_600 + mm * 60) * 1_000)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Format ms since the epoch as `YYYY-MM-DD HH:MM`.
pub fn format_time(ms: i64) -> String {
    let secs = ms.div_euclid(1_000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}", rem / 3_600, (rem % 3_600) / 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_round_trips() {
        let ms = parse_start("2026-03-14T09:05").unwrap();
        assert_eq!(format_time(ms), "2026-03-14 09:05");
        assert_eq!(format_time(ms - 86_400_000 * 14), "2026-02-28 09:05");
        assert_eq!(parse_start("2026-13-01T00:00"), None);
    }

    #[test]
    fn times_of_day_are_read_as_a_person_writes_them() {
        for (text, want) in [
            ("18:00", (1080, 0)),
            ("18:00:00", (1080, 0)),
            ("18:00:30", (1080, 0)),
            ("6pm", (1080, 0)),
            ("6 PM", (1080, 0)),
            ("6:30 p.m.", (1110, 0)),
            ("12am", (0, 0)),
            ("12 pm", (720, 0)),
            ("1800", (1080, 0)),
            ("18.00", (1080, 0)),
            ("9:05", (545, 0)),
            ("tomorrow 09:00", (540, 1)),
            ("Tomorrow at 9am", (540, 1)),
            ("midnight", (0, 1)),
            ("noon", (720, 0)),
        ] {
            assert_eq!(parse_time_of_day(text), Some(want), "{text:?}");
        }
        for text in ["", "soon", "18", "24:00", "18:60", "13pm", "0pm", "180", "18:0", "later tonight"] {
            assert_eq!(parse_time_of_day(text), None, "{text:?} is not a time");
        }
    }
}
