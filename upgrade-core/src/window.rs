//! Maintenance windows: days of week, a time range (overnight allowed), a
//! time zone, several windows, blackout dates; whether one is open now and
//! when the next one opens. DST is handled by jiff: a start that does not
//! exist (spring forward) moves to the first valid instant after it; one
//! that occurs twice (fall back) takes the earlier.

use std::collections::BTreeSet;
use std::fmt;

use jiff::civil::{Date, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan, Zoned};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A day of the week as written (`mon` … `sun`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Day(pub Weekday);

impl Ord for Day {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0
            .to_monday_zero_offset()
            .cmp(&other.0.to_monday_zero_offset())
    }
}

impl PartialOrd for Day {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

const DAYS: [(&str, Weekday); 7] = [
    ("mon", Weekday::Monday),
    ("tue", Weekday::Tuesday),
    ("wed", Weekday::Wednesday),
    ("thu", Weekday::Thursday),
    ("fri", Weekday::Friday),
    ("sat", Weekday::Saturday),
    ("sun", Weekday::Sunday),
];

impl Day {
    /// The three-letter name.
    pub fn name(self) -> &'static str {
        DAYS.iter()
            .find(|(_, w)| *w == self.0)
            .map_or("mon", |(n, _)| n)
    }
}

/// The full English name (`monday`).
fn full_name(w: Weekday) -> &'static str {
    match w {
        Weekday::Monday => "monday",
        Weekday::Tuesday => "tuesday",
        Weekday::Wednesday => "wednesday",
        Weekday::Thursday => "thursday",
        Weekday::Friday => "friday",
        Weekday::Saturday => "saturday",
        Weekday::Sunday => "sunday",
    }
}

impl Serialize for Day {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Day {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let t = String::deserialize(d)?;
        let lower = t.to_ascii_lowercase();
        // Exactly `mon` or `monday` (any case): `monkey` is not a Monday.
        DAYS.iter()
            .find(|(n, w)| lower == *n || lower == full_name(*w))
            .map(|(_, w)| Day(*w))
            .ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "`{t}` is not a day; write mon, tue, wed, thu, fri, sat or sun (or the full \
                     name){}",
                    crate::suggest::hint(
                        &lower,
                        DAYS.iter()
                            .map(|(n, w)| if lower.len() > 3 { full_name(*w) } else { n })
                    )
                ))
            })
    }
}

/// `HH:MM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockTime(pub Time);

impl Serialize for ClockTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("{:02}:{:02}", self.0.hour(), self.0.minute()))
    }
}

impl<'de> Deserialize<'de> for ClockTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let t = String::deserialize(d)?;
        let bad = || {
            serde::de::Error::custom(format!(
                "`{t}` is not a time of day; write it as HH:MM, like 02:30"
            ))
        };
        let (h, m) = t.split_once(':').ok_or_else(bad)?;
        let (h, m): (i8, i8) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
        Time::new(h, m, 0, 0).map(ClockTime).map_err(|_| bad())
    }
}

/// An IANA time zone name (`Europe/Berlin`, `UTC`).
#[derive(Clone, PartialEq, Eq)]
pub struct Zone {
    /// The name as written.
    pub name: String,
    /// The zone.
    pub tz: TimeZone,
}

impl fmt::Debug for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Zone({})", self.name)
    }
}

impl Zone {
    /// Looks a zone up by name.
    pub fn parse(name: &str) -> Result<Zone, String> {
        TimeZone::get(name)
            .map(|tz| Zone {
                name: name.to_owned(),
                tz,
            })
            .map_err(|e| {
                format!(
                    "unknown time zone `{name}` ({e}); use an IANA name like Europe/Berlin or UTC"
                )
            })
    }

    /// UTC.
    pub fn utc() -> Zone {
        Zone {
            name: "UTC".into(),
            tz: TimeZone::UTC,
        }
    }
}

impl Serialize for Zone {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name)
    }
}

impl<'de> Deserialize<'de> for Zone {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let t = String::deserialize(d)?;
        Zone::parse(&t).map_err(serde::de::Error::custom)
    }
}

fn utc() -> Zone {
    Zone::utc()
}

fn all_days() -> BTreeSet<Day> {
    DAYS.iter().map(|(_, w)| Day(*w)).collect()
}

/// One maintenance window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    /// The days it starts on (default: every day).
    #[serde(default = "all_days")]
    pub days: BTreeSet<Day>,
    /// When it opens.
    pub start: ClockTime,
    /// When it closes; before `start` means the next day (overnight).
    pub end: ClockTime,
    /// The time zone of `start` and `end` (default UTC).
    #[serde(default = "utc")]
    pub time_zone: Zone,
}

/// One opening of a window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opening {
    /// When it opens.
    pub start: Timestamp,
    /// When it closes.
    pub end: Timestamp,
}

impl Window {
    /// The opening that starts on `date` (in the window's zone), if the day is one of its days.
    fn opening_on(&self, date: Date) -> Option<Opening> {
        if !self.days.contains(&Day(date.weekday())) {
            return None;
        }
        let start = date
            .to_datetime(self.start.0)
            .to_zoned(self.time_zone.tz.clone())
            .ok()?
            .timestamp();
        let end_date = if self.end.0 > self.start.0 {
            date
        } else {
            date.checked_add(1.day()).ok()?
        };
        let end = end_date
            .to_datetime(self.end.0)
            .to_zoned(self.time_zone.tz.clone())
            .ok()?
            .timestamp();
        (end > start).then_some(Opening { start, end })
    }
}

/// Every window plus blackout dates.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// The windows.
    #[serde(default)]
    pub windows: Vec<Window>,
    /// Dates (in each window's zone) on which no window opens.
    #[serde(default)]
    pub blackout: BTreeSet<Date>,
}

impl Schedule {
    /// Openings that start within `days` days around `now`.
    fn openings(&self, now: Timestamp, days: i64) -> Vec<Opening> {
        let mut out = Vec::new();
        for w in &self.windows {
            let today = Zoned::new(now, w.time_zone.tz.clone()).date();
            for d in -1..=days {
                let Ok(date) = today.checked_add(d.days()) else {
                    continue;
                };
                if self.blackout.contains(&date) {
                    continue;
                }
                if let Some(o) = w.opening_on(date) {
                    out.push(o);
                }
            }
        }
        out.sort_by_key(|o| o.start);
        out
    }

    /// Whether a window is open at `now`. With no windows at all, always.
    pub fn is_open(&self, now: Timestamp) -> bool {
        self.windows.is_empty()
            || self
                .openings(now, 0)
                .iter()
                .any(|o| o.start <= now && now < o.end)
    }

    /// The opening in progress at `now`, or the next one (within 400 days).
    pub fn current_or_next(&self, now: Timestamp) -> Option<Opening> {
        self.openings(now, 400).into_iter().find(|o| o.end > now)
    }

    /// When the next window opens after `now` (not counting one open now).
    pub fn next_opening(&self, now: Timestamp) -> Option<Timestamp> {
        self.openings(now, 400)
            .into_iter()
            .map(|o| o.start)
            .find(|s| *s > now)
    }

    /// systemd `OnCalendar=` lines, one per window.
    pub fn on_calendar(&self) -> Vec<String> {
        self.windows
            .iter()
            .map(|w| {
                let days = if w.days.len() == 7 {
                    String::new()
                } else {
                    format!(
                        "{} ",
                        w.days
                            .iter()
                            .map(|d| capitalize(d.name()))
                            .collect::<Vec<_>>()
                            .join(",")
                    )
                };
                format!(
                    "{days}*-*-* {:02}:{:02}:00 {}",
                    w.start.0.hour(),
                    w.start.0.minute(),
                    w.time_zone.name
                )
            })
            .collect()
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sched(yaml: &str) -> Schedule {
        yaml_serde::from_str(yaml).unwrap()
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn a_weekday_window_in_a_zone() {
        let s = sched(
            "windows:\n  - {days: [mon, tue, wed, thu, fri], start: '02:00', end: '04:00', \
                time_zone: Europe/Berlin}\n",
        );
        // Tuesday 2026-11-24 02:30 Berlin = 01:30 UTC.
        assert!(s.is_open(ts("2026-11-24T01:30:00Z")));
        assert!(
            !s.is_open(ts("2026-11-24T03:00:00Z")),
            "04:00 Berlin is closed"
        );
        assert!(!s.is_open(ts("2026-11-22T01:30:00Z")), "Sunday");
        // From Saturday noon, the next opening is Monday 02:00 Berlin.
        assert_eq!(
            s.next_opening(ts("2026-11-21T12:00:00Z")),
            Some(ts("2026-11-23T01:00:00Z"))
        );
        assert_eq!(
            s.on_calendar(),
            ["Mon,Tue,Wed,Thu,Fri *-*-* 02:00:00 Europe/Berlin"]
        );
    }

    #[test]
    fn an_overnight_window() {
        let s = sched("windows:\n  - {days: [sat], start: '22:00', end: '02:00'}\n");
        assert!(s.is_open(ts("2026-11-21T23:00:00Z")), "Saturday night");
        assert!(
            s.is_open(ts("2026-11-22T01:59:00Z")),
            "still open past midnight, on Sunday"
        );
        assert!(!s.is_open(ts("2026-11-22T02:00:00Z")));
        assert!(
            !s.is_open(ts("2026-11-22T23:00:00Z")),
            "Sunday night is not a start day"
        );
        let o = s.current_or_next(ts("2026-11-21T23:00:00Z")).unwrap();
        assert_eq!(
            (o.start, o.end),
            (ts("2026-11-21T22:00:00Z"), ts("2026-11-22T02:00:00Z"))
        );
        assert_eq!(
            s.next_opening(ts("2026-11-21T23:00:00Z")),
            Some(ts("2026-11-28T22:00:00Z"))
        );
    }

    #[test]
    fn dst_changes() {
        // Spring forward in Berlin: 2026-03-29 02:00 does not exist; the
        // window opens at 03:00 CEST.
        let s = sched("windows:\n  - {start: '02:00', end: '04:00', time_zone: Europe/Berlin}\n");
        let o = s.current_or_next(ts("2026-03-28T23:00:00Z")).unwrap();
        assert_eq!(o.start, ts("2026-03-29T01:00:00Z"), "03:00 CEST");
        assert_eq!(
            o.end,
            ts("2026-03-29T02:00:00Z"),
            "04:00 CEST: one hour that night"
        );
        // Fall back: 2026-10-25 02:00-04:00 is three hours long (02:00-03:00 happens twice).
        let o = s.current_or_next(ts("2026-10-24T23:30:00Z")).unwrap();
        assert_eq!(
            o.start,
            ts("2026-10-25T00:00:00Z"),
            "the first 02:00 (CEST)"
        );
        assert_eq!(o.end, ts("2026-10-25T03:00:00Z"), "04:00 CET");
        // The day before and after: two hours, UTC offsets as usual.
        let o = s.current_or_next(ts("2026-10-26T00:00:00Z")).unwrap();
        assert_eq!(
            (o.start, o.end),
            (ts("2026-10-26T01:00:00Z"), ts("2026-10-26T03:00:00Z"))
        );
    }

    #[test]
    fn blackout_dates_and_several_windows() {
        let s = sched(
            "windows:\n  - {days: [thu], start: '01:00', end: '03:00'}\n  - {days: [sun], start: \
                '10:00', end: '11:00'}\nblackout: [2026-12-24, 2026-12-27]\n",
        );
        // Thursday 24 December is blacked out; the next is Thursday 31 December (Sunday 27 too).
        assert!(!s.is_open(ts("2026-12-24T02:00:00Z")));
        assert_eq!(
            s.next_opening(ts("2026-12-23T00:00:00Z")),
            Some(ts("2026-12-31T01:00:00Z"))
        );
        assert_eq!(
            s.next_opening(ts("2026-12-18T00:00:00Z")),
            Some(ts("2026-12-20T10:00:00Z")),
            "the earlier of the two windows"
        );
        assert_eq!(
            s.on_calendar(),
            ["Thu *-*-* 01:00:00 UTC", "Sun *-*-* 10:00:00 UTC"]
        );
        // No windows: always open, never a next opening.
        assert!(Schedule::default().is_open(ts("2026-12-24T02:00:00Z")));
        assert_eq!(
            Schedule::default().next_opening(ts("2026-12-24T02:00:00Z")),
            None
        );
    }

    #[test]
    fn bad_values_are_refused() {
        for bad in [
            "windows:\n  - {start: '25:00', end: '01:00'}\n",
            "windows:\n  - {days: [funday], start: '01:00', end: '02:00'}\n",
            "windows:\n  - {start: '01:00', end: '02:00', time_zone: Mars/Olympus}\n",
        ] {
            assert!(yaml_serde::from_str::<Schedule>(bad).is_err(), "{bad}");
        }
    }
}
